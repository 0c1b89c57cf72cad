import Exam
import Foundation
import GRDB

/// The one source of truth of a workspace: `suneung.sqlite`, in WAL mode, changed only
/// inside transactions so that a killed command leaves no half-written record.
public final class Store: Sendable {
    public let workspace: Workspace
    let database: DatabasePool

    /// Whether this store can be changed: false when the workspace is read-only (a
    /// copy on a read-only mount): read commands still work there.
    public let writable: Bool

    /// Opens the workspace's store and brings its schema up to date (Migrations.swift).
    /// With `create: false` a missing store is an error that says how to make one.
    public init(workspace: Workspace, create: Bool = false) throws {
        self.workspace = workspace
        let path = workspace.databasePath
        if !create && !FileManager.default.fileExists(atPath: path) {
            throw StoreError.noStore(
                "no \(Workspace.databaseName) in \(workspace.root.path) or any folder above it (run `suneung init` there, or pass --workspace DIR)"
            )
        }
        if create { try workspace.createFolders() }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        // GRDB begins write transactions IMMEDIATE: the write lock is taken when they
        // begin, so that what they read (versions, files about to be written) cannot
        // change under them.
        writable = access(workspace.root.path, W_OK) == 0 && (access(path, W_OK) == 0 || !FileManager.default.fileExists(atPath: path))
        let migrator = Store.migrator
        if writable {
            database = try DatabasePool(path: path, configuration: configuration)
            if try database.read({ try migrator.hasBeenSuperseded($0) }) {
                throw StoreError.newerSchema(
                    "\(path) was written by a newer suneung (its schema has migrations this build does not know); upgrade suneung to use it"
                )
            }
            // Two commands started at once on a new folder both find no schema; the one
            // that loses the race finds the tables made and tries again.
            for attempt in 1... {
                do {
                    try migrator.migrate(database)
                    break
                } catch is DatabaseError where attempt < 5 {
                    if try database.read({ try migrator.hasCompletedMigrations($0) }) { break }
                    usleep(50_000)
                }
            }
        } else {
            // Without write access SQLite cannot make the WAL's shared-memory file, so
            // the file is opened as immutable: nothing can change it from here.
            configuration.readonly = true
            let uriPath = path.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "?", with: "%3f").replacingOccurrences(
                of: "#", with: "%23")
            database = try DatabasePool(path: "file:\(uriPath)?immutable=1", configuration: configuration)
            guard try database.read({ try migrator.hasCompletedMigrations($0) }) else {
                throw StoreError.noStore("\(path) is read-only and needs an upgrade of its schema: open it once where it is writable")
            }
        }
    }

    /// Refuses a change to a read-only workspace before anything is attempted.
    public func requireWritable() throws {
        guard writable else {
            throw StoreError.invalid("the workspace \(workspace.root.path) is read-only: this command changes the store")
        }
        try workspace.checkFolders()
    }

    // MARK: - Datasets

    /// The dataset with this content; registered (parsed and validated) on first sight.
    /// Identity is the parsed items, so CRLF line ends or a byte-order mark do not make
    /// another dataset.
    public func dataset(file path: String) throws -> DatasetRecord {
        let bytes = try readFile(path)
        let sha = sha256Hex(bytes)
        if let known = try database.read({ try DatasetRecord.filter(Column("sha256") == sha).fetchOne($0) }) {
            return known
        }
        let parsed = ExamSet.parse(bytes: bytes, file: path)
        guard parsed.problems.isEmpty else { throw FileProblems(parsed.problems) }
        let content = contentDigest(of: parsed.items)
        if let known = try database.read({ try DatasetRecord.filter(Column("contentSha256") == content).fetchOne($0) }) {
            return known
        }
        try requireWritable()
        return try write { db in
            if let known = try DatasetRecord.filter(Column("contentSha256") == content).fetchOne(db) { return known }
            var record = DatasetRecord(
                sha256: sha, itemIds: parsed.items.map(\.id), choiceCounts: parsed.items.map(\.choices.count),
                itemCount: parsed.items.count, path: workspace.relative(URL(fileURLWithPath: path)), createdAt: Date(),
                contentSha256: content)
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

        public var set: PredictionSetRecord {
            switch self {
            case .created(let set), .identical(let set): set
            }
        }
    }

    /// Who made a set and what the team says of it.
    public struct SetNotes: Sendable {
        public var author: String?
        public var tags: [String]
        public var note: String?

        public init(author: String? = nil, tags: [String] = [], note: String? = nil) {
            self.author = author
            self.tags = tags
            self.note = note
        }
    }

    /// Stores `table` as NAME@v(k+1), or reports the existing version with the same
    /// canonical CSV. The rows and predictions/NAME@vK.csv go in within one transaction
    /// (see `writeWithFiles`); `afterRow` lets a test fail between rows to show that
    /// nothing partial remains.
    public func addPredictionSet(
        name: String, dataset: DatasetRecord, table: PredictionTable, origin: SetOrigin, lineage: Lineage, notes: SetNotes = SetNotes(),
        afterRow: (Int) throws -> Void = { _ in }
    ) throws -> AddOutcome {
        try requireWritable()
        let csv = table.canonicalCSV
        let outcome = try writeWithFiles { db in
            let outcome = try addPredictionSet(
                name: name, dataset: dataset, table: table, canonicalCSV: csv, origin: origin, lineage: lineage, notes: notes,
                afterRow: afterRow, in: db)
            guard case .created(let set) = outcome else { return (outcome, []) }
            return (outcome, [ManagedFile(url: workspace.predictionFile(for: set.ref), text: csv, owner: set.ref)])
        }
        if case .identical(let set) = outcome { try restoreFile(of: set) }
        return outcome
    }

    /// The database part of `addPredictionSet`, inside the caller's transaction. A name
    /// belongs to one origin: an import can never add a version under an ensemble's
    /// name, nor an ensemble under an import's, so `export NAME` never changes kind.
    /// `createdAt` is a set's first recording when it comes from another store (pull, push).
    func addPredictionSet(
        name: String, dataset: DatasetRecord, table: PredictionTable, canonicalCSV: String, origin: SetOrigin, lineage: Lineage,
        notes: SetNotes, createdAt: Date = Date(), afterRow: (Int) throws -> Void = { _ in }, in db: Database
    ) throws -> AddOutcome {
        try SetRef.checkName(name)
        for tag in notes.tags { try SetRef.checkName(tag, what: "tag") }
        try TextLimits.checkNote(notes.note, of: name)
        try TextLimits.checkAuthor(notes.author, of: name)
        let sha = sha256Hex(canonicalCSV.utf8)
        let versions = try PredictionSetRecord.filter(Column("name") == name).order(Column("version")).fetchAll(db)
        if let first = versions.first, first.origin != origin {
            throw StoreError.invalid(
                "\(name) is the name of \(first.origin.described) sets (\(versions.last!.ref)); \(origin.described) sets cannot be added under it: choose another name"
            )
        }
        if let same = versions.first(where: { $0.csvSha256 == sha && $0.datasetId == dataset.id }) {
            return .identical(same)
        }
        var position: [String: Int] = [:]
        for (index, id) in dataset.itemIds.enumerated() { position[id] = index }
        var record = PredictionSetRecord(
            name: name, version: (versions.last?.version ?? 0) + 1, datasetId: dataset.id!, origin: origin,
            choiceValues: table.choiceValues, lineage: lineage, csvSha256: sha, createdAt: createdAt,
            answersSha256: sha256Hex(table.submissionCSV.utf8), csvBytes: canonicalCSV.utf8.count, itemCount: table.rows.count,
            invalidAnswers: table.rows.filter { $0.invalidAnswer != nil }.count, author: notes.author, note: notes.note,
            answerCounts: AnswerCounts(table, dataset: dataset))
        try record.insert(db)
        let insert = try db.makeStatement(
            sql:
                "INSERT INTO predictionRow (setId, position, itemId, answer, invalidAnswer, value1, value2, value3, value4, value5) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        for (index, row) in table.rows.enumerated() {
            guard let at = position[row.id] else { throw StoreError.invalid("item \(excerpt(row.id)) is not in the dataset") }
            var arguments: StatementArguments = [record.id!, at, row.id, row.invalidAnswer == nil ? row.answer : nil, row.invalidAnswer]
            arguments += StatementArguments(row.values)
            try insert.execute(arguments: arguments)
            try afterRow(index)
        }
        for tag in Set(notes.tags) { try db.execute(sql: "INSERT INTO tag (setId, tag) VALUES (?, ?)", arguments: [record.id, tag]) }
        return .created(record)
    }

    /// The set named by a reference; NAME alone means its latest version. An unknown
    /// name gets the nearest known name as a suggestion.
    public func predictionSet(_ ref: SetRef) throws -> PredictionSetRecord {
        try database.read { db in
            var request = PredictionSetRecord.filter(Column("name") == ref.name)
            if let version = ref.version { request = request.filter(Column("version") == version) }
            if let record = try request.order(Column("version").desc).fetchOne(db) { return record }
            if let version = ref.version,
                let latest = try PredictionSetRecord.filter(Column("name") == ref.name).order(Column("version").desc).fetchOne(db)
            {
                throw StoreError.notFound("\(ref.name) has no version \(version) (the latest is \(latest.ref))")
            }
            let names = try String.fetchAll(db, sql: "SELECT DISTINCT name FROM predictionSet")
            var message = "no prediction set or submission named \(excerpt(ref.name))"
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
            try Row.fetchAll(
                db,
                sql:
                    "SELECT itemId, answer, value1, value2, value3, value4, value5, invalidAnswer FROM predictionRow WHERE setId = ? ORDER BY position",
                arguments: [set.id])
        }
        return PredictionTable(
            choiceValues: set.choiceValues,
            rows: rows.map { row in
                PredictionRow(id: row[0], answer: (row[1] as Int?) ?? 0, values: (2...6).map { row[$0] as Double? }, invalidAnswer: row[7])
            })
    }

    /// The canonical CSV, rebuilt from the rows and checked against the recorded hash.
    public func canonicalCSV(of set: PredictionSetRecord) throws -> String {
        try checkedTable(of: set).canonicalCSV
    }

    /// The rows of a set, checked against the sha256 recorded when it was made: what
    /// `export`, `ensemble`, `diff` and `agree` read.
    public func checkedTable(of set: PredictionSetRecord) throws -> PredictionTable {
        let table = try table(of: set)
        guard sha256Hex(table.canonicalCSV.utf8) == set.csvSha256 else {
            throw StoreError.corrupted(
                "the rows of \(set.ref) no longer give the CSV whose sha256 was recorded (\(set.csvSha256.prefix(12))...): the store was changed outside suneung (`suneung fsck` checks the whole store)"
            )
        }
        return table
    }

    // MARK: - Scores

    /// Records several scores at once: all of them, or (on a bad value) none. A score
    /// equal to the latest one of its kind is not recorded again (re-running a script
    /// adds no duplicates); the result says which were new. Public and private scores
    /// are one leaderboard upload, logged with its author and note, unless `simulated`
    /// (the pipeline's leaderboard from a gold file uploads nothing).
    @discardableResult
    public func addScores(
        to set: PredictionSetRecord, _ scores: [(kind: ScoreKind, value: Double, note: String?)], author: String? = nil,
        simulated: Bool = false
    ) throws -> [(kind: ScoreKind, value: Double, recorded: Bool)] {
        for score in scores where !(score.value.isFinite && (0...1).contains(score.value)) {
            let hint = score.value > 1 && score.value <= 100 ? " (a percentage? that would be \(score.value / 100))" : ""
            throw StoreError.invalid("\(score.kind.rawValue) score \(score.value) is not an accuracy in [0, 1]\(hint)")
        }
        for score in scores { try TextLimits.checkNote(score.note, of: "the score") }
        try TextLimits.checkAuthor(author, of: "the score")
        try requireWritable()
        return try write { db in
            let now = Date()
            let fresh = try scores.filter { try latestScore(of: set, $0.kind, in: db) != $0.value }
            var uploadId: Int64?
            if !simulated, let leaderboard = fresh.first(where: { $0.kind != .local }) {
                var upload = UploadRecord(setId: set.id!, note: leaderboard.note, author: author, createdAt: now)
                try upload.insert(db)
                uploadId = upload.id
            }
            return try scores.map { score in
                guard fresh.contains(where: { $0.kind == score.kind }) else { return (score.kind, score.value, false) }
                var record = ScoreRecord(
                    setId: set.id!, kind: score.kind, value: score.value, note: score.note, createdAt: now,
                    uploadId: score.kind == .local ? nil : uploadId, author: author)
                try record.insert(db)
                return (score.kind, score.value, true)
            }
        }
    }

    /// The latest score of a kind that is not retracted, if any.
    public func latestScore(of set: PredictionSetRecord, _ kind: ScoreKind) throws -> Double? {
        try database.read { try latestScore(of: set, kind, in: $0) }
    }

    func latestScore(of set: PredictionSetRecord, _ kind: ScoreKind, in db: Database) throws -> Double? {
        try Double.fetchOne(
            db, sql: "SELECT value FROM score WHERE setId = ? AND kind = ? AND retractedAt IS NULL ORDER BY id DESC LIMIT 1",
            arguments: [set.id, kind.rawValue])
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
        /// The dataset's items.
        public var items: Int
        /// Items with a row: fewer than `items` for a subset.
        public var rows: Int
        public var choiceValues: ChoiceValues?
        public var `public`: Double?
        public var `private`: Double?
        public var local: Double?
        public var createdAt: Date
        public var author: String?
        public var tags: [String]
        public var note: String?
        public var hidden: Bool
        public var invalidAnswers: Int
        public var csvSha256: String
        public var answersSha256: String?
        /// Bytes of the canonical CSV in predictions/, to check the file cheaply.
        public var csvBytes: Int?
        /// Answers per position, per number of choices.
        public var answerCounts: AnswerCounts?

        public func score(_ kind: ScoreKind) -> Double? {
            switch kind {
            case .public: `public`
            case .private: `private`
            case .local: local
            }
        }

        public var subset: Bool { PredictionSetRecord.isSubset(rows: rows, datasetItems: items) }

        enum CodingKeys: String, CodingKey {
            case id, ref, name, version, origin, dataset, datasetSha256, items, rows, choiceValues, `public`, `private`, local, createdAt,
                author, tags, note, hidden, invalidAnswers, csvSha256, answersSha256, csvBytes, answerCounts, subset
        }

        init(
            id: Int64, ref: String, name: String, version: Int, origin: SetOrigin, dataset: String, datasetSha256: String, items: Int,
            rows: Int, choiceValues: ChoiceValues?,
            public: Double?, private: Double?, local: Double?, createdAt: Date, author: String?, tags: [String], note: String?,
            hidden: Bool, invalidAnswers: Int,
            csvSha256: String, answersSha256: String?, csvBytes: Int?, answerCounts: AnswerCounts?
        ) {
            (
                self.id, self.ref, self.name, self.version, self.origin, self.dataset, self.datasetSha256, self.items, self.rows,
                self.choiceValues
            ) = (id, ref, name, version, origin, dataset, datasetSha256, items, rows, choiceValues)
            (self.public, self.private, self.local, self.createdAt, self.author, self.tags, self.note, self.hidden, self.invalidAnswers) = (
                `public`, `private`, local, createdAt, author, tags, note, hidden, invalidAnswers
            )
            (self.csvSha256, self.answersSha256, self.csvBytes, self.answerCounts) = (csvSha256, answersSha256, csvBytes, answerCounts)
        }

        /// As a server's /api/v1/sets sends it (`list --remote`).
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                id: try c.decode(Int64.self, forKey: .id), ref: try c.decode(String.self, forKey: .ref),
                name: try c.decode(String.self, forKey: .name), version: try c.decode(Int.self, forKey: .version),
                origin: try c.decode(SetOrigin.self, forKey: .origin), dataset: try c.decode(String.self, forKey: .dataset),
                datasetSha256: try c.decode(String.self, forKey: .datasetSha256),
                items: try c.decode(Int.self, forKey: .items), rows: try c.decode(Int.self, forKey: .rows),
                choiceValues: try c.decodeIfPresent(ChoiceValues.self, forKey: .choiceValues),
                public: try c.decodeIfPresent(Double.self, forKey: .public), private: try c.decodeIfPresent(Double.self, forKey: .private),
                local: try c.decodeIfPresent(Double.self, forKey: .local),
                createdAt: try c.decode(Date.self, forKey: .createdAt), author: try c.decodeIfPresent(String.self, forKey: .author),
                tags: try c.decode([String].self, forKey: .tags),
                note: try c.decodeIfPresent(String.self, forKey: .note), hidden: try c.decode(Bool.self, forKey: .hidden),
                invalidAnswers: try c.decode(Int.self, forKey: .invalidAnswers),
                csvSha256: try c.decode(String.self, forKey: .csvSha256),
                answersSha256: try c.decodeIfPresent(String.self, forKey: .answersSha256),
                csvBytes: try c.decodeIfPresent(Int.self, forKey: .csvBytes),
                answerCounts: try c.decodeIfPresent(AnswerCounts.self, forKey: .answerCounts))
        }

        /// Every key, null where a value is missing (JSON readers should not guess).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(ref, forKey: .ref)
            try c.encode(name, forKey: .name)
            try c.encode(version, forKey: .version)
            try c.encode(origin, forKey: .origin)
            try c.encode(dataset, forKey: .dataset)
            try c.encode(datasetSha256, forKey: .datasetSha256)
            try c.encode(items, forKey: .items)
            try c.encode(rows, forKey: .rows)
            try c.encode(choiceValues, forKey: .choiceValues)
            try c.encode(self.public, forKey: .public)
            try c.encode(self.private, forKey: .private)
            try c.encode(local, forKey: .local)
            try c.encode(createdAt, forKey: .createdAt)
            try c.encode(author, forKey: .author)
            try c.encode(tags, forKey: .tags)
            try c.encode(note, forKey: .note)
            try c.encode(hidden, forKey: .hidden)
            try c.encode(invalidAnswers, forKey: .invalidAnswers)
            try c.encode(csvSha256, forKey: .csvSha256)
            try c.encode(answersSha256, forKey: .answersSha256)
            try c.encode(csvBytes, forKey: .csvBytes)
            try c.encode(answerCounts, forKey: .answerCounts)
            try c.encode(subset, forKey: .subset)
        }
    }

    /// Every set with its latest (not retracted) score of each kind, in one query.
    public func summaries() throws -> [SetSummary] {
        try database.read { db in
            func latest(_ kind: ScoreKind) -> String {
                "(SELECT value FROM score WHERE setId = s.id AND kind = '\(kind.rawValue)' AND retractedAt IS NULL ORDER BY id DESC LIMIT 1)"
            }
            var tags: [Int64: [String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT setId, tag FROM tag ORDER BY tag") { tags[row[0], default: []].append(row[1]) }
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT s.name, s.version, s.origin, d.sha256, d.itemCount, s.choiceValues, s.createdAt,
                           \(latest(.public)), \(latest(.private)), \(latest(.local)), s.id,
                           s.itemCount, s.author, s.note, s.hidden, s.invalidAnswers, s.csvSha256, s.answersSha256, s.csvBytes, s.answerCounts
                    FROM predictionSet s JOIN dataset d ON d.id = s.datasetId
                    ORDER BY s.name, s.version
                    """)
            return rows.map { row in
                let name: String = row[0], version: Int = row[1], sha: String = row[3]
                let id: Int64 = row[10], items: Int = row[4]
                return SetSummary(
                    id: id, ref: "\(name)@v\(version)", name: name, version: version, origin: SetOrigin(rawValue: row[2]) ?? .imported,
                    dataset: String(sha.prefix(8)), datasetSha256: sha, items: items, rows: (row[11] as Int?) ?? items,
                    choiceValues: (row[5] as String?).flatMap(ChoiceValues.init), public: row[7], private: row[8], local: row[9],
                    createdAt: row[6],
                    author: row[12], tags: tags[id] ?? [], note: row[13], hidden: row[14], invalidAnswers: row[15], csvSha256: row[16],
                    answersSha256: row[17], csvBytes: row[18],
                    answerCounts: (row[19] as String?).flatMap { try? JSONDecoder().decode(AnswerCounts.self, from: Data($0.utf8)) })
            }
        }
    }
}
