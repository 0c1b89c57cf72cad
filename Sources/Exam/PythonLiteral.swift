// The competition's `problems` column holds `str(dict)` output: a Python literal. This
// parser accepts what `ast.literal_eval` accepts for such values (dict, list, tuple,
// str, int, float, None, True, False, unary signs) and rejects everything else with
// the character position, so a malformed row is never half-understood.

public indirect enum PythonValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([PythonValue])
    case dict([PythonDictEntry])

    /// The value under a string key; the last one wins, as in Python.
    public subscript(key: String) -> PythonValue? {
        guard case .dict(let entries) = self else { return nil }
        return entries.last(where: { $0.key == .string(key) })?.value
    }

    public var typeName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .list: "list"
        case .dict: "dict"
        }
    }
}

public struct PythonDictEntry: Sendable, Equatable {
    public var key: PythonValue
    public var value: PythonValue

    public init(key: PythonValue, value: PythonValue) {
        self.key = key
        self.value = value
    }
}

public struct PythonLiteralError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based character position in the literal.
    public var position: Int
    public var message: String

    public var description: String { "\(message) at character \(position)" }
}

public enum PythonLiteral {
    public static func parse(_ text: String) throws(PythonLiteralError) -> PythonValue {
        var parser = Parser(scalars: Array(text.unicodeScalars))
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.atEnd else { throw parser.error("unexpected text after the value") }
        return value
    }

    /// Python's parser stops at 200 nested brackets ("too many nested parentheses");
    /// so does this one, before the recursion could exhaust the stack.
    public static let maxDepth = 200

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var i = 0
        var depth = 0

        var atEnd: Bool { i >= scalars.count }
        var current: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

        func error(_ message: String, at position: Int? = nil) -> PythonLiteralError {
            PythonLiteralError(position: (position ?? i) + 1, message: message)
        }

