import Exam
import Foundation
import GRDB

/// A prediction set as it travels between stores (`push`, `pull`, the server): its
/// content (the canonical CSV, checked against its sha256 on arrival), what the ledger
/// knows of it, and for an ensemble its members by content. Versions do not travel:
/// a name's versions are numbered by each store, and content is the identity.
public struct SetBundle: Codable, Sendable, Equatable {
    public struct Upload: Codable, Sendable, Equatable {
        /// The sender's upload id: groups the scores of one upload in this bundle.
        public var key: Int64
        public var note: String?
        public var author: String?
        public var createdAt: Date
        public var retractedAt: Date?
    }

    public struct Score: Codable, Sendable, Equatable {
        public var kind: ScoreKind
        public var value: Double
        public var note: String?
        public var author: String?
        public var createdAt: Date
        public var retractedAt: Date?
        /// The `Upload.key` it belongs to (nil for local and simulated scores).
        public var upload: Int64?
    }

    public struct Member: Codable, Sendable, Equatable {
        public var name: String
        public var csvSha256: String
        public var weight: Double
        public var publicScore: Double?

        public init(name: String, csvSha256: String, weight: Double, publicScore: Double?) {
            (self.name, self.csvSha256, self.weight, self.publicScore) = (name, csvSha256, weight, publicScore)
        }
    }

    public struct Submission: Codable, Sendable, Equatable {
        public var method: String
        public var weightScheme: String
        public var tieRule: String
        public var csvSha256: String
        public var members: [Member]

        public init(method: String, weightScheme: String, tieRule: String, csvSha256: String, members: [Member]) {
            (self.method, self.weightScheme, self.tieRule, self.csvSha256, self.members) = (
                method, weightScheme, tieRule, csvSha256, members
            )
        }
    }

    public var name: String
    /// The version in the sending store (for messages; the receiver numbers its own).
    public var version: Int
    public var origin: SetOrigin
    public var datasetContentSha256: String
    public var csvSha256: String
    /// The canonical CSV; nil when the receiver already has this content under this name.
    public var csv: String?
    public var rows: Int
    public var invalidAnswers: Int
    public var lineage: Lineage
    public var createdAt: Date
    public var author: String?
    public var note: String?
    public var hidden: Bool
    public var tags: [String]
    public var uploads: [Upload]
    public var scores: [Score]
    public var submission: Submission?

    public var ref: SetRef { SetRef(name: name, version: version) }

    /// The limits a received bundle keeps: what a real set never comes near, so that one
    /// push cannot bloat every later pull or page.
    public static let maxTags = 50
    public static let maxLineageBytes = 256 * 1024
    /// A team uploads a few times a day for weeks: a set with more was not uploaded by
    /// people, and its rows would slow every page that lists uploads.
    public static let maxUploads = 1_000
    public static let maxScores = 2_000

