import Exam
import Foundation
import Hummingbird
import Store

/// Name-value pairs as browsers and Python send them (application/x-www-form-urlencoded:
/// a query string, a form's body): `+` is a space, then %XX is decoded once. Every
/// handler reads its query through this, so "a note" arrives as `a+note` or `a%20note`
/// alike and `%2B` stays a plus.
struct FormValues: Sendable {
    private(set) var pairs: [(name: String, value: String)] = []

    init(encoded: String?) throws {
        for field in (encoded ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0], what: "a name")
            pairs.append((name, try Self.decode(parts.count > 1 ? parts[1] : "", what: "the value of \(excerpt(name, limit: 40))")))
        }
    }

    init(query request: Request) throws { try self.init(encoded: request.uri.query) }

    init(pairs: [(name: String, value: String)]) { self.pairs = pairs }

    static func decode(_ text: Substring, what: String) throws -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        guard let decoded = spaced.removingPercentEncoding else {
            throw StoreError.invalid("\(what) in the query is not percent-encoded UTF-8: '\(excerpt(String(text), limit: 60))'")
        }
        return decoded
    }

    /// The first value of `name`; an empty value counts as absent.
    subscript(_ name: String) -> String? { pairs.first { $0.name == name && !$0.value.isEmpty }?.value }

    /// Every value of a repeated name (`tag=a&tag=b`).
    func all(_ name: String) -> [String] { pairs.filter { $0.name == name && !$0.value.isEmpty }.map(\.value) }

    func required(_ name: String) throws -> String {
        guard let value = self[name] else {
            throw StoreError.invalid("the request needs \(name)=... (in its query, or a field of its form)")
        }
        return value
    }

    /// `1` or `true` (any case) is yes; absent is `default`.
    func flag(_ name: String, default value: Bool = false) throws -> Bool {
        guard let text = self[name] else { return value }
        switch text.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no": return false
        default: throw StoreError.invalid("\(name) must be 1 or 0 (true or false), not '\(excerpt(text, limit: 40))'")
        }
    }

    /// Another form's pairs after these (a multipart form's fields after the query's).
    func merging(_ other: FormValues) -> FormValues { FormValues(pairs: pairs + other.pairs) }
}
