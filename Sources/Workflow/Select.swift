import Ensemble
import Exam
import Foundation
import Store

/// `select`: greedy forward selection with replacement over candidate sets, on the
/// items a gold file labels, and optionally the chosen multiset saved as an ensemble.
public struct SelectionRequest: Sendable {
    /// Candidate sets by name; nil: every visible set that is not an ensemble, over one
    /// dataset (`datasetFile` chooses it), identical content counted once.
    public var candidates: [String]?
    public var datasetFile: String?
    public var gold: String
    public var rounds: Int
    public var method: Ensemble.Method
    public var calibration: CalibrationKind?
    /// Save the chosen multiset as this ensemble, its submission CSV at `out`
    /// (default: submissions/NAME.csv).
    public var name: String?
    public var out: URL?
    public var notes: Store.SetNotes
    public var lineage: Lineage

    public init(
        candidates: [String]?, datasetFile: String?, gold: String, rounds: Int, method: Ensemble.Method, calibration: CalibrationKind?,
        name: String?, out: URL?, notes: Store.SetNotes, lineage: Lineage
    ) {
        self.candidates = candidates
        self.datasetFile = datasetFile
        self.gold = gold
        self.rounds = rounds
        self.method = method
        self.calibration = calibration
        self.name = name
        self.out = out
        self.notes = notes
        self.lineage = lineage
    }
}

public struct Selection: Sendable {
    public var dataset: DatasetRecord
    /// The candidates' names, in the order the rounds' `added` index.
    public var candidates: [String]
    public var labelledItems: Int
    /// The fits when the candidates were calibrated first, and how many had no values.
    public var calibration: (kind: CalibrationKind, fits: [MemberCalibration], uncalibrated: Int)?
    public var rounds: [SelectionRound]
    /// Each candidate's accuracy alone on the labelled items.
    public var accuracyAlone: [Double]
    /// The saved ensemble and its submission file, with `name`.
    public var saved: (outcome: Store.AddOutcome, file: URL)?

    /// The candidate most accurate alone (ties: the earlier).
    public var bestAlone: Int { accuracyAlone.indices.max { (accuracyAlone[$0], -$0) < (accuracyAlone[$1], -$1) }! }
}

extension SelectionRequest {
    /// The picks are the weights: selection combines by average or vote.
    public static func check(method: Ensemble.Method) throws(UsageError) {
        guard method != .weightedVote else { throw UsageError("--method is average or vote: the picks are the weights") }
    }
}

public func select(_ request: SelectionRequest, store: Store, events: WorkflowEvents) throws -> Selection {
    try SelectionRequest.check(method: request.method)
    let outURL = request.name.map { name in request.out ?? store.workspace.submissionsFolder.appendingPathComponent("\(name).csv") }
    if let name = request.name, let outURL {
        try SetRef.checkName(name)
        try store.checkNameTakes(name, origin: .ensemble)
        try store.checkOutputPath(outURL, owner: SetRef(name: name, version: nil))
    }
    let gold = try Gold(path: request.gold)
    let selection = MemberSelection(store: store)
    let sets = try request.candidates.map(selection.named) ?? everyCandidate(datasetFile: request.datasetFile, store: store, events: events)
    var (dataset, members, covered) = try selection.members(sets, allowSubsets: true)
    var lineage = request.lineage
    var calibration: (kind: CalibrationKind, fits: [MemberCalibration], uncalibrated: Int)?
    if let kind = request.calibration {
        let fitted = try calibrate(members, dataset: dataset, gold: gold.answers, kind: kind)
        members = fitted.members
        calibration = (kind, fitted.fits, sets.count - fitted.fits.count)
        lineage.calibration = fitted.fits
        lineage.calibrationGold = request.gold
    }
    // Selection runs on the labelled items every candidate covers.
    let labelled = try gold.labelled(covered, id: { dataset.itemIds[$0] }, what: "the \(covered.count) items every candidate predicts")
    let answers = gold.answers
    let goldAnswers = labelled.map { answers[dataset.itemIds[$0]]! }
    let restricted = restrict(members, to: labelled)
    let rounds = try greedySelection(
        restricted, choiceCounts: labelled.map { dataset.choiceCounts[$0] }, gold: goldAnswers, rounds: request.rounds,
        method: request.method)
    let accuracyAlone = restricted.map { Double(zip($0.answers, goldAnswers).filter { $0 == $1 }.count) / Double(labelled.count) }
    var result = Selection(
        dataset: dataset, candidates: members.map(\.name), labelledItems: labelled.count, calibration: calibration, rounds: rounds,
        accuracyAlone: accuracyAlone, saved: nil)
    guard let name = request.name, let outURL else { return result }
    if let subset = sets.first(where: { $0.isSubset(of: dataset) }) {
        throw StoreError.invalid(
            "\(subset.ref) covers \(subset.itemCount!) of the dataset's \(dataset.itemCount) items (imported with --subset): a subset cannot be a member of a submission; select without --name, or with --candidates that cover the dataset"
        )
    }
    let picks = rounds.map(\.added)
    let combined = try combine(
        picks.map { members[$0] }, choiceCounts: dataset.choiceCounts, method: request.method,
        weights: Array(repeating: 1, count: picks.count))
    let outcome = try store.addSubmission(
        Store.NewSubmission(
            name: name, dataset: dataset, table: predictionTable(combined, dataset: dataset),
            members: picks.map { (sets[$0], 1, members[$0].publicScore) },
            method: request.method.rawValue, weightScheme: "greedy selection, one per pick (\(request.rounds) rounds on \(request.gold))",
            tieRule: request.method.tieRule, lineage: lineage, notes: request.notes, out: outURL))
    result.saved = (outcome, outURL)
    return result
}

/// Every visible set that is not an ensemble, over one dataset; content two names share
/// is one candidate (the better scored), said as an event.
func everyCandidate(datasetFile: String?, store: Store, events: WorkflowEvents) throws -> [PredictionSetRecord] {
    var all = try store.summaries().filter { $0.origin != .ensemble && !$0.hidden }
    if let datasetFile {
        let sha = try store.dataset(file: datasetFile).sha256
        all = all.filter { $0.datasetSha256 == sha }
    }
    guard Set(all.map(\.datasetSha256)).count <= 1 else {
        throw StoreError.invalid("the sets are over several datasets; choose with --dataset TEST.csv or --candidates")
    }
    var seen: [String: String] = [:]
    all = all.sorted { ($0.public ?? -1, $0.createdAt) > ($1.public ?? -1, $1.createdAt) }.filter { set in
        if let first = seen[set.csvSha256] {
            events(.note("Skipped \(set.ref): the same answers and values as \(first)."))
            return false
        }
        seen[set.csvSha256] = set.ref
        return true
    }.sorted { ($0.name, $0.version) < ($1.name, $1.version) }
    return try all.map { try store.predictionSet(id: $0.id) }
}
