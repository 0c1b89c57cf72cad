import Foundation

// RFC 4180 CSV, hand-written rather than taken from a package because every error must
// name the record's first line, and a record's line number is what the exam validation
// reports; the byte-level parser also keeps 2 MB exam files fast.

/// One CSV record and the 1-based line on which it starts.
public struct CSVRecord: Sendable, Equatable {
    public var line: Int
    public var fields: [String]

    public init(line: Int, fields: [String]) {
        self.line = line
        self.fields = fields
    }
}

public struct CSVError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String

    public var description: String { "line \(line): \(message)" }
}

public enum CSV {
    /// Parses the whole text. Accepts LF and CRLF line ends, a UTF-8 byte-order mark,
    /// quoted fields holding commas, doubled quotes and line breaks, and empty trailing
    /// fields. Blank lines between records are skipped. A quote inside an unquoted field
    /// is kept as a character (as Python's csv module does).
    /// `separator` is the field separator: a comma, or a tab for tab-separated files.
    public static func parse(_ bytes: [UInt8], separator: UInt8 = UInt8(ascii: ",")) throws(CSVError) -> [CSVRecord] {
        let comma = separator, quote = UInt8(ascii: "\""), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var records: [CSVRecord] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var fieldWasQuoted = false
        var recordLine = 1

        func finishField() throws(CSVError) {
            guard let text = String(validating: field, as: UTF8.self) else {
                throw CSVError(line: line, message: "field \(fields.count + 1) is not valid UTF-8")
            }
            fields.append(text)
            field.removeAll(keepingCapacity: true)
            fieldWasQuoted = false
        }

        func finishRecord() {
            // A blank line parses as one empty field; it is not a record.
            if !(fields.count == 1 && fields[0].isEmpty) {
                records.append(CSVRecord(line: recordLine, fields: fields))
            }
            fields.removeAll(keepingCapacity: true)
        }

        while i < bytes.count {
            let byte = bytes[i]
            if byte == quote && field.isEmpty && !fieldWasQuoted {
                // A quoted field runs to the next quote that is not doubled.
                let openedOn = line
                i += 1
                while true {
                    guard i < bytes.count else {
                        throw CSVError(
                            line: openedOn, message: "unterminated quoted field (the quote opened on line \(openedOn) is never closed)")
                    }
                    let b = bytes[i]
                    i += 1
                    if b == quote {
                        guard i < bytes.count, bytes[i] == quote else { break }
                        i += 1
                    } else if b == lf {
                        line += 1
                    }
                    field.append(b)
                }
                fieldWasQuoted = true
                continue
            }
            if fieldWasQuoted && byte != comma && byte != lf && byte != cr {
                throw CSVError(line: line, message: "unexpected text after the closing quote of field \(fields.count + 1)")
            }
            if byte == comma {
                try finishField()
                i += 1
            } else if byte == lf || byte == cr {
                try finishField()
                i += (byte == cr && i + 1 < bytes.count && bytes[i + 1] == lf) ? 2 : 1
                line += 1
                finishRecord()
                recordLine = line
            } else {
                field.append(byte)
                i += 1
            }
        }
        if !field.isEmpty || !fields.isEmpty || fieldWasQuoted {
            try finishField()
            finishRecord()
        }
        return records
    }

    public static func parse(_ text: String) throws(CSVError) -> [CSVRecord] {
        try parse(Array(text.utf8))
    }

    /// Writes records with LF line ends, quoting only the fields that need it.
    public static func write(_ rows: [[String]]) -> String {
        var out = ""
        for row in rows {
            out += row.map(quoted).joined(separator: ",")
            out += "\n"
        }
        return out
    }

    static func quoted(_ field: String) -> String {
        guard
            field.utf8.contains(where: {
                $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r")
            })
        else {
            return field
        }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
