import Ensemble
import Exam
import Foundation
import Store

/// Turning stored prediction sets into ensemble members: selection by score or by
/// name, identical content counted once, and the one-dataset check.
public struct MemberSelection: Sendable {
    public let store: Store

    public init(store: Store) { self.store = store }

    /// What `--top K` chose, and the copies it passed over: a set whose answers and
    /// values equal a better-scored set's (the same file imported twice) counts once.
    public struct Top: Sendable {
        public var sets: [PredictionSetRecord]
        public var skippedCopies: [(skipped: String, sameAs: String)]
    }

    /// The K sets with the best scores of a kind (ties: the newer version first), among
    /// the sets that are not ensembles, subsets or hidden, over one dataset, less
    /// `excluding` (names, for all their versions, or NAME@vK).
    public func top(_ k: Int, by kind: ScoreKind = .public, datasetFile: String?, excluding: [String] = [], includeHidden: Bool = false)
        throws -> Top
    {
        guard k >= 1 else { throw StoreError.invalid("--top needs K >= 1") }
        let excluded = try excluding.map { try SetRef(parsing: $0) }
        var scored = try store.summaries().filter { set in
            set.score(kind) != nil && set.origin != .ensemble && !set.subset && (includeHidden || !set.hidden)
                && !excluded.contains { $0.name == set.name && ($0.version == nil || $0.version == set.version) }
        }
        if let datasetFile {
            let sha = try store.dataset(file: datasetFile).sha256
            scored = scored.filter { $0.datasetSha256 == sha }
        }
        let datasets = Set(scored.map(\.datasetSha256))
        guard datasets.count <= 1 else {
            throw StoreError.invalid(
                "the scored sets are over \(datasets.count) datasets (\(datasets.map { String($0.prefix(8)) }.sorted().joined(separator: ", "))); choose one with --dataset TEST.csv, or name the members with --members"
            )
        }
        let (kept, skipped) = Self.rank(scored, by: kind)
        guard kept.count >= k else {
            let copies = skipped.isEmpty ? "" : " (\(skipped.count) more are copies of others' content)"
            throw StoreError.invalid(
                "--top \(k) asks for more sets than have a distinct \(kind.rawValue) score (\(kept.count)\(copies)); record scores with `suneung score NAME --\(kind.rawValue) X`"
            )
        }
        let chosen = kept.prefix(k)
        let chosenRefs = Set(chosen.map(\.ref))
        return Top(
            sets: try chosen.map { try store.predictionSet(id: $0.id) },
            skippedCopies: skipped.filter { chosenRefs.contains($0.1) })
    }

    /// The sets with a score of `kind`, best first (ties: the newer version first), and
    /// the copies passed over: a set whose answers and values equal a better-ranked set's
    /// counts once. The one ranking of `--top` and the pipeline's top members.
    public static func rank(_ sets: [Store.SetSummary], by kind: ScoreKind) -> (
        kept: [Store.SetSummary], skipped: [(skipped: String, sameAs: String)]
    ) {
        let scored = sets.compactMap { set in set.score(kind).map { (set, $0) } }
            .sorted { ($0.1, $0.0.createdAt, $0.0.id) > ($1.1, $1.0.createdAt, $1.0.id) }.map(\.0)
        var kept: [Store.SetSummary] = []
        var skipped: [(skipped: String, sameAs: String)] = []
        var byContent: [String: String] = [:]
        for set in scored {
            if let first = byContent[set.csvSha256] {
                skipped.append((set.ref, first))
            } else {
                byContent[set.csvSha256] = set.ref
                kept.append(set)
            }
        }
        return (kept, skipped)
    }

    /// Sets named as `A,B@v2,...`; naming one twice is an error.
    public func named(_ list: [String]) throws -> [PredictionSetRecord] {
        guard !list.isEmpty else { throw StoreError.invalid("no members named") }
        let sets = try list.map { try store.predictionSet($0) }
        var seen: Set<Int64> = []
        for set in sets where !seen.insert(set.id!).inserted {
            throw StoreError.invalid("\(set.ref) is named twice")
        }
        return sets
    }

