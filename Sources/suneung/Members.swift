import Foundation
import Ensemble
import Exam
import Store

/// Turning stored prediction sets into ensemble members: selection by public score or
/// by name, and the one-dataset check.
struct MemberSelection {
    let store: Store

    /// The K sets with the best public scores (ties: the newer version first), among the
    /// sets that are not themselves ensembles, over one dataset.
    func top(_ k: Int, datasetFile: String?) throws -> [PredictionSetRecord] {
        guard k >= 1 else { throw StoreError.invalid("--top needs K >= 1") }
        var scored = try store.summaries().filter { $0.public != nil && $0.origin != .ensemble }
        if let datasetFile {
            let sha = try store.dataset(file: datasetFile).sha256
            scored = scored.filter { $0.datasetSha256 == sha }
        }
        let datasets = Set(scored.map(\.datasetSha256))
        guard datasets.count <= 1 else {
            throw StoreError.invalid("the scored sets are over \(datasets.count) datasets (\(datasets.map { String($0.prefix(8)) }.sorted().joined(separator: ", "))); choose one with --dataset TEST.csv, or name the members with --members")
        }
        guard scored.count >= k else {
            throw StoreError.invalid("--top \(k) asks for more sets than have a public score (\(scored.count)); record scores with `suneung score NAME --public X`")
        }
        scored.sort { ($0.public!, $0.createdAt, $0.id) > ($1.public!, $1.createdAt, $1.id) }
        return try scored.prefix(k).map { try store.predictionSet(id: $0.id) }
    }

    /// Sets named as `A,B@v2,...`; naming one twice is an error.
    func named(_ list: [String]) throws -> [PredictionSetRecord] {
        guard !list.isEmpty else { throw StoreError.invalid("no members named") }
        let sets = try list.map { try store.predictionSet($0) }
        var seen: Set<Int64> = []
        for set in sets where !seen.insert(set.id!).inserted {
            throw StoreError.invalid("\(set.ref) is named twice")
        }
        return sets
    }

    /// The members, over one dataset, with their values and latest public scores.
    func members(_ sets: [PredictionSetRecord]) throws -> (dataset: DatasetRecord, members: [Member]) {
        guard let first = sets.first else { throw StoreError.invalid("no members") }
        if let other = sets.first(where: { $0.datasetId != first.datasetId }) {
            let a = try store.dataset(id: first.datasetId), b = try store.dataset(id: other.datasetId)
            throw StoreError.invalid("\(first.ref) and \(other.ref) are over different datasets (\(a.shortHash), \(a.itemCount) items vs \(b.shortHash), \(b.itemCount) items): an ensemble's members must predict the same test set")
        }
        let dataset = try store.dataset(id: first.datasetId)
        let members = try sets.map { set -> Member in
            let table = try store.table(of: set)
            let values: MemberValues
            let rows = table.rows.map { $0.values.map { $0 ?? 0 } }
            switch table.choiceValues {
            case .logits: values = .logits(rows)
            case .probabilities: values = .probabilities(rows)
            case nil: values = .none
            }
            return Member(name: set.ref.description, answers: table.rows.map(\.answer), values: values, publicScore: try store.latestScore(of: set, .public))
        }
        return (dataset, members)
    }
}

/// A list option: `A,B,C`.
func commaList(_ text: String) -> [String] {
    text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// An ensemble's result as a prediction set over the dataset: its answers and averaged
/// probabilities.
func predictionTable(_ result: EnsembleResult, dataset: DatasetRecord) -> PredictionTable {
    PredictionTable(choiceValues: .probabilities, rows: dataset.itemIds.indices.map { item in
        let probabilities = result.probabilities[item]
        return PredictionRow(id: dataset.itemIds[item], answer: result.answers[item], values: (0..<PredictionRow.maxChoices).map { $0 < probabilities.count ? probabilities[$0] : nil })
    })
}
