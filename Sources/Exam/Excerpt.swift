/// A field as quoted in a message: control characters escaped (a note or a broken file
/// cannot move the terminal's cursor) and at most `limit` characters, with the full
/// length said when cut (a 10 MB id is not echoed whole).
public func excerpt(_ text: String, limit: Int = 80) -> String {
    // Printable ASCII within the limit is itself (most of a table's cells).
    if text.utf8.count <= limit, text.utf8.allSatisfy({ (0x20..<0x7F).contains($0) }) { return text }
    var out = ""
    var shown = 0
    for scalar in text.unicodeScalars {
        if shown == limit {
            return out + "… (\(text.unicodeScalars.count) characters)"
        }
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if isControlCharacter(scalar) || scalar.properties.generalCategory == .format && scalar.value != 0x200D {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        shown += 1
    }
    return out
}

/// C0 controls, DEL and C1 controls: what a field never holds as text (NUL cuts it in
/// C and SQLite; ESC drives terminals). The one definition that quoting and the readers'
/// refusals share.
public func isControlCharacter(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
}

/// The first control character of a field other than tab and line breaks (which CSV
/// fields and numpy's wrapped lists hold), if any.
public func strayControlCharacter(in text: String) -> Unicode.Scalar? {
    text.unicodeScalars.first { isControlCharacter($0) && !["\t", "\n", "\r"].contains($0) }
}

/// `U+001B`: how a message names a character.
public func unicodeCode(_ scalar: Unicode.Scalar) -> String {
    let digits = String(scalar.value, radix: 16, uppercase: true)
    return "U+" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// The first of a record's fields holding a stray control character, with the words
/// that say so: what the exam and prediction readers refuse.
public func controlCharacterProblem(in fields: [String]) -> (field: Int, message: String)? {
    for (index, field) in fields.enumerated() {
        if let character = strayControlCharacter(in: field) {
            return (index, "a control character (\(unicodeCode(character))) in \(excerpt(field))")
        }
    }
    return nil
}