    /// The members, over one dataset, with their values and latest public scores, read
    /// through the recorded sha256. Answers are by dataset position; an item a subset
    /// does not cover, or whose answer was kept verbatim, is 0 (abstains). `covered`
    /// lists the positions every member has a row for.
    public func members(_ sets: [PredictionSetRecord], allowSubsets: Bool = false) throws -> (
        dataset: DatasetRecord, members: [Member], covered: [Int]
    ) {
        guard let first = sets.first else { throw StoreError.invalid("no members") }
        if let other = sets.first(where: { $0.datasetId != first.datasetId }) {
            let a = try store.dataset(id: first.datasetId), b = try store.dataset(id: other.datasetId)
            throw StoreError.invalid(
                "\(first.ref) and \(other.ref) are over different datasets (\(a.shortHash), \(a.itemCount) items vs \(b.shortHash), \(b.itemCount) items; \(store.difference(between: a, and: b))): an ensemble's members must predict the same test set"
            )
        }
        let dataset = try store.dataset(id: first.datasetId)
        var position: [String: Int] = [:]
        for (index, id) in dataset.itemIds.enumerated() { position[id] = index }
        var coverage = Array(repeating: 0, count: dataset.itemCount)
        let members = try sets.map { set -> Member in
            let table = try store.checkedTable(of: set)
            if !allowSubsets && set.isSubset(of: dataset) {
                throw StoreError.invalid(
                    "\(set.ref) covers \(table.rows.count) of the dataset's \(dataset.itemCount) items (imported with --subset): a subset cannot be a member of a submission"
                )
            }
            var answers = Array(repeating: 0, count: dataset.itemCount)
            var rows = Array(repeating: Array(repeating: 0.0, count: PredictionRow.maxChoices), count: dataset.itemCount)
            for row in table.rows {
                let at = position[row.id]!
                answers[at] = row.answer
                rows[at] = row.values.map { $0 ?? 0 }
                coverage[at] += 1
            }
            let values: MemberValues
            switch table.choiceValues {
            case .logits: values = .logits(rows)
            case .probabilities: values = .probabilities(rows)
            case nil: values = .none
            }
            return Member(name: set.ref.description, answers: answers, values: values, publicScore: try store.latestScore(of: set, .public))
        }
        return (dataset, members, coverage.indices.filter { coverage[$0] == sets.count })
    }
}

/// An ensemble's result as a prediction set over the dataset: its answers and averaged
/// probabilities.
public func predictionTable(_ result: EnsembleResult, dataset: DatasetRecord) -> PredictionTable {
    PredictionTable(
        choiceValues: .probabilities,
        rows: dataset.itemIds.indices.map { item in
            let probabilities = result.probabilities[item]
            return PredictionRow(
                id: dataset.itemIds[item], answer: result.answers[item],
                values: (0..<PredictionRow.maxChoices).map { $0 < probabilities.count ? probabilities[$0] : nil })
        })
}

/// The members restricted to some items (by dataset position).
public func restrict(_ members: [Member], to items: [Int]) -> [Member] {
    members.map { member in
        let values: MemberValues
        switch member.values {
        case .logits(let rows): values = .logits(items.map { rows[$0] })
        case .probabilities(let rows): values = .probabilities(items.map { rows[$0] })
        case .none: values = .none
        }
        return Member(name: member.name, answers: items.map { member.answers[$0] }, values: values, publicScore: member.publicScore)
    }
}

/// A set's place against the best public score of its dataset: "best", or "~" when it is
/// within one binomial standard error of it (the public split cannot tell them apart).
public struct CloseToBest: Sendable {
    public var mark: String
    public var best: Store.SetSummary
    public var error: Double
    public var publicItems: Int
}

/// `list`'s and the leaderboard's marks; `publicItems` defaults to the public split of the dataset.
public func closeToBest(_ sets: [Store.SetSummary], publicItems: Int? = nil) -> [Int64: CloseToBest] {
    var marks: [Int64: CloseToBest] = [:]
    for group in Dictionary(grouping: sets.filter { $0.public != nil }, by: \.datasetSha256).values {
        let best = group.max { ($0.public!, $0.createdAt) < ($1.public!, $1.createdAt) }!
        let n = publicItems ?? publicSplitItems(ofDataset: best.items)
        let error = standardError(accuracy: best.public!, items: n)
        for set in group {
            if set.id == best.id {
                marks[set.id] = CloseToBest(mark: "best", best: best, error: error, publicItems: n)
            } else if best.public! - set.public! < error {
                marks[set.id] = CloseToBest(mark: "~", best: best, error: error, publicItems: n)
            }
        }
    }
    return marks
}
