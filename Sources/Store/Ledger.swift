import Exam
import Foundation
import GRDB

/// One leaderboard upload: the public and private scores a `score` call recorded.
public struct UploadRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "upload"

    public var id: Int64?
    public var setId: Int64
    public var note: String?
    public var author: String?
    public var createdAt: Date
    public var retractedAt: Date?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Store {

    static func table(setId: Int64, choiceValues: ChoiceValues?, in db: Database) throws -> PredictionTable {
        let rows = try Row.fetchAll(
            db,
            sql:
                "SELECT itemId, answer, value1, value2, value3, value4, value5, invalidAnswer FROM predictionRow WHERE setId = ? ORDER BY position",
            arguments: [setId])
        return PredictionTable(
            choiceValues: choiceValues,
            rows: rows.map { row in
                PredictionRow(
                    id: row[0], answer: (row[1] as Int?) ?? 0, values: (2...6).map { row[$0] as Double? }, invalidAnswer: row[7])
            })
    }

    /// Writes the canonical CSV of a set again if its file is missing or differs.
    /// Returns whether it had to.
    @discardableResult
    public func restoreFile(of set: PredictionSetRecord) throws -> Bool {
        let url = workspace.predictionFile(for: set.ref)
        if let bytes = try? readFile(url.path), sha256Hex(bytes) == set.csvSha256 { return false }
        guard writable else { return false }
        try writeAtomically(try canonicalCSV(of: set), to: url)
        return true
    }

    /// What is wrong with a set's file in predictions/, found cheaply (its presence and
    /// size; `fsck` and `show` compare the sha256): nil when it looks right.
    public func fileProblem(_ set: SetSummary) -> String? {
        let path = workspace.predictionFile(for: SetRef(name: set.name, version: set.version)).path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return "missing" }
        if let expected = set.csvBytes, (attributes[.size] as? Int) != expected { return "changed" }
        return nil
    }

    /// The same, with the sha256.
    public func fileProblem(_ set: PredictionSetRecord) -> String? {
        guard let bytes = try? readFile(workspace.predictionFile(for: set.ref).path) else { return "missing" }
        return sha256Hex(bytes) == set.csvSha256 ? nil : "changed"
    }

    // MARK: - Content identity

    /// Other names' versions with the same answers and values over the same dataset.
    public func sameContent(as set: PredictionSetRecord) throws -> [PredictionSetRecord] {
        try database.read { db in
            try PredictionSetRecord.filter(
                Column("datasetId") == set.datasetId && Column("csvSha256") == set.csvSha256 && Column("id") != set.id
            ).order(Column("id")).fetchAll(db)
        }
    }

    /// Sets over the dataset whose answers are these, and whether each was uploaded.
    public func sameAnswers(_ table: PredictionTable, dataset: DatasetRecord, excluding: Int64? = nil) throws -> [(
        set: PredictionSetRecord, uploaded: Bool
    )] {
        let sha = sha256Hex(table.submissionCSV.utf8)
        return try database.read { db in
            try PredictionSetRecord.filter(Column("datasetId") == dataset.id && Column("answersSha256") == sha && Column("id") != excluding)
                .order(Column("id")).fetchAll(db).map { set in
                    (
                        set,
                        try Int.fetchOne(
                            db, sql: "SELECT COUNT(*) FROM upload WHERE setId = ? AND retractedAt IS NULL", arguments: [set.id])! > 0
                    )
                }
        }
    }

    // MARK: - Managing sets

    /// The versions a reference names: NAME@vK that one, NAME all of them.
    public func versions(_ ref: SetRef) throws -> [PredictionSetRecord] {
        if ref.version != nil { return [try predictionSet(ref)] }
        let all = try database.read { try PredictionSetRecord.filter(Column("name") == ref.name).order(Column("version")).fetchAll($0) }
        if all.isEmpty { _ = try predictionSet(ref) } // the not-found error, with a suggestion
        return all
    }

    public func addTags(_ tags: [String], to set: PredictionSetRecord) throws {
        for tag in tags { try SetRef.checkName(tag, what: "tag") }
        try requireWritable()
        try write { db in
            for tag in Set(tags) { try db.execute(sql: "INSERT OR IGNORE INTO tag (setId, tag) VALUES (?, ?)", arguments: [set.id, tag]) }
        }
    }

    /// Removes tags; returns those the set did not have.
    public func removeTags(_ tags: [String], from set: PredictionSetRecord) throws -> [String] {
        try requireWritable()
        return try write { db in
            try tags.filter { tag in
                try db.execute(sql: "DELETE FROM tag WHERE setId = ? AND tag = ?", arguments: [set.id, tag])
                return db.changesCount == 0
            }
        }
    }

    public func tags(of set: PredictionSetRecord) throws -> [String] {
        try database.read { try String.fetchAll($0, sql: "SELECT tag FROM tag WHERE setId = ? ORDER BY tag", arguments: [set.id]) }
    }

    public func setNote(_ note: String?, of set: PredictionSetRecord) throws {
        try TextLimits.checkNote(note, of: set.ref.description)
        try requireWritable()
        try write { try $0.execute(sql: "UPDATE predictionSet SET note = ? WHERE id = ?", arguments: [note, set.id]) }
    }

    public func setHidden(_ hidden: Bool, _ sets: [PredictionSetRecord]) throws {
        try requireWritable()
        try write { db in
            for set in sets { try db.execute(sql: "UPDATE predictionSet SET hidden = ? WHERE id = ?", arguments: [hidden, set.id]) }
        }
    }

    /// Renames every version of a name, with its files; ensembles, uploads and lineage
    /// point at the versions by id, so they follow. The pipelines' lists are updated.
    public func rename(_ old: String, to new: String) throws -> [SetRef] {
        try SetRef.checkName(new)
        let versions = try self.versions(SetRef(name: old, version: nil))
        let tables = try versions.map { try canonicalCSV(of: $0) }
        return try writeWithFiles { db in
            guard try PredictionSetRecord.filter(Column("name") == new).fetchCount(db) == 0 else {
                throw StoreError.invalid("\(new) already exists: rename to a name that is not taken")
            }
            try db.execute(sql: "UPDATE predictionSet SET name = ? WHERE name = ?", arguments: [new, old])
            for var pipeline in try PipelineRecord.fetchAll(db) {
                func renamed(_ refs: [String]) -> [String] {
                    refs.map { ref in ref.hasPrefix(old + "@v") ? new + ref.dropFirst(old.count) : ref }
                }
                pipeline.members = renamed(pipeline.members)
                pipeline.chosen = renamed(pipeline.chosen)
                pipeline.ensembles = renamed(pipeline.ensembles)
                try pipeline.update(db)
            }
            var files: [ManagedFile] = []
            for (set, csv) in zip(versions, tables) {
                let newRef = SetRef(name: new, version: set.version)
                files.append(ManagedFile(url: workspace.predictionFile(for: newRef), text: csv, owner: newRef))
                files.append(ManagedFile(url: workspace.predictionFile(for: set.ref), text: nil, owner: set.ref))
            }
            return (versions.map { SetRef(name: new, version: $0.version) }, files)
        }
    }

    /// Marks the most recent recording of a set's scores as retracted: an upload's
    /// public and private scores together, or a local score. They stay in the history.
    public func retractLatestScores(of set: PredictionSetRecord) throws -> [ScoreRecord] {
        try requireWritable()
        return try write { db in
            guard
                let latest = try ScoreRecord.filter(Column("setId") == set.id && Column("retractedAt") == nil).order(Column("id").desc)
                    .fetchOne(db)
            else {
                throw StoreError.invalid("\(set.ref) has no score to retract")
            }
            let now = Date()
            var retracted = [latest]
            if let upload = latest.uploadId {
                retracted = try ScoreRecord.filter(Column("uploadId") == upload && Column("retractedAt") == nil).order(Column("id"))
                    .fetchAll(db)
                try db.execute(sql: "UPDATE upload SET retractedAt = ? WHERE id = ?", arguments: [now, upload])
            }
            for score in retracted { try db.execute(sql: "UPDATE score SET retractedAt = ? WHERE id = ?", arguments: [now, score.id]) }
            return retracted
        }
    }

    // MARK: - The upload log

    public struct UploadEntry: Sendable, Codable {
        public var id: Int64
        public var set: String
        public var `public`: Double?
        public var `private`: Double?
        public var note: String?
        public var author: String?
        public var createdAt: Date
        public var retractedAt: Date?

        enum CodingKeys: String, CodingKey { case id, set, `public`, `private`, note, author, createdAt, retractedAt }

        /// Every key, null where a value is missing.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(set, forKey: .set)
            try c.encode(self.public, forKey: .public)
            try c.encode(self.private, forKey: .private)
            try c.encode(note, forKey: .note)
            try c.encode(author, forKey: .author)
            try c.encode(createdAt, forKey: .createdAt)
            try c.encode(retractedAt, forKey: .retractedAt)
        }
    }

    /// Every recorded leaderboard upload, oldest first.
    public func uploads() throws -> [UploadEntry] {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT u.id, s.name, s.version, u.note, u.author, u.createdAt, u.retractedAt,
                           (SELECT value FROM score WHERE uploadId = u.id AND kind = 'public' ORDER BY id DESC LIMIT 1),
                           (SELECT value FROM score WHERE uploadId = u.id AND kind = 'private' ORDER BY id DESC LIMIT 1)
                    FROM upload u JOIN predictionSet s ON s.id = u.setId ORDER BY u.createdAt, u.id
                    """
            ).map { row in
                UploadEntry(
                    id: row[0], set: "\(row[1] as String)@v\(row[2] as Int)", public: row[7], private: row[8], note: row[3], author: row[4],
                    createdAt: row[5], retractedAt: row[6])
            }
        }
    }

    // MARK: - Where commands may write

    /// Refuses an output path that is not a new CSV or a set's own submission: `--out`
    /// must name a `.csv` file in an existing folder, and never the store of any
    /// workspace (nor any SQLite file), a file in a workspace's predictions/ or
    /// checkpoints/, a dataset's exam file, or another set's submission.
    public func checkOutputPath(_ url: URL, owner: SetRef?) throws {
        let target = resolvedPath(url)
        let shown = excerpt(url.path, limit: 1000)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue {
            throw StoreError.invalid("--out \(shown) is a folder; give a file name")
        }
        guard url.pathExtension.lowercased() == "csv" else {
            throw StoreError.invalid("--out \(shown) is not a .csv file: suneung writes prediction and submission CSVs only")
        }
        let folder = URL(fileURLWithPath: target).deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StoreError.invalid("--out \(shown): the folder \(excerpt(folder.path, limit: 1000)) does not exist")
        }
        if let handle = FileHandle(forReadingAtPath: target) {
            let header = (try? handle.read(upToCount: 16)) ?? Data()
            try? handle.close()
            if header.starts(with: Data("SQLite format 3".utf8)) {
                throw StoreError.invalid("--out \(shown) is an SQLite database (a store?); write the CSV elsewhere")
            }
        }
        // A managed folder of any workspace: its predictions/ or checkpoints/ (at any depth).
        var ancestor = folder
        while ancestor.path != "/" {
            let parent = ancestor.deletingLastPathComponent()
            if ["predictions", "checkpoints"].contains(ancestor.lastPathComponent),
                FileManager.default.fileExists(atPath: parent.appendingPathComponent(Workspace.databaseName).path)
            {
                throw StoreError.invalid(
                    "--out \(shown) is inside \(excerpt(ancestor.path, limit: 1000))/, which suneung manages; write the CSV elsewhere (e.g. submissions/)"
                )
            }
            ancestor = parent
        }
        let (datasets, submissions) = try self.database.read { db in
            (
                try DatasetRecord.fetchAll(db),
                try Row.fetchAll(db, sql: "SELECT s.name, s.version, u.path FROM submission u JOIN predictionSet s ON s.id = u.setId")
            )
        }
        for dataset in datasets {
            if let path = dataset.path, resolvedPath(URL(fileURLWithPath: workspace.resolve(path))) == target {
                throw StoreError.invalid("--out \(shown) is the exam file of dataset \(dataset.shortHash); write the CSV elsewhere")
            }
        }
        for row in submissions {
            let ref = SetRef(name: row[0], version: row[1])
            if ref.name != owner?.name, resolvedPath(URL(fileURLWithPath: workspace.resolve(row[2]))) == target {
                throw StoreError.invalid("--out \(shown) is the submission of \(ref); write the CSV elsewhere")
            }
        }
    }

    /// A path with its folder's links resolved, for comparing where two paths lead.
    func resolvedPath(_ url: URL) -> String {
        let url = url.standardizedFileURL
        if let real = realpath(url.path, nil) {
            defer { free(real) }
            return String(cString: real)
        }
        let folder = url.deletingLastPathComponent()
        guard let real = realpath(folder.path, nil) else { return url.path }
        defer { free(real) }
        return String(cString: real) + "/" + url.lastPathComponent
    }
}

/// sha256 over the parsed items: what makes two exam files the same dataset.
func contentDigest(of items: [ExamItem]) -> String {
    var bytes: [UInt8] = []
    func add(_ text: String) {
        bytes += Array("\(text.utf8.count):".utf8)
        bytes += Array(text.utf8)
    }
    for item in items {
        add(item.id)
        add(item.paragraph)
        add(item.question)
        add(String(item.choices.count))
        item.choices.forEach(add)
        add(item.questionPlus ?? "\u{0}none")
        add(item.answer.map(String.init) ?? "none")
    }
    return sha256Hex(bytes)
}

extension Store {
    /// Refuses, before anything is read or written, a name that belongs to sets of
    /// another origin.
    public func checkNameTakes(_ name: String, origin: SetOrigin) throws {
        try SetRef.checkName(name)
        if let first = try database.read({ try PredictionSetRecord.filter(Column("name") == name).order(Column("version")).fetchOne($0) }),
            first.origin != origin
        {
            throw StoreError.invalid(
                "\(name) is the name of \(first.origin.described) sets; \(origin.described) sets cannot be added under it: choose another name"
            )
        }
    }
}

// MARK: - Checking the whole store

extension Store {
    public struct FsckReport: Sendable {
        /// `PRAGMA integrity_check` and `foreign_key_check` findings (empty: ok).
        public var database: [String] = []
        /// Sets whose rows no longer give their recorded sha256: not repairable here.
        public var corrupted: [String] = []
        /// Files written again from the rows (or that would be, without repair).
        public var rebuilt: [String] = []
        /// Temporary files of killed writers, removed (or that would be).
        public var strays: [String] = []
        /// Files in predictions/ named as a set's file whose set does not exist, moved
        /// to quarantine/ (or that would be); anything else there is left alone.
        public var quarantined: [String] = []
        public var sets = 0

        public var clean: Bool { database.isEmpty && corrupted.isEmpty && rebuilt.isEmpty && strays.isEmpty && quarantined.isEmpty }
    }

    /// Checks the database, every set's rows against their sha256, every set's file in
    /// predictions/ and every submission CSV; with `repair`, writes missing or changed
    /// files again from the rows, moves set files that belong to no set to quarantine/,
    /// and finishes what killed writers left. A managed folder that is a link is refused.
    public func fsck(repair: Bool) throws -> FsckReport {
        try workspace.checkFolders()
        if repair { try requireWritable() }
        var report = FsckReport()
        try database.read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if integrity != ["ok"] { report.database += integrity }
            for row in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check") {
                report.database.append(
                    "foreign key: row \(row[1] as Int64? ?? -1) of \(row[0] as String? ?? "?") points at a missing \(row[2] as String? ?? "?")"
                )
            }
        }
        report.strays += repair ? try write { _ in sweepTemporaryFiles() } : sweepTemporaryFiles(remove: false)
        let sets = try database.read { try PredictionSetRecord.order(Column("id")).fetchAll($0) }
        report.sets = sets.count
        var newestAtPath: [String: Int64] = [:]
        for row in try database.read({ try Row.fetchAll($0, sql: "SELECT path, MAX(id) FROM submission GROUP BY path") }) {
            newestAtPath[row[0]] = row[1]
        }
        var owned: Set<String> = []
        for set in sets {
            owned.insert(workspace.predictionFile(for: set.ref).lastPathComponent)
            let csv: String
            do { csv = try canonicalCSV(of: set) } catch {
                report.corrupted.append("\(set.ref): \(error)")
                continue
            }
            if fileProblem(set) != nil {
                report.rebuilt.append(workspace.relative(workspace.predictionFile(for: set.ref)))
                if repair { try writeAtomically(csv, to: workspace.predictionFile(for: set.ref)) }
            }
            // A newer version of an ensemble writes the same submissions/NAME.csv: the
            // file belongs to the newest submission recorded at its path.
            if let submission = try submission(of: set), newestAtPath[submission.record.path] == submission.record.id {
                let url = URL(fileURLWithPath: workspace.resolve(submission.record.path))
                let text = try table(of: set).submissionCSV
                if (try? readFile(url.path)).map(sha256Hex) != submission.record.csvSha256
                    && sha256Hex(text.utf8) == submission.record.csvSha256
                {
                    report.rebuilt.append(workspace.relative(url))
                    if repair { try writeAtomically(text, to: url) }
                }
            }
        }
        // Only a regular file named as a set's file is suneung's: a team's own folder or
        // notes in predictions/ stay where they are.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: workspace.predictionsFolder.path)) ?? []
        where !owned.contains(name) {
            let url = workspace.predictionsFolder.appendingPathComponent(name)
            guard url.pathExtension == "csv", (try? SetRef(parsing: String(url.deletingPathExtension().lastPathComponent)))?.version != nil,
                regularFileSize(url) != nil
            else { continue }
            if repair {
                let moved = try quarantine(url)
                report.quarantined.append("predictions/\(name) -> \(workspace.relative(moved))")
            } else {
                report.quarantined.append("predictions/\(name)")
            }
        }
        return report
    }

    /// Moves a file into quarantine/ (made on first use) under a name not taken there.
    func quarantine(_ url: URL) throws -> URL {
        let folder = workspace.root.appendingPathComponent("quarantine")
        if !workspace.isRealFolder(folder) {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        }
        var target = folder.appendingPathComponent(url.lastPathComponent)
        var copy = 1
        var status = stat()
        while lstat(target.path, &status) == 0 {
            copy += 1
            target = folder.appendingPathComponent("\(url.deletingPathExtension().lastPathComponent).\(copy).\(url.pathExtension)")
        }
        guard Glibc.rename(url.path, target.path) == 0 else {
            throw FileProblem(file: url.path, message: "cannot be moved to \(target.path): \(String(cString: strerror(errno)))")
        }
        return target
    }
}

extension Store {
    /// How two datasets differ, for a refusal to mix them: their ids, their choice
    /// counts, or (where both files can still be read) which fields of which items.
    public func difference(between a: DatasetRecord, and b: DatasetRecord) -> String {
        let onlyA = Set(a.itemIds).subtracting(b.itemIds), onlyB = Set(b.itemIds).subtracting(a.itemIds)
        if !onlyA.isEmpty || !onlyB.isEmpty {
            func some(_ ids: Set<String>) -> String {
                ids.sorted().prefix(3).map { excerpt($0) }.joined(separator: ", ") + (ids.count > 3 ? ", ..." : "")
            }
            return
                "different items: \(onlyA.count) ids only in \(a.shortHash) (\(some(onlyA))), \(onlyB.count) only in \(b.shortHash) (\(some(onlyB)))"
        }
        if a.itemIds != b.itemIds { return "the same ids in another order" }
        let counts = zip(a.itemIds, zip(a.choiceCounts, b.choiceCounts)).filter { $1.0 != $1.1 }
        if let first = counts.first {
            return "other choice counts on \(counts.count) items (\(excerpt(first.0)): \(first.1.0) vs \(first.1.1))"
        }
        guard let fileA = try? datasetFile(a), let fileB = try? datasetFile(b) else {
            return "the same ids and choice counts, other text (a file is no longer at its path to say where)"
        }
        let itemsA = ExamSet.parse(bytes: fileA, file: "").items, itemsB = ExamSet.parse(bytes: fileB, file: "").items
        var fields: [String: Int] = [:]
        var firstItem: String?
        for (x, y) in zip(itemsA, itemsB) {
            let differing = [
                ("paragraph", x.paragraph != y.paragraph), ("question", x.question != y.question), ("choices", x.choices != y.choices),
                ("question_plus", x.questionPlus != y.questionPlus), ("answer", x.answer != y.answer)
            ].filter(\.1).map(\.0)
            if !differing.isEmpty && firstItem == nil { firstItem = x.id }
            for field in differing { fields[field, default: 0] += 1 }
        }
        let listed = fields.sorted { $0.key < $1.key }.map { "\($0.key) on \($0.value) item\($0.value == 1 ? "" : "s")" }.joined(
            separator: ", ")
        return "the same ids and choice counts, other text: \(listed)" + (firstItem.map { " (first \(excerpt($0)))" } ?? "")
    }
}