    /// Refuses what this store could not keep or would keep wrongly: dates outside
    /// 2000 to tomorrow, scores outside [0, 1], notes and authors past `TextLimits`,
    /// oversized metadata or score history, an ensemble without members, or one without
    /// its submission. (The method's name is checked where the methods are known.)
    public func check() throws {
        func refuse(_ message: String) -> StoreError { StoreError.invalid("\(ref): \(message)") }
        let earliest = Date(timeIntervalSince1970: 946_684_800), latest = Date().addingTimeInterval(86_400)
        var dates: [(String, Date)] = [("created", createdAt)]
        for upload in uploads {
            dates.append(("an upload's time", upload.createdAt))
            if let retracted = upload.retractedAt { dates.append(("an upload's retraction", retracted)) }
        }
        for score in scores {
            dates.append(("a score's time", score.createdAt))
            if let retracted = score.retractedAt { dates.append(("a score's retraction", retracted)) }
        }
        for (what, date) in dates where !(earliest...latest).contains(date) {
            throw refuse("\(what) (\(date.timeIntervalSince1970) s since 1970) is not between 2000 and tomorrow")
        }
        for score in scores where !(score.value.isFinite && (0...1).contains(score.value)) {
            throw refuse("\(score.kind.rawValue) score \(score.value) is not an accuracy in [0, 1]")
        }
        guard tags.count <= Self.maxTags else { throw refuse("\(tags.count) tags (at most \(Self.maxTags))") }
        guard uploads.count <= Self.maxUploads, scores.count <= Self.maxScores else {
            throw refuse("\(uploads.count) uploads and \(scores.count) scores (at most \(Self.maxUploads) and \(Self.maxScores) a set)")
        }
        guard try Self.encoder.encode(lineage).count <= Self.maxLineageBytes else {
            throw refuse("a lineage of more than \(Self.maxLineageBytes / 1024) KB")
        }
        try TextLimits.checkNote(note, of: "the set")
        try TextLimits.checkAuthor(author, of: "the set")
        for upload in uploads {
            try TextLimits.checkNote(upload.note, of: "an upload")
            try TextLimits.checkAuthor(upload.author, of: "an upload")
        }
        for score in scores {
            try TextLimits.checkNote(score.note, of: "a score")
            try TextLimits.checkAuthor(score.author, of: "a score")
        }
        guard !(csv?.contains("\u{0}") ?? false) else { throw refuse("a NUL character in its rows") }
        guard (origin == .ensemble) == (submission != nil) else {
            throw refuse(
                origin == .ensemble
                    ? "an ensemble without its submission (method, members)" : "a submission on a set that is not an ensemble")
        }
        if let submission {
            guard !submission.members.isEmpty else { throw refuse("an ensemble without members") }
            for member in submission.members {
                guard member.weight.isFinite && member.weight >= 0 else {
                    throw refuse("member \(member.name)'s weight \(member.weight) is not a weight")
                }
                guard member.publicScore.map({ $0.isFinite && (0...1).contains($0) }) ?? true else {
                    throw refuse("member \(member.name)'s public score is not an accuracy")
                }
            }
            guard submission.tieRule.count <= 500, submission.weightScheme.count <= 10_000 else {
                throw refuse("an oversized tie rule or weight scheme")
            }
        }
    }

    /// Dates as milliseconds, the store's own precision, so that a score that went
    /// there and back is recognised.
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()
}

/// What receiving a bundle did.
public struct ReceiveOutcome: Codable, Sendable {
    /// The receiver's ref of the set.
    public var ref: String
    /// false: the content was already there under this name.
    public var created: Bool
    public var scoresAdded: Int
    public var scoresRetracted: Int
    public var tagsAdded: Int
}

extension Store {
    /// The store's sets as bundles, oldest first (an ensemble after its members), with
    /// the canonical CSVs or without them.
    public func bundles(withCSV: Bool) throws -> [SetBundle] {
        let sets = try database.read { try PredictionSetRecord.order(Column("id")).fetchAll($0) }
        return try sets.map { try bundle(of: $0, withCSV: withCSV) }
    }

    public func bundle(of set: PredictionSetRecord, withCSV: Bool) throws -> SetBundle {
        let dataset = try dataset(id: set.datasetId)
        guard let content = dataset.contentSha256 else {
            throw StoreError.invalid(
                "\(set.ref)'s dataset \(dataset.shortHash) has no content digest (its file changed before suneung kept one): it cannot travel to another store"
            )
        }
        let (uploads, scores) = try database.read { db in
            (
                try UploadRecord.filter(Column("setId") == set.id).order(Column("id")).fetchAll(db),
                try ScoreRecord.filter(Column("setId") == set.id).order(Column("id")).fetchAll(db)
            )
        }
        let submission = try self.submission(of: set).map { sub in
            SetBundle.Submission(
                method: sub.record.method, weightScheme: sub.record.weightScheme, tieRule: sub.record.tieRule,
                csvSha256: sub.record.csvSha256,
                members: sub.members.map {
                    SetBundle.Member(name: $0.set.name, csvSha256: $0.set.csvSha256, weight: $0.weight, publicScore: $0.publicScore)
                })
        }
        return SetBundle(
            name: set.name, version: set.version, origin: set.origin, datasetContentSha256: content, csvSha256: set.csvSha256,
            csv: withCSV ? try canonicalCSV(of: set) : nil, rows: set.itemCount ?? dataset.itemCount, invalidAnswers: set.invalidAnswers,
            lineage: set.lineage, createdAt: set.createdAt, author: set.author, note: set.note, hidden: set.hidden, tags: try tags(of: set),
            uploads: uploads.map {
                SetBundle.Upload(key: $0.id!, note: $0.note, author: $0.author, createdAt: $0.createdAt, retractedAt: $0.retractedAt)
            },
            scores: scores.map {
                SetBundle.Score(
                    kind: $0.kind, value: $0.value, note: $0.note, author: $0.author, createdAt: $0.createdAt, retractedAt: $0.retractedAt,
                    upload: $0.uploadId)
            },
            submission: submission)
    }

