import Crypto
import Foundation
import GRDB

/// What a token may do on `suneung serve`: read, or read and write.
public enum TokenRole: String, Codable, Sendable, CaseIterable {
    case read
    case write
}

/// A member's access to the team server. The store keeps only the token's SHA-256:
/// the token itself is printed once, when it is made.
public struct TokenRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "token"

    public var id: Int64?
    /// Who holds it; the author of what it creates.
    public var name: String
    public var role: TokenRole
    public var sha256: String
    public var createdAt: Date
    public var revokedAt: Date?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Store {

    /// Makes a token for NAME (who may hold several) and returns it: 32 random bytes,
    /// hex, after `snt_` so that it is recognisable in a config file.
    public func addToken(name: String, role: TokenRole) throws -> (record: TokenRecord, token: String) {
        try SetRef.checkName(name, what: "token name")
        try requireWritable()
        var generator = SystemRandomNumberGenerator()
        let token = "snt_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        var record = TokenRecord(name: name, role: role, sha256: sha256Hex(token.utf8), createdAt: Date())
        try write { try record.insert($0) }
        return (record, token)
    }

    public func tokens() throws -> [TokenRecord] {
        try database.read { try TokenRecord.order(Column("id")).fetchAll($0) }
    }

    /// Revokes every live token of NAME; returns how many.
    public func revokeTokens(name: String) throws -> Int {
        try requireWritable()
        return try write { db in
            try db.execute(sql: "UPDATE token SET revokedAt = ? WHERE name = ? AND revokedAt IS NULL", arguments: [Date(), name])
            guard db.changesCount > 0 else {
                let known = try String.fetchAll(db, sql: "SELECT DISTINCT name FROM token WHERE revokedAt IS NULL ORDER BY name")
                throw StoreError.notFound("no live token named \(name) (live: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
            }
            return db.changesCount
        }
    }

    /// The live token whose SHA-256 is this token's, if any (compared by digest, so the
    /// comparison's time says nothing about the token).
    public func liveToken(_ token: String) throws -> TokenRecord? {
        let digest = sha256Hex(token.utf8)
        return try database.read { try TokenRecord.filter(Column("sha256") == digest && Column("revokedAt") == nil).fetchOne($0) }
    }
}
