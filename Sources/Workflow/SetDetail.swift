import Exam
import Foundation
import Store

/// Everything about one set that `show` prints, `show --format json` writes, and the
/// server's /api/v1/sets/REF answers (so that `show --remote` prints it the same way).
public struct SetDetail: Codable, Sendable {
    public struct Member: Codable, Sendable {
        public var set: String
        public var weight: Double
        public var publicThen: Double?
    }

    public struct Submission: Codable, Sendable {
        public var method: String
        public var weights: String
        public var ties: String
        public var csv: String
        public var csvSha256: String
        public var members: [Member]
    }

    public var ref: String
    public var origin: SetOrigin
    public var created: Date
    public var author: String?
    public var note: String?
    public var hidden: Bool
    public var tags: [String]
    /// The dataset's sha256 and its file as registered.
    public var dataset: String
    public var datasetPath: String?
    public var datasetItems: Int
    public var rows: Int
    /// Fewer rows than the dataset's items (`import --subset`).
    public var subset: Bool { PredictionSetRecord.isSubset(rows: rows, datasetItems: datasetItems) }
    public var values: ChoiceValues?
    public var invalidAnswers: Int
    public var csvSha256: String
    /// ok, missing or changed: the set's file in predictions/.
    public var file: String
    public var filePath: String
    /// Other names' versions with the same answers and values.
    public var sameAs: [String]
    public var lineage: Lineage
    public var scores: [ScoreRecord]
    public var submission: Submission?
    /// Items per answer "1"..."5", and "invalid" for answers kept verbatim.
    public var answers: [String: Int]

    public init(_ set: PredictionSetRecord, store: Store) throws {
        let dataset = try store.dataset(id: set.datasetId)
        let table = try store.table(of: set)
        ref = set.ref.description
        origin = set.origin
        created = set.createdAt
        author = set.author
        note = set.note
        hidden = set.hidden
        tags = try store.tags(of: set)
        self.dataset = dataset.sha256
        datasetPath = dataset.path
        datasetItems = dataset.itemCount
        rows = table.rows.count
        values = set.choiceValues
        invalidAnswers = set.invalidAnswers
        csvSha256 = set.csvSha256
        file = store.fileProblem(set) ?? "ok"
        filePath = store.workspace.relative(store.workspace.predictionFile(for: set.ref))
        sameAs = try store.sameContent(as: set).map(\.ref.description)
        lineage = set.lineage
        scores = try store.scores(of: set)
        submission = try store.submission(of: set).map { sub in
            Submission(
                method: sub.record.method, weights: sub.record.weightScheme, ties: sub.record.tieRule, csv: sub.record.path,
                csvSha256: sub.record.csvSha256,
                members: sub.members.map { Member(set: $0.set.ref.description, weight: $0.weight, publicThen: $0.publicScore) })
        }
        var counts: [String: Int] = [:]
        for row in table.rows { counts[row.answer == 0 ? "invalid" : "\(row.answer)", default: 0] += 1 }
        answers = counts
    }

    enum CodingKeys: String, CodingKey {
        case ref, origin, created, author, note, hidden, tags, dataset, datasetPath, datasetItems, rows, values, invalidAnswers, csvSha256,
            file, filePath, sameAs, lineage, scores, submission, answers
    }

    /// Every key, null where a value is missing.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ref, forKey: .ref)
        try c.encode(origin, forKey: .origin)
        try c.encode(created, forKey: .created)
        try c.encode(author, forKey: .author)
        try c.encode(note, forKey: .note)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(tags, forKey: .tags)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(datasetPath, forKey: .datasetPath)
        try c.encode(datasetItems, forKey: .datasetItems)
        try c.encode(rows, forKey: .rows)
        try c.encode(values, forKey: .values)
        try c.encode(invalidAnswers, forKey: .invalidAnswers)
        try c.encode(csvSha256, forKey: .csvSha256)
        try c.encode(file, forKey: .file)
        try c.encode(filePath, forKey: .filePath)
        try c.encode(sameAs, forKey: .sameAs)
        try c.encode(lineage, forKey: .lineage)
        try c.encode(scores, forKey: .scores)
        try c.encode(submission, forKey: .submission)
        try c.encode(answers, forKey: .answers)
    }
}