        mutating func skipSpace() {
            while let c = current, c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}" { i += 1 }
        }

        mutating func value() throws(PythonLiteralError) -> PythonValue {
            guard let c = current else { throw error("unexpected end of the literal") }
            if c == "{" || c == "[" || c == "(" {
                guard depth < PythonLiteral.maxDepth else {
                    throw error(
                        "nested too deeply (more than \(PythonLiteral.maxDepth) levels of brackets, where Python's parser stops too)")
                }
                depth += 1
            }
            defer { if c == "{" || c == "[" || c == "(" { depth -= 1 } }
            switch c {
            case "{": return try dict()
            case "[": return .list(try sequence(closing: "]"))
            case "(": return .list(try sequence(closing: ")"))
            case "+", "-": return try signedNumber()
            case "0"..."9", ".": return try number()
            case "'", "\"": return try strings()
            default:
                let start = i
                let word = identifier()
                switch word {
                case "None": return .none
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "r", "R", "u", "U", "rb", "b", "B", "f", "F", "br", "Rb", "fr", "rf":
                    guard let q = current, q == "'" || q == "\"" else { break }
                    i = start
                    return try strings()
                case "": throw error("unexpected character '\(c)'")
                default: break
                }
                throw error("'\(word)' is not a literal", at: start)
            }
        }

        mutating func identifier() -> String {
            var word = ""
            while let c = current, c.properties.isAlphabetic || c == "_" || ("0"..."9").contains(c) {
                word.unicodeScalars.append(c)
                i += 1
            }
            return word
        }

        mutating func dict() throws(PythonLiteralError) -> PythonValue {
            i += 1
            var entries: [PythonDictEntry] = []
            while true {
                skipSpace()
                if current == "}" {
                    i += 1
                    return .dict(entries)
                }
                let key = try value()
                if case .list = key { throw error("a list cannot be a dict key") }
                if case .dict = key { throw error("a dict cannot be a dict key") }
                skipSpace()
                guard current == ":" else { throw error("expected ':' after a dict key") }
                i += 1
                skipSpace()
                entries.append(PythonDictEntry(key: key, value: try value()))
                skipSpace()
                if current == "," {
                    i += 1
                    continue
                }
                guard current == "}" else { throw error("expected ',' or '}' in a dict") }
            }
        }

        mutating func sequence(closing: Unicode.Scalar) throws(PythonLiteralError) -> [PythonValue] {
            i += 1
            var items: [PythonValue] = []
            while true {
                skipSpace()
                if current == closing {
                    i += 1
                    return items
                }
                items.append(try value())
                skipSpace()
                if current == "," {
                    i += 1
                    continue
                }
                guard current == closing else { throw error("expected ',' or '\(closing)'") }
            }
        }

        mutating func signedNumber() throws(PythonLiteralError) -> PythonValue {
            let negative = current == "-"
            i += 1
            skipSpace()
            let start = i
            if current == "+" || current == "-" {
                let inner = try signedNumber()
                return negative ? try negate(inner, at: start) : inner
            }
            guard let c = current, ("0"..."9").contains(c) || c == "." else {
                throw error("a sign must be followed by a number")
            }
            let magnitude = try number()
            return negative ? try negate(magnitude, at: start) : magnitude
        }

        func negate(_ value: PythonValue, at position: Int) throws(PythonLiteralError) -> PythonValue {
            switch value {
            case .int(let n): return .int(-n)
            case .float(let x): return .float(-x)
            default: throw error("a sign must be followed by a number", at: position)
            }
        }

        mutating func number() throws(PythonLiteralError) -> PythonValue {
            let start = i
            var digits = ""
            var isFloat = false
            func take(_ c: Unicode.Scalar) { digits.unicodeScalars.append(c) }
            while let c = current {
                if ("0"..."9").contains(c) {
                    take(c)
                } else if c == "_" {
                    // Python allows one underscore between digits.
                    guard let last = digits.unicodeScalars.last, ("0"..."9").contains(last),
                        i + 1 < scalars.count, ("0"..."9").contains(scalars[i + 1])
                    else {
                        throw error("invalid underscore in a number")
                    }
                } else if c == "." && !isFloat && !digits.contains("e") {
                    isFloat = true
                    take(c)
                } else if c == "e" || c == "E" {
                    guard !digits.contains("e") else { break }
                    isFloat = true
                    take("e")
                    if let s = scalars[safe: i + 1], s == "+" || s == "-" {
                        i += 1
                        take(s)
                    }
                } else {
                    break
                }
                i += 1
            }
            if let c = current, c.properties.isAlphabetic || c == "_" {
                throw error("invalid number (\(c) is not allowed here)", at: i)
            }
            if isFloat {
                guard let x = Double(digits), x.isFinite || digits.contains("e") else {
                    throw error("invalid number '\(digits)'", at: start)
                }
                return .float(x)
            }
            if digits.count > 1 && digits.hasPrefix("0") && digits.contains(where: { $0 != "0" }) {
                throw error("leading zeros are not allowed in an integer", at: start)
            }
            guard let n = Int(digits) else { throw error("integer '\(digits)' is out of range", at: start) }
            return .int(n)
        }

        /// One or more adjacent string literals, concatenated as Python does.
        mutating func strings() throws(PythonLiteralError) -> PythonValue {
            var text = ""
            repeat {
                text += try string()
                skipSpace()
            } while isStringStart
            return .string(text)
        }

        var isStringStart: Bool {
            var j = i
            while let c = scalars[safe: j], c.properties.isAlphabetic, j - i < 2 { j += 1 }
            guard let q = scalars[safe: j], q == "'" || q == "\"" else { return false }
            let prefix = String(String.UnicodeScalarView(scalars[i..<j])).lowercased()
            return ["", "r", "u"].contains(prefix)
        }

        mutating func string() throws(PythonLiteralError) -> String {
            let start = i
            var prefix = ""
            while let c = current, c != "'" && c != "\"" {
                prefix.unicodeScalars.append(c)
                i += 1
            }
            let raw: Bool
            switch prefix.lowercased() {
            case "": raw = false
            case "u": raw = false
            case "r": raw = true
            case "b", "br", "rb": throw error("bytes literals are not supported", at: start)
            default: throw error("f-strings are not literals", at: start)
            }
            guard let quote = current else { throw error("unexpected end of the literal") }
            let triple = scalars[safe: i + 1] == quote && scalars[safe: i + 2] == quote
            i += triple ? 3 : 1
            var text = String.UnicodeScalarView()
            while true {
                guard let c = current else {
                    throw error("unterminated string literal", at: start)
                }
                if c == quote {
                    if !triple {
                        i += 1
                        return String(text)
                    }
                    if scalars[safe: i + 1] == quote && scalars[safe: i + 2] == quote {
                        i += 3
                        return String(text)
                    }
                }
                if (c == "\n" || c == "\r") && !triple {
                    throw error("unterminated string literal (line break inside quotes)", at: start)
                }
                if c == "\\" {
                    if raw {
                        // A raw string keeps the backslash, but it still protects a quote.
                        text.append(c)
                        i += 1
                        if let next = current {
                            text.append(next)
                            i += 1
                        }
                        continue
                    }
                    try escape(into: &text)
                    continue
                }
                text.append(c)
                i += 1
            }
        }

        mutating func escape(into text: inout String.UnicodeScalarView) throws(PythonLiteralError) {
            let start = i
            i += 1
            guard let c = current else { throw error("unterminated string literal") }
            i += 1
            switch c {
            case "\n": break // line continuation
            case "\r": if current == "\n" { i += 1 }
            case "\\": text.append("\\")
            case "'": text.append("'")
            case "\"": text.append("\"")
            case "a": text.append("\u{07}")
            case "b": text.append("\u{08}")
            case "f": text.append("\u{0C}")
            case "n": text.append("\n")
            case "r": text.append("\r")
            case "t": text.append("\t")
            case "v": text.append("\u{0B}")
            case "x": text.append(try hexScalar(digits: 2, escapeStart: start))
            case "u": text.append(try hexScalar(digits: 4, escapeStart: start))
            case "U": text.append(try hexScalar(digits: 8, escapeStart: start))
            case "0"..."7":
                var value = Int(c.value - 48)
                var count = 1
                while count < 3, let d = current, ("0"..."7").contains(d) {
                    value = value * 8 + Int(d.value - 48)
                    count += 1
                    i += 1
                }
                text.append(Unicode.Scalar(UInt32(value))!)
            case "N": throw error("\\N{...} escapes are not supported", at: start)
            default:
                // Python keeps unknown escapes as written (with a warning).
                text.append("\\")
                text.append(c)
            }
        }

        mutating func hexScalar(digits: Int, escapeStart: Int) throws(PythonLiteralError) -> Unicode.Scalar {
            var value: UInt32 = 0
            for _ in 0..<digits {
                guard let c = current, c.isASCII, c != "+", c != "-", let d = UInt32(String(c), radix: 16) else {
                    throw error("truncated \\x, \\u or \\U escape", at: escapeStart)
                }
                value = value * 16 + d
                i += 1
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw error(
                    "escape \\\(digits == 8 ? "U" : digits == 4 ? "u" : "x") is not a Unicode scalar (a lone surrogate or out of range)",
                    at: escapeStart)
            }
            return scalar
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? {
        indices.contains(index) ? self[index] : nil
    }
}
