import Exam
import Foundation
import GRDB

/// An exported ensemble: its prediction set (origin `ensemble`, with the averaged
/// probabilities), how it was made, and the sha256 of the submission CSV.
public struct SubmissionRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "submission"

    public var id: Int64?
    public var setId: Int64
    public var method: String
    public var weightScheme: String
    public var tieRule: String
    /// sha256 of the `id,answer` submission CSV.
    public var csvSha256: String
    /// Where the CSV was written first.
    public var path: String
    public var commandLine: String
    public var toolVersion: String
    public var createdAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One member of a submission; a member picked twice by greedy selection has two rows.
public struct SubmissionMemberRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "submissionMember"

    public var submissionId: Int64
    public var position: Int
    public var memberSetId: Int64
    public var weight: Double
    /// The member's public score when the ensemble was made.
    public var publicScore: Double?
}

extension Store {

    public struct NewSubmission: Sendable {
        public var name: String
        public var dataset: DatasetRecord
        public var table: PredictionTable
        public var members: [(set: PredictionSetRecord, weight: Double, publicScore: Double?)]
        public var method: String
        public var weightScheme: String
        public var tieRule: String
        public var lineage: Lineage
        public var notes: SetNotes
        public var out: URL
        /// When it was made, if in another store (pull, push).
        public var createdAt: Date

        public init(
            name: String, dataset: DatasetRecord, table: PredictionTable,
            members: [(set: PredictionSetRecord, weight: Double, publicScore: Double?)], method: String, weightScheme: String,
            tieRule: String, lineage: Lineage, notes: SetNotes = SetNotes(), out: URL, createdAt: Date = Date()
        ) {
            self.name = name
            self.dataset = dataset
            self.table = table
            self.members = members
            self.method = method
            self.weightScheme = weightScheme
            self.tieRule = tieRule
            self.lineage = lineage
            self.notes = notes
            self.out = out
            self.createdAt = createdAt
        }
    }

    /// Records an ensemble as NAME@vK with its submission, writing its canonical CSV and
    /// the submission CSV (checked as written) in the same transaction: a refusal, a
    /// failed write or a kill leaves neither rows nor files. The same ensemble again
    /// records nothing new (and rewrites the same bytes).
    public func addSubmission(_ new: NewSubmission) throws -> AddOutcome {
        try checkOutputPath(new.out, owner: SetRef(name: new.name, version: nil))
        let csv = new.table.submissionCSV
        let outcome = try writeWithFiles { db in try addSubmission(new, in: db) }
        if case .identical(let set) = outcome {
            try restoreFile(of: set)
            try writeSubmission(csv, to: new.out, dataset: new.dataset)
        }
        return outcome
    }

    /// The database part of `addSubmission`, inside the caller's `writeWithFiles`: the
    /// rows, and the files to write with them.
    func addSubmission(_ new: NewSubmission, in db: Database) throws -> (AddOutcome, [ManagedFile]) {
        let csv = new.table.submissionCSV
        let canonical = new.table.canonicalCSV
        let outcome = try addPredictionSet(
            name: new.name, dataset: new.dataset, table: new.table, canonicalCSV: canonical, origin: .ensemble, lineage: new.lineage,
            notes: new.notes, createdAt: new.createdAt, in: db)
        guard case .created(let set) = outcome else { return (outcome, []) }
        var submission = SubmissionRecord(
            setId: set.id!, method: new.method, weightScheme: new.weightScheme, tieRule: new.tieRule, csvSha256: sha256Hex(csv.utf8),
            path: workspace.relative(new.out), commandLine: new.lineage.commandLine, toolVersion: new.lineage.toolVersion,
            createdAt: set.createdAt)
        try submission.insert(db)
        for (position, member) in new.members.enumerated() {
            try SubmissionMemberRecord(
                submissionId: submission.id!, position: position, memberSetId: member.set.id!, weight: member.weight,
                publicScore: member.publicScore
            ).insert(db)
        }
        return (
            outcome,
            [
                ManagedFile(url: workspace.predictionFile(for: set.ref), text: canonical, owner: set.ref),
                ManagedFile(url: new.out, text: csv, owner: set.ref) { try self.checkWritten(csv, at: $0, dataset: new.dataset) }
            ]
        )
    }

    /// The submission made from a set, with its members in order, if the set is one.
    public func submission(of set: PredictionSetRecord) throws -> (
        record: SubmissionRecord, members: [(set: PredictionSetRecord, weight: Double, publicScore: Double?)]
    )? {
        try database.read { db in
            guard let record = try SubmissionRecord.filter(Column("setId") == set.id).fetchOne(db) else { return nil }
            let members = try SubmissionMemberRecord.filter(Column("submissionId") == record.id).order(Column("position")).fetchAll(db)
            return (
                record,
                try members.map { member in
                    guard let set = try PredictionSetRecord.fetchOne(db, key: member.memberSetId) else {
                        throw StoreError.corrupted("member set \(member.memberSetId) of submission \(record.id!) is missing")
                    }
                    return (set, member.weight, member.publicScore)
                }
            )
        }
    }

    /// Writes what `export` gives: the submission CSV of an ensemble (validated as a
    /// submission), the canonical CSV of any other set; each checked against the hash
    /// recorded when it was made. A subset is never exported.
    public func export(_ set: PredictionSetRecord, to url: URL) throws {
        try checkOutputPath(url, owner: set.ref)
        let dataset = try dataset(id: set.datasetId)
        if set.isSubset(of: dataset) {
            throw StoreError.invalid(
                "\(set.ref) covers \(set.itemCount!) of the dataset's \(dataset.itemCount) items (imported with --subset): a subset is never exported as a submission"
            )
        }
        guard let submission = try submission(of: set) else {
            try writeAtomically(try canonicalCSV(of: set), to: url)
            return
        }
        let csv = try checkedTable(of: set).submissionCSV
        guard sha256Hex(csv.utf8) == submission.record.csvSha256 else {
            throw StoreError.corrupted(
                "the rows of \(set.ref) no longer give the submission CSV whose sha256 was recorded: the store was changed outside suneung")
        }
        try writeSubmission(csv, to: url, dataset: dataset)
    }

    /// Writes a submission CSV atomically, then reads the file back and validates it:
    /// every test id once, in test order, each answer within its item's choices.
    public func writeSubmission(_ csv: String, to url: URL, dataset: DatasetRecord) throws {
        try writeAtomically(csv, to: url)
        try checkWritten(csv, at: url, dataset: dataset)
    }

    func checkWritten(_ csv: String, at url: URL, dataset: DatasetRecord) throws {
        let written = try readFile(url.path)
        try validateSubmission(bytes: written, file: url.path, dataset: dataset.shape)
        guard written == Array(csv.utf8) else {
            throw FileProblem(file: url.path, message: "the file on disk differs from what was written")
        }
    }
}
