import Foundation
import Store

// The bodies of /api/v1 that the server and its client both read and write.

/// POST /api/v1/sets/REF/scores
public struct ScoreRequest: Codable, Sendable {
    public var `public`: Double?
    public var `private`: Double?
    public var note: String?
    public var simulated: Bool?

    public init(public: Double?, private: Double?, note: String?, simulated: Bool?) {
        self.public = `public`
        self.private = `private`
        self.note = note
        self.simulated = simulated
    }
}

/// PUT /api/v1/datasets/SHA's answer.
public struct DatasetAnswer: Codable, Sendable {
    public var contentSha256: String
    public var items: Int

    public init(contentSha256: String, items: Int) {
        self.contentSha256 = contentSha256
        self.items = items
    }
}

/// POST /api/v1/sets's answer.
public struct ImportAnswer: Codable, Sendable {
    public var set: String
    public var created: Bool
    public var rows: Int
    public var invalidAnswers: Int
    public var ignoredColumns: [String]
    public var sameContent: [String]

    public init(set: String, created: Bool, rows: Int, invalidAnswers: Int, ignoredColumns: [String], sameContent: [String]) {
        self.set = set
        self.created = created
        self.rows = rows
        self.invalidAnswers = invalidAnswers
        self.ignoredColumns = ignoredColumns
        self.sameContent = sameContent
    }
}

/// Which of these sets (by name and content) and datasets the server has.
public struct HaveRequest: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var name: String
        public var csvSha256: String
        public var dataset: String
        public var origin: SetOrigin?

        public init(name: String, csvSha256: String, dataset: String, origin: SetOrigin?) {
            self.name = name
            self.csvSha256 = csvSha256
            self.dataset = dataset
            self.origin = origin
        }
    }

    public var sets: [Entry]
    public var datasets: [String]

    public init(sets: [Entry], datasets: [String]) {
        self.sets = sets
        self.datasets = datasets
    }
}

public struct HaveAnswer: Codable, Sendable {
    public var sets: [Bool]
    public var datasets: [Bool]
    /// Why some sets could not be received (a name of another kind of set there).
    public var conflicts: [String]

    public init(sets: [Bool], datasets: [Bool], conflicts: [String]) {
        self.sets = sets
        self.datasets = datasets
        self.conflicts = conflicts
    }
}

/// Whose token this is.
public struct WhoAmI: Codable, Sendable {
    public var name: String
    public var role: TokenRole

    public init(name: String, role: TokenRole) {
        self.name = name
        self.role = role
    }
}

/// A set's ref or a dataset's digest as one segment of an /api/v1 or dashboard path:
/// the unreserved characters and `@`, everything else percent-encoded.
public func pathValue(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~@"))) ?? ""
}
