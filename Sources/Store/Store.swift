import Exam
import Foundation
import GRDB

/// The one source of truth of a workspace: `suneung.sqlite`, in WAL mode, changed only
/// inside transactions so that a killed command leaves no half-written record.
public final class Store: Sendable {
    public let workspace: Workspace
    let database: DatabasePool

    /// Opens the workspace's store and brings its schema up to date. With
    /// `create: false` a missing store is an error that says how to make one.
    public init(workspace: Workspace, create: Bool = false) throws {
        self.workspace = workspace
        let path = workspace.databasePath
        if !create && !FileManager.default.fileExists(atPath: path) {
            throw StoreError.noStore("no \(Workspace.databaseName) in \(workspace.root.path) or any folder above it (run `suneung init` there, or pass --workspace DIR)")
        }
        if create { try workspace.createFolders() }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        database = try DatabasePool(path: path, configuration: configuration)
        let migrator = Store.migrator
        if try database.read({ try migrator.hasBeenSuperseded($0) }) {
            throw StoreError.newerSchema("\(path) was written by a newer suneung (its schema has migrations this build does not know); upgrade suneung to use it")
        }
        try migrator.migrate(database)
    }

    /// Schema versions, oldest first. A migration, once released, never changes:
    /// a new schema is a new migration.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 datasets, prediction sets, scores") { db in
            try db.create(table: "dataset") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("sha256", .text).notNull().unique()
                t.column("itemIds", .text).notNull()
                t.column("choiceCounts", .text).notNull()
                t.column("itemCount", .integer).notNull()
                t.column("path", .text)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "predictionSet") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull().check { $0 >= 1 }
                t.column("datasetId", .integer).notNull().references("dataset")
                t.column("origin", .text).notNull().check { ["imported", "engine", "ensemble"].contains($0) }
                t.column("choiceValues", .text).check { $0 == nil || ["logits", "probabilities"].contains($0) }
                t.column("lineage", .text).notNull()
                t.column("csvSha256", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.uniqueKey(["name", "version"])
            }
            // One row per item; value1..value5 are logits or probabilities, as the
            // set's choiceValues says, and NULL past an item's choices.
            try db.create(table: "predictionRow", options: .withoutRowID) { t in
                t.column("setId", .integer).notNull().references("predictionSet", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("itemId", .text).notNull()
                t.column("answer", .integer).notNull().check { $0 >= 1 && $0 <= 5 }
                for choice in 1...PredictionRow.maxChoices { t.column("value\(choice)", .double) }
                t.primaryKey(["setId", "position"])
            }
            try db.create(table: "score") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("setId", .integer).notNull().references("predictionSet", onDelete: .cascade)
                t.column("kind", .text).notNull().check { ["public", "private", "local"].contains($0) }
                t.column("value", .double).notNull().check { $0 >= 0 && $0 <= 1 }
                t.column("note", .text)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(index: "scoreBySet", on: "score", columns: ["setId", "kind", "id"])
        }
        registerSubmissionMigration(&migrator)
        registerRunMigration(&migrator)
        registerTrainingMigration(&migrator)
        registerPipelineMigration(&migrator)
        return migrator
    }

    // MARK: - Datasets

    /// The dataset with these bytes; registered (parsed and validated) on first sight.
    public func dataset(file path: String) throws -> DatasetRecord {
        let bytes = try readFile(path)
        let sha = sha256Hex(bytes)
        if let known = try database.read({ try DatasetRecord.filter(Column("sha256") == sha).fetchOne($0) }) {
            return known
        }
        let parsed = ExamSet.parse(bytes: bytes, file: path)
        guard parsed.problems.isEmpty else { throw FileProblems(parsed.problems) }
        return try database.write { db in
            if let known = try DatasetRecord.filter(Column("sha256") == sha).fetchOne(db) { return known }
            var record = DatasetRecord(sha256: sha, itemIds: parsed.items.map(\.id), choiceCounts: parsed.items.map(\.choices.count), itemCount: parsed.items.count, path: URL(fileURLWithPath: path).standardizedFileURL.path, createdAt: Date())
            try record.insert(db)
            return record
        }
    }

    public func dataset(id: Int64) throws -> DatasetRecord {
        guard let record = try database.read({ try DatasetRecord.fetchOne($0, key: id) }) else {
            throw StoreError.corrupted("dataset \(id) is missing from the store")
        }
        return record
    }

    // MARK: - Prediction sets

    public enum AddOutcome: Sendable {
        case created(PredictionSetRecord)
        /// The same content is already stored under this version.
        case identical(PredictionSetRecord)
    }

    /// Stores `table` as NAME@v(k+1), or reports the existing version with the same
    /// canonical CSV. Rows go in within the set's own transaction; `afterRow` lets a
    /// test fail between rows to show that nothing partial remains.
    public func addPredictionSet(name: String, dataset: DatasetRecord, table: PredictionTable, origin: SetOrigin, lineage: Lineage, afterRow: (Int) throws -> Void = { _ in }) throws -> AddOutcome {
        let csv = table.canonicalCSV
        let outcome = try database.write { db in
            try addPredictionSet(name: name, dataset: dataset, table: table, canonicalCSV: csv, origin: origin, lineage: lineage, afterRow: afterRow, in: db)
        }
        if case .created(let record) = outcome {
            try writeAtomically(csv, to: workspace.predictionFile(for: record.ref))
        }
        return outcome
    }

    /// The database part of `addPredictionSet`, inside the caller's transaction.
    func addPredictionSet(name: String, dataset: DatasetRecord, table: PredictionTable, canonicalCSV: String, origin: SetOrigin, lineage: Lineage, afterRow: (Int) throws -> Void = { _ in }, in db: Database) throws -> AddOutcome {
        try SetRef.checkName(name)
        let sha = sha256Hex(canonicalCSV.utf8)
        let versions = try PredictionSetRecord.filter(Column("name") == name).order(Column("version")).fetchAll(db)
        if let same = versions.first(where: { $0.csvSha256 == sha && $0.datasetId == dataset.id }) {
            return .identical(same)
        }
        var record = PredictionSetRecord(name: name, version: (versions.last?.version ?? 0) + 1, datasetId: dataset.id!, origin: origin, choiceValues: table.choiceValues, lineage: lineage, csvSha256: sha, createdAt: Date())
        try record.insert(db)
        let insert = try db.makeStatement(sql: "INSERT INTO predictionRow (setId, position, itemId, answer, value1, value2, value3, value4, value5) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        for (position, row) in table.rows.enumerated() {
            var arguments: StatementArguments = [record.id!, position, row.id, row.answer]
            arguments += StatementArguments(row.values)
            try insert.execute(arguments: arguments)
            try afterRow(position)
        }
        return .created(record)
    }

    /// The set named by a reference; NAME alone means its latest version. An unknown
    /// name gets the nearest known name as a suggestion.
    public func predictionSet(_ ref: SetRef) throws -> PredictionSetRecord {
        try database.read { db in
            var request = PredictionSetRecord.filter(Column("name") == ref.name)
            if let version = ref.version { request = request.filter(Column("version") == version) }
            if let record = try request.order(Column("version").desc).fetchOne(db) { return record }
            if let version = ref.version, let latest = try PredictionSetRecord.filter(Column("name") == ref.name).order(Column("version").desc).fetchOne(db) {
                throw StoreError.notFound("\(ref.name) has no version \(version) (the latest is \(latest.ref))")
            }
            let names = try String.fetchAll(db, sql: "SELECT DISTINCT name FROM predictionSet")
            var message = "no prediction set or submission named \(ref.name)"
            if let nearest = nearestName(to: ref.name, among: names) { message += " (did you mean \(nearest)?)" }
            throw StoreError.notFound(message)
        }
    }

    public func predictionSet(_ text: String) throws -> PredictionSetRecord {
        try predictionSet(try SetRef(parsing: text))
    }

    /// The rows of a set, in dataset order.
    public func table(of set: PredictionSetRecord) throws -> PredictionTable {
        let rows = try database.read { db in
            try Row.fetchAll(db, sql: "SELECT itemId, answer, value1, value2, value3, value4, value5 FROM predictionRow WHERE setId = ? ORDER BY position", arguments: [set.id])
        }
        return PredictionTable(choiceValues: set.choiceValues, rows: rows.map { row in
            PredictionRow(id: row[0], answer: row[1], values: (2...6).map { row[$0] as Double? })
        })
    }

    /// The canonical CSV, rebuilt from the rows and checked against the recorded hash.
    public func canonicalCSV(of set: PredictionSetRecord) throws -> String {
        let csv = try table(of: set).canonicalCSV
        guard sha256Hex(csv.utf8) == set.csvSha256 else {
            throw StoreError.corrupted("the rows of \(set.ref) no longer give the CSV whose sha256 was recorded (\(set.csvSha256.prefix(12))...): the store was changed outside suneung")
        }
        return csv
    }

    // MARK: - Scores

    /// Records several scores at once: all of them, or (on a bad value) none. A score
    /// equal to the latest one of its kind is not recorded again (re-running a script
    /// adds no duplicates); the result says which were new.
    @discardableResult
    public func addScores(to set: PredictionSetRecord, _ scores: [(kind: ScoreKind, value: Double, note: String?)]) throws -> [(kind: ScoreKind, value: Double, recorded: Bool)] {
        for score in scores where !(score.value.isFinite && (0...1).contains(score.value)) {
            let hint = score.value > 1 && score.value <= 100 ? " (a percentage? that would be \(score.value / 100))" : ""
            throw StoreError.invalid("\(score.kind.rawValue) score \(score.value) is not an accuracy in [0, 1]\(hint)")
        }
        return try database.write { db in
            try scores.map { score in
                guard try latestScore(of: set, score.kind, in: db) != score.value else { return (score.kind, score.value, false) }
                var record = ScoreRecord(setId: set.id!, kind: score.kind, value: score.value, note: score.note, createdAt: Date())
                try record.insert(db)
                return (score.kind, score.value, true)
            }
        }
    }

    /// The latest score of a kind, if any.
    public func latestScore(of set: PredictionSetRecord, _ kind: ScoreKind) throws -> Double? {
        try database.read { try latestScore(of: set, kind, in: $0) }
    }

    func latestScore(of set: PredictionSetRecord, _ kind: ScoreKind, in db: Database) throws -> Double? {
        try Double.fetchOne(db, sql: "SELECT value FROM score WHERE setId = ? AND kind = ? ORDER BY id DESC LIMIT 1", arguments: [set.id, kind.rawValue])
    }

    public func predictionSet(id: Int64) throws -> PredictionSetRecord {
        guard let set = try database.read({ try PredictionSetRecord.fetchOne($0, key: id) }) else {
            throw StoreError.notFound("no prediction set with id \(id)")
        }
        return set
    }

    public func scores(of set: PredictionSetRecord) throws -> [ScoreRecord] {
        try database.read { try ScoreRecord.filter(Column("setId") == set.id).order(Column("id")).fetchAll($0) }
    }

    // MARK: - Listing

    public struct SetSummary: Sendable, Codable {
        public var id: Int64
        public var ref: String
        public var name: String
        public var version: Int
        public var origin: SetOrigin
        /// The dataset's short hash, for display.
        public var dataset: String
        public var datasetSha256: String
        public var items: Int
        public var choiceValues: ChoiceValues?
        public var `public`: Double?
        public var `private`: Double?
        public var local: Double?
        public var createdAt: Date
    }

    /// Every set with its latest score of each kind, in one query.
    public func summaries() throws -> [SetSummary] {
        try database.read { db in
            func latest(_ kind: ScoreKind) -> String {
                "(SELECT value FROM score WHERE setId = s.id AND kind = '\(kind.rawValue)' ORDER BY id DESC LIMIT 1)"
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT s.name, s.version, s.origin, d.sha256, d.itemCount, s.choiceValues, s.createdAt,
                       \(latest(.public)), \(latest(.private)), \(latest(.local)), s.id
                FROM predictionSet s JOIN dataset d ON d.id = s.datasetId
                ORDER BY s.name, s.version
                """)
            return rows.map { row in
                let name: String = row[0], version: Int = row[1], sha: String = row[3]
                return SetSummary(id: row[10], ref: "\(name)@v\(version)", name: name, version: version, origin: SetOrigin(rawValue: row[2]) ?? .imported, dataset: String(sha.prefix(8)), datasetSha256: sha, items: row[4], choiceValues: (row[5] as String?).flatMap(ChoiceValues.init), public: row[7], private: row[8], local: row[9], createdAt: row[6])
            }
        }
    }
}
