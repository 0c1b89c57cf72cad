import Ensemble
import Exam
import Foundation
import Store

/// What `ensemble` is asked to build: by the command line, or as JSON by the server.
public struct EnsembleSpec: Codable, Sendable {
    public var name: String
    /// Members by NAME or NAME@vK; or `top` K best by `by`, less `exclude`.
    public var members: [String]?
    public var top: Int?
    public var by: ScoreKind?
    public var exclude: [String]?
    /// vote (the default), weighted-vote or average.
    public var method: String?
    /// score, excess, rank, softmax:T, uniform, or name=w,... (not for vote).
    public var weights: String?
    public var tags: [String]?
    public var note: String?
    /// Build and report, record nothing.
    public var dryRun: Bool?

    public init(
        name: String, members: [String]? = nil, top: Int? = nil, by: ScoreKind? = nil, exclude: [String]? = nil, method: String? = nil,
        weights: String? = nil, tags: [String]? = nil, note: String? = nil, dryRun: Bool? = nil
    ) {
        self.name = name
        self.members = members
        self.top = top
        self.by = by
        self.exclude = exclude
        self.method = method
        self.weights = weights
        self.tags = tags
        self.note = note
        self.dryRun = dryRun
    }
}

/// An ensemble as built: what the command prints and the server answers.
public struct BuiltEnsemble: Codable, Sendable {
    public struct Member: Codable, Sendable {
        public var set: String
        public var publicScore: Double?
        /// nil for vote: one vote each.
        public var weight: Double?
    }

    public var name: String
    public var method: String
    public var dataset: String
    public var items: Int
    public var members: [Member]
    public var skippedCopies: [String]
    public var weights: String
    public var tieRule: String
    public var bestMember: String
    public var bestMemberPublic: Double?
    /// Answers changed from the best member's.
    public var changedFromBest: Int
    /// Sets (other names) with these answers; "(uploaded)" after those uploaded.
    public var sameAnswers: [String]
    /// The recorded set (nil on a dry run) and whether it is new.
    public var recorded: String?
    public var created: Bool
    /// The submission CSV, relative to the workspace.
    public var submissionFile: String?
}

/// Builds an ensemble and records it with its submission (unless a dry run).
/// `calibrate` may replace the members by calibrated ones (and note it in the lineage).
public func buildEnsemble(
    _ spec: EnsembleSpec, store: Store, datasetFile: String? = nil, lineage: Lineage, author: String?, out: URL? = nil,
    calibrate: (([Member], DatasetRecord, inout Lineage) throws -> [Member])? = nil
) throws -> BuiltEnsemble {
    try SetRef.checkName(spec.name)
    guard let method = Ensemble.Method(rawValue: spec.method ?? "vote") else {
        throw StoreError.invalid(
            "method '\(excerpt(spec.method ?? ""))' is not one of \(Ensemble.Method.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    for tag in spec.tags ?? [] { try SetRef.checkName(tag, what: "tag") }
    // Refusals that need no members first: the name's kind and where it would write.
    try store.checkNameTakes(spec.name, origin: .ensemble)
    let outURL = out ?? store.workspace.submissionsFolder.appendingPathComponent("\(spec.name).csv")
    try store.checkOutputPath(outURL, owner: SetRef(name: spec.name, version: nil))
    if method == .vote, spec.weights != nil {
        throw StoreError.invalid("vote gives every member one vote; use --method weighted-vote or average with --weights")
    }
    var scheme = try spec.weights.map { try WeightScheme(parsing: $0) } ?? (method == .vote ? .uniform : .score)
    let selection = MemberSelection(store: store)
    var sets: [PredictionSetRecord]
    var skipped: [String] = []
    switch (spec.top, spec.members, scheme) {
    case (let k?, nil, _):
        let chosen = try selection.top(k, by: spec.by ?? .public, datasetFile: datasetFile, excluding: spec.exclude ?? [])
        sets = chosen.sets
        skipped = chosen.skippedCopies.map { "\($0.skipped): the same answers and values as \($0.sameAs)" }
    case (nil, let list?, _): sets = try selection.named(list)
    case (nil, nil, .explicit(let given)): sets = try selection.named(given.keys.sorted())
    case (nil, nil, _): throw StoreError.invalid("choose the members: --top K or --members A,B,...")
    default: throw StoreError.invalid("--top and --members exclude each other")
    }
    if case .explicit(let given) = scheme {
        var resolved: [String: Double] = [:]
        for (key, weight) in given {
            let set = try store.predictionSet(key)
            guard sets.contains(where: { $0.id == set.id }) else {
                throw StoreError.invalid(
                    "--weights names \(set.ref), which is not a member (members: \(sets.map(\.ref.description).joined(separator: ", ")))")
            }
            resolved[set.ref.description] = weight
        }
        scheme = .explicit(resolved)
    }
    let (dataset, uncalibrated, _) = try selection.members(sets)
    var lineage = lineage
    let members = try calibrate?(uncalibrated, dataset, &lineage) ?? uncalibrated
    let weights = try scheme.weights(for: members)
    let result = try combine(members, choiceCounts: dataset.choiceCounts, method: method, weights: weights)
    let best = members.indices.max { (members[$0].publicScore ?? -1, -$0) < (members[$1].publicScore ?? -1, -$1) }!
    let table = predictionTable(result, dataset: dataset)
    let same = try store.sameAnswers(table, dataset: dataset).filter { $0.set.name != spec.name }
    var built = BuiltEnsemble(
        name: spec.name, method: method.rawValue, dataset: dataset.shortHash, items: dataset.itemCount,
        members: members.indices.map {
            BuiltEnsemble.Member(set: members[$0].name, publicScore: members[$0].publicScore, weight: method == .vote ? nil : weights[$0])
        },
        skippedCopies: skipped, weights: method == .vote ? "one vote each" : scheme.description, tieRule: method.tieRule,
        bestMember: members[best].name, bestMemberPublic: members[best].publicScore,
        changedFromBest: zip(result.answers, members[best].answers).filter { $0 != $1 }.count,
        sameAnswers: same.map { $0.set.ref.description + ($0.uploaded ? " (uploaded)" : "") }, recorded: nil, created: false,
        submissionFile: nil)
    guard spec.dryRun != true else { return built }
    let outcome = try store.addSubmission(
        Store.NewSubmission(
            name: spec.name, dataset: dataset, table: table,
            members: zip(sets, zip(weights, members)).map { ($0, method == .vote ? 1 : $1.0, $1.1.publicScore) },
            method: method.rawValue, weightScheme: built.weights, tieRule: method.tieRule,
            lineage: lineage, notes: Store.SetNotes(author: author, tags: spec.tags ?? [], note: spec.note), out: outURL))
    built.recorded = outcome.set.ref.description
    if case .created = outcome { built.created = true }
    built.submissionFile = store.workspace.relative(outURL)
    return built
}
