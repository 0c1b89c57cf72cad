import Ensemble
import Exam
import Foundation
import Store

/// Two sets compared item by item over the ids both have: what `diff`, the server's
/// /diff and the dashboard's compare page show.
public struct SetDiff: Codable, Sendable {
    public struct Item: Codable, Sendable {
        public var item: String
        public var first: String
        public var second: String
    }

    public var first: String
    public var second: String
    public var shared: Int
    public var agree: Int
    public var differing: [Item]
    /// transitions[i][j]: items the first answers i and the second j; 0 is an answer
    /// kept verbatim (`x`).
    public var transitions: [[Int]]

    public static let answerLabels = ["x", "1", "2", "3", "4", "5"]

    /// Rows read through their recorded sha256.
    public init(_ a: PredictionSetRecord, _ b: PredictionSetRecord, store: Store) throws {
        let rowsA = try store.checkedTable(of: a).rows
        var rowsB: [String: PredictionRow] = [:]
        for row in try store.checkedTable(of: b).rows { rowsB[row.id] = row }
        first = a.ref.description
        second = b.ref.description
        differing = []
        transitions = Array(repeating: Array(repeating: 0, count: 6), count: 6)
        shared = 0
        for row in rowsA {
            guard let other = rowsB[row.id] else { continue }
            shared += 1
            transitions[row.answer][other.answer] += 1
            if other.answerField != row.answerField {
                differing.append(Item(item: row.id, first: row.answerField, second: other.answerField))
            }
        }
        agree = shared - differing.count
        guard shared > 0 else { throw StoreError.invalid("\(a.ref) and \(b.ref) share no item id (they are over different datasets)") }
    }
}

/// Pairwise agreement of several sets over the items all of them cover.
public struct AgreementMatrix: Codable, Sendable {
    public var sets: [String]
    public var publicScores: [Double?]
    public var items: Int
    /// Share of items with the same answer.
    public var agreement: [[Double]]
    /// Cohen's kappa; NaN (null in JSON) where undefined.
    public var kappa: [[Double?]]
    public var withMajority: [Double]

    public init(_ sets: [PredictionSetRecord], store: Store) throws {
        guard sets.count >= 2 else { throw StoreError.invalid("agreement needs at least two sets") }
        let (dataset, all, covered) = try MemberSelection(store: store).members(sets, allowSubsets: true)
        guard !covered.isEmpty else { throw StoreError.invalid("the sets share no item (subsets of different parts of the dataset)") }
        let members = restrict(all, to: covered)
        let majority = try combine(
            members, choiceCounts: covered.map { dataset.choiceCounts[$0] }, method: .vote,
            weights: Array(repeating: 1, count: members.count))
        self.sets = members.map(\.name)
        publicScores = members.map(\.publicScore)
        items = covered.count
        agreement = members.map { a in members.map { b in Ensemble.agreement(a.answers, b.answers) } }
        kappa = members.map { a in
            members.map { b in
                let k = cohensKappa(a.answers, b.answers)
                return k.isNaN ? nil : k
            }
        }
        withMajority = members.map { Ensemble.agreement($0.answers, majority.answers) }
    }
}
