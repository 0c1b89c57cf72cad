import Exam

/// The limits of the free text a team writes (notes, author names): one rule for every
/// way in (the CLI, the API, a pushed or pulled bundle), so that what one member could
/// store every other member can pull.
public enum TextLimits {
    public static let maxNoteCharacters = 10_000
    public static let maxAuthorCharacters = 100

    /// A note may hold line breaks and tabs, but no other control character: NUL cuts
    /// the text in SQLite, ESC drives terminals.
    public static func checkNote(_ note: String?, of what: String) throws {
        guard let note else { return }
        guard note.count <= maxNoteCharacters else {
            throw StoreError.invalid("\(what)'s note has \(note.count) characters (at most \(maxNoteCharacters))")
        }
        if let character = strayControlCharacter(in: note) {
            throw StoreError.invalid("\(what)'s note has a control character (\(unicodeCode(character))): notes are text")
        }
    }

    /// An author is a name: one line, no control character.
    public static func checkAuthor(_ author: String?, of what: String) throws {
        guard let author else { return }
        guard author.count <= maxAuthorCharacters else {
            throw StoreError.invalid("\(what)'s author has \(author.count) characters (at most \(maxAuthorCharacters))")
        }
        if let character = author.unicodeScalars.first(where: isControlCharacter) {
            throw StoreError.invalid("\(what)'s author '\(excerpt(author))' has a control character (\(unicodeCode(character)))")
        }
    }
}
