/// A field as quoted in a message: control characters escaped (a note or a broken file
/// cannot move the terminal's cursor) and at most `limit` characters, with the full
/// length said when cut (a 10 MB id is not echoed whole).
public func excerpt(_ text: String, limit: Int = 80) -> String {
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
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.properties.generalCategory == .format && scalar.value != 0x200D {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        shown += 1
    }
    return out
}