    /// The set of this store with NAME and this content, if any.
    public func set(named name: String, csvSha256: String, datasetContentSha256: String) throws -> PredictionSetRecord? {
        try database.read { db in
            try PredictionSetRecord.fetchOne(
                db,
                sql: """
                    SELECT s.* FROM predictionSet s JOIN dataset d ON d.id = s.datasetId
                    WHERE s.name = ? AND s.csvSha256 = ? AND d.contentSha256 = ? ORDER BY s.version LIMIT 1
                    """, arguments: [name, csvSha256, datasetContentSha256])
        }
    }

    public func dataset(contentSha256: String) throws -> DatasetRecord? {
        try database.read { try DatasetRecord.filter(Column("contentSha256") == contentSha256).fetchOne($0) }
    }

    /// A dataset by either of its digests: the content's (what travels) or the first
    /// file's (what `list` shows).
    public func dataset(digest: String) throws -> DatasetRecord? {
        try checkDigest(digest)
        return try database.read { try DatasetRecord.filter(Column("contentSha256") == digest || Column("sha256") == digest).fetchOne($0) }
    }

    func checkDigest(_ digest: String) throws {
        guard digest.count == 64, digest.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw StoreError.badReference("'\(excerpt(digest))' is not a dataset's sha256 (64 lowercase hex digits)")
        }
    }

    /// Registers an uploaded exam file (the API's POST /datasets): as `receiveDataset`,
    /// its digest computed here.
    public func registerDataset(bytes: [UInt8], file: String) throws -> DatasetRecord {
        let parsed = ExamSet.parse(bytes: bytes, file: file)
        guard parsed.problems.isEmpty else { throw FileProblems(parsed.problems) }
        return try keepDataset(bytes: bytes, items: parsed.items, contentSha256: contentDigest(of: parsed.items))
    }

    /// Registers an exam file received from another store: parsed and checked, its
    /// content digest must be `contentSha256`; kept as data/DIGEST16.csv.
    public func receiveDataset(bytes: [UInt8], contentSha256: String) throws -> DatasetRecord {
        try checkDigest(contentSha256)
        let parsed = ExamSet.parse(bytes: bytes, file: "the received exam file")
        guard parsed.problems.isEmpty else { throw FileProblems(parsed.problems) }
        guard contentDigest(of: parsed.items) == contentSha256 else {
            throw StoreError.invalid(
                "the received exam file's content is not dataset \(contentSha256.prefix(12))... (its digest is \(contentDigest(of: parsed.items).prefix(12))...)"
            )
        }
        return try keepDataset(bytes: bytes, items: parsed.items, contentSha256: contentSha256)
    }

    /// Records checked exam items under their digest (once), the file kept as
    /// data/DIGEST16.csv.
    private func keepDataset(bytes: [UInt8], items: [ExamItem], contentSha256: String) throws -> DatasetRecord {
        let file = workspace.root.appendingPathComponent("data/\(contentSha256.prefix(16)).csv")
        if let known = try dataset(contentSha256: contentSha256) { return known }
        try requireWritable()
        // Under the write lock: two pushes of the same dataset at once write it once.
        return try write { db in
            if let known = try DatasetRecord.filter(Column("contentSha256") == contentSha256).fetchOne(db) { return known }
            try writeAtomically(String(decoding: bytes, as: UTF8.self), to: file)
            var record = DatasetRecord(
                sha256: sha256Hex(bytes), itemIds: items.map(\.id), choiceCounts: items.map(\.choices.count), itemCount: items.count,
                path: workspace.relative(file), createdAt: Date(), contentSha256: contentSha256)
            try record.insert(db)
            return record
        }
    }

    /// The exam file of a dataset, as it was registered (for sending it to another store).
    public func datasetFile(_ dataset: DatasetRecord) throws -> [UInt8] {
        var candidates = [workspace.root.appendingPathComponent("data/\((dataset.contentSha256 ?? "").prefix(16)).csv").path]
        if let path = dataset.path { candidates.insert(workspace.resolve(path), at: 0) }
        for path in candidates {
            guard let bytes = try? readFile(path) else { continue }
            let parsed = ExamSet.parse(bytes: bytes, file: path)
            if parsed.problems.isEmpty && contentDigest(of: parsed.items) == dataset.contentSha256 { return bytes }
        }
        throw StoreError.notFound(
            "the exam file of dataset \(dataset.shortHash) is no longer at \(excerpt(dataset.path ?? "its path")) with its content: put it back (or import any set against a copy of it) to send the dataset"
        )
    }

    /// Stores a bundle from another store: the set (unless this name already has this
    /// content), then the scores, uploads, retractions and tags it does not have yet;
    /// all in one transaction, so a refused or killed receive leaves nothing. `author`
    /// overrides the bundle's authors (the server records who pushed).
    public func receive(_ bundle: SetBundle, author: String? = nil) throws -> ReceiveOutcome {
        try requireWritable()
        try SetRef.checkName(bundle.name)
        for tag in bundle.tags { try SetRef.checkName(tag, what: "tag") }
        try checkDigest(bundle.datasetContentSha256)
        guard let dataset = try dataset(contentSha256: bundle.datasetContentSha256) else {
            throw SyncError.datasetMissing(bundle.datasetContentSha256)
        }
        try bundle.check()
        let existing = try set(named: bundle.name, csvSha256: bundle.csvSha256, datasetContentSha256: bundle.datasetContentSha256)
        // Everything that can be checked outside the transaction: the rows and the members.
        var newSet: (table: PredictionTable, members: [(set: PredictionSetRecord, weight: Double, publicScore: Double?)])?
        if existing == nil {
            guard let csv = bundle.csv else { throw SyncError.contentMissing(bundle.ref.description) }
            let options = PredictionFileOptions(
                invalidAnswers: bundle.invalidAnswers > 0 ? .asWrong : .refuse,
                subset: PredictionSetRecord.isSubset(rows: bundle.rows, datasetItems: dataset.itemCount))
            let table = try PredictionTable.read(
                bytes: Array(csv.utf8), file: "\(bundle.ref) (received)", dataset: dataset.shape, options: options
            ).table
            guard sha256Hex(table.canonicalCSV.utf8) == bundle.csvSha256 else {
                throw StoreError.invalid(
                    "\(bundle.ref): the received rows do not give the canonical CSV whose sha256 the bundle names (\(bundle.csvSha256.prefix(12))...)"
                )
            }
            var members: [(set: PredictionSetRecord, weight: Double, publicScore: Double?)] = []
            if let submission = bundle.submission {
                guard bundle.origin == .ensemble else { throw StoreError.invalid("\(bundle.ref) has a submission but is not an ensemble") }
                guard sha256Hex(table.submissionCSV.utf8) == submission.csvSha256 else {
                    throw StoreError.invalid("\(bundle.ref): the rows do not give the submission CSV whose sha256 the bundle names")
                }
                members = try submission.members.map { member in
                    guard
                        let found = try set(
                            named: member.name, csvSha256: member.csvSha256, datasetContentSha256: bundle.datasetContentSha256)
                    else {
                        throw SyncError.memberMissing(ensemble: bundle.ref.description, member: member.name)
                    }
                    return (set: found, weight: member.weight, publicScore: member.publicScore)
                }
            }
            newSet = (table, members)
        }
        let submissionFile = workspace.submissionsFolder.appendingPathComponent("\(bundle.name).csv")
        if newSet != nil && bundle.submission != nil { try checkOutputPath(submissionFile, owner: SetRef(name: bundle.name, version: nil)) }
        // The set, its files and its ledger in one transaction: a refusal or a kill
        // leaves none of them.
        return try writeWithFiles { db -> (ReceiveOutcome, [ManagedFile]) in
            var target: PredictionSetRecord
            var files: [ManagedFile] = []
            var created = false
            if let existing {
                target = existing
            } else {
                let (table, members) = newSet!
                let notes = SetNotes(author: author ?? bundle.author, tags: bundle.tags, note: bundle.note)
                let outcome: AddOutcome
                if let submission = bundle.submission {
                    (outcome, files) = try addSubmission(
                        NewSubmission(
                            name: bundle.name, dataset: dataset, table: table, members: members, method: submission.method,
                            weightScheme: submission.weightScheme,
                            tieRule: submission.tieRule, lineage: bundle.lineage, notes: notes, out: submissionFile,
                            createdAt: bundle.createdAt), in: db)
                } else {
                    outcome = try addPredictionSet(
                        name: bundle.name, dataset: dataset, table: table, canonicalCSV: table.canonicalCSV, origin: bundle.origin,
                        lineage: bundle.lineage, notes: notes, createdAt: bundle.createdAt, in: db)
                    if case .created(let new) = outcome {
                        files = [ManagedFile(url: workspace.predictionFile(for: new.ref), text: table.canonicalCSV, owner: new.ref)]
                    }
                }
                target = outcome.set
                // Another push of the same content may have stored it since we looked.
                if case .created = outcome { created = true }
                if created && bundle.hidden {
                    try db.execute(sql: "UPDATE predictionSet SET hidden = 1 WHERE id = ?", arguments: [target.id])
                }
            }
            return (try mergeLedger(of: bundle, into: target, created: created, author: author, in: db), files)
        }
    }

    /// The tags, note, uploads, scores and retractions of a bundle that the set lacks.
    /// Scores and uploads are recognised by their kind and time (to the millisecond).
    func mergeLedger(of bundle: SetBundle, into target: PredictionSetRecord, created: Bool, author: String?, in db: Database) throws
        -> ReceiveOutcome
    {
        var outcome = ReceiveOutcome(ref: target.ref.description, created: created, scoresAdded: 0, scoresRetracted: 0, tagsAdded: 0)
        for tag in Set(bundle.tags) {
            try db.execute(sql: "INSERT OR IGNORE INTO tag (setId, tag) VALUES (?, ?)", arguments: [target.id, tag])
            if !created { outcome.tagsAdded += db.changesCount }
        }
        if !created, target.note == nil, let note = bundle.note {
            try db.execute(sql: "UPDATE predictionSet SET note = ? WHERE id = ?", arguments: [note, target.id])
        }
        func sameTime(_ a: Date, _ b: Date) -> Bool { abs(a.timeIntervalSince(b)) < 0.0015 }
        let existingUploads = try UploadRecord.filter(Column("setId") == target.id).fetchAll(db)
        var uploadIds: [Int64: Int64] = [:]
        for upload in bundle.uploads {
            if var known = existingUploads.first(where: { sameTime($0.createdAt, upload.createdAt) }) {
                if known.retractedAt == nil, let retracted = upload.retractedAt {
                    known.retractedAt = retracted
                    try known.update(db)
                }
                uploadIds[upload.key] = known.id
            } else {
                var record = UploadRecord(
                    setId: target.id!, note: upload.note, author: author ?? upload.author, createdAt: upload.createdAt,
                    retractedAt: upload.retractedAt)
                try record.insert(db)
                uploadIds[upload.key] = record.id
            }
        }
        let existingScores = try ScoreRecord.filter(Column("setId") == target.id).fetchAll(db)
        for score in bundle.scores {
            if var known = existingScores.first(where: {
                $0.kind == score.kind && $0.value == score.value && sameTime($0.createdAt, score.createdAt)
            }) {
                if known.retractedAt == nil, let retracted = score.retractedAt {
                    known.retractedAt = retracted
                    try known.update(db)
                    outcome.scoresRetracted += 1
                }
                continue
            }
            var record = ScoreRecord(
                setId: target.id!, kind: score.kind, value: score.value, note: score.note, createdAt: score.createdAt,
                uploadId: score.upload.flatMap { uploadIds[$0] }, author: author ?? score.author, retractedAt: score.retractedAt)
            try record.insert(db)
            outcome.scoresAdded += 1
        }
        return outcome
    }
}

/// Why a bundle could not be received yet: the sender sends what is missing and tries again.
public enum SyncError: Error, Sendable, CustomStringConvertible {
    case datasetMissing(String)
    case contentMissing(String)
    case memberMissing(ensemble: String, member: String)

    public var description: String {
        switch self {
        case .datasetMissing(let sha): "dataset \(sha.prefix(12))... is not in this store: send its exam file first"
        case .contentMissing(let ref): "\(ref)'s rows are not in this store: send them with the set"
        case .memberMissing(let ensemble, let member): "\(ensemble)'s member \(member) is not in this store: send it first"
        }
    }
}
