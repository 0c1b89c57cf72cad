import Exam
import Foundation
import Store

/// Scores to record for one set: `score`, and POST /api/v1/sets/REF/scores.
public struct NewScores: Sendable {
    public var set: String
    public var publicScore: Double?
    public var privateScore: Double?
    /// A labelled exam CSV: the set's accuracy on it is recorded as its local score (it
    /// needs the set's rows, so a server's client scores locally, then pushes).
    public var gold: String?
    public var note: String?
    public var author: String?
    /// A score from a simulated leaderboard: recorded, but not an upload of the day.
    public var simulated: Bool

    public init(
        set: String, publicScore: Double? = nil, privateScore: Double? = nil, gold: String? = nil, note: String? = nil,
        author: String? = nil, simulated: Bool = false
    ) {
        self.set = set
        self.publicScore = publicScore
        self.privateScore = privateScore
        self.gold = gold
        self.note = note
        self.author = author
        self.simulated = simulated
    }
}

/// One score as recorded (or found already the latest).
public struct RecordedScore: Codable, Sendable {
    public var set: String
    public var kind: ScoreKind
    public var value: Double
    public var recorded: Bool
    /// A local score's note: `gold FILE: CORRECT/TOTAL`, then the note given.
    public var detail: String?
}

/// Records the scores: everything is read and checked before the first write, so a
/// refusal records nothing. A subset has no leaderboard score (it was never uploaded).
public func recordScores(_ scores: NewScores, store: Store) throws -> [RecordedScore] {
    let set = try store.predictionSet(scores.set)
    if scores.publicScore != nil || scores.privateScore != nil, set.isSubset(of: try store.dataset(id: set.datasetId)) {
        throw StoreError.invalid(
            "\(set.ref) is a subset (imported with --subset): it was never uploaded, so it has no leaderboard score; --gold records its local accuracy"
        )
    }
    var local: (value: Double, detail: String)?
    if let path = scores.gold {
        let gold = try Gold(path: path)
        let table = try store.table(of: set)
        _ = try gold.labelled(table.rows, id: \.id, what: "the items \(set.ref) predicts")
        let (correct, total) = table.accuracy(against: gold.items)
        local = (Double(correct) / Double(total), "gold \(path): \(correct)/\(total)" + (scores.note.map { "; \($0)" } ?? ""))
    }
    let entries = [
        scores.publicScore.map { (ScoreKind.public, $0, scores.note) },
        scores.privateScore.map { (ScoreKind.private, $0, scores.note) },
        local.map { (ScoreKind.local, $0.value, $0.detail) }
    ].compactMap { $0 }
    guard !entries.isEmpty else { throw StoreError.invalid("give at least one score: public, private or a gold file") }
    return try store.addScores(to: set, entries, author: scores.author, simulated: scores.simulated).map {
        RecordedScore(
            set: set.ref.description, kind: $0.kind, value: $0.value, recorded: $0.recorded, detail: $0.kind == .local ? local?.detail : nil
        )
    }
}
