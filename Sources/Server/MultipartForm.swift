import Exam
import Foundation
import Hummingbird
import MultipartKit
import Store

/// A multipart/form-data body, as `requests.post(files=..., data=...)`, curl's `-F` and
/// browsers send one: its fields (as `FormValues`) and its one file. MultipartKit splits
/// the parts; the Content-Disposition parameters are read here (MultipartKit keeps its
/// reader internal, and it cuts a filename at an `=`).
struct MultipartForm {
    var fields: FormValues
    var file: (name: String, bytes: [UInt8])?

    /// The form in `body`, or nil when the request is not multipart/form-data.
    init?(contentType: String?, body: [UInt8]) throws {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        guard let boundary = Self.parameters(contentType)["boundary"], !boundary.isEmpty, boundary.utf8.count <= 200 else {
            throw StoreError.invalid("a multipart/form-data body needs its boundary in the Content-Type header")
        }
        final class Parts {
            var list: [(headers: [(String, String)], body: [UInt8])] = []
            var headers: [(String, String)] = []
            var body: [UInt8] = []
        }
        let parts = Parts()
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { parts.headers.append(($0, $1)) }
        parser.onBody = { parts.body += $0.readBytes(length: $0.readableBytes) ?? [] }
        parser.onPartComplete = {
            parts.list.append((parts.headers, parts.body))
            (parts.headers, parts.body) = ([], [])
        }
        do { try parser.execute(body) } catch { throw StoreError.invalid("the multipart/form-data body is malformed (\(error))") }
        var fields: [(name: String, value: String)] = []
        for part in parts.list {
            let disposition = part.headers.first { $0.0.lowercased() == "content-disposition" }?.1 ?? ""
            let parameters = Self.parameters(disposition)
            guard let name = parameters["name"] else {
                throw StoreError.invalid("a part of the multipart/form-data body has no name (Content-Disposition: form-data; name=...)")
            }
            if let filename = parameters["filename"] {
                guard file == nil else { throw StoreError.invalid("the form holds more than one file: send one per request") }
                file = (filename.isEmpty ? name : filename, part.body)
            } else {
                guard let value = String(bytes: part.body, encoding: .utf8) else {
                    throw StoreError.invalid("the form's field \(excerpt(name, limit: 40)) is not UTF-8 text")
                }
                fields.append((name, value))
            }
        }
        self.fields = FormValues(pairs: fields)
    }

    /// `a; b="x; y"; c=z` → [b: "x; y", c: "z"]: a header value's parameters, quoted or not.
    static func parameters(_ header: String) -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(header)
        while let semicolon = rest.firstIndex(of: ";") {
            rest = rest[rest.index(after: semicolon)...].drop { $0 == " " || $0 == "\t" }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let character = rest.first, character != "\"" {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first {
                        value.append(escaped)
                        rest = rest.dropFirst()
                    } else {
                        value.append(character)
                    }
                }
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: ";") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            if result[key] == nil { result[key] = value }
        }
        return result
    }
}
