import Ensemble
import Exam
import Foundation
import Store

/// How a set's answers spread over the choice positions, per number of choices,
/// against the gold's answers over the same items and a labelled file's prior.
public struct PositionBias: Sendable, Encodable {
    public struct Group: Sendable, Encodable {
        public var choices: Int
        public var items: Int
        /// Answers per position 1...choices.
        public var answers: [Int]
        /// Answers kept verbatim that are not a choice.
        public var invalid: Int
        /// The gold's answers over the same items, when a gold file labels them.
        public var gold: [Int]?
        /// The prior file's share of each position among its items with this many choices.
        public var prior: [Double]?
        /// Accuracy on the items whose gold is each position (nil where none is).
        public var recall: [Double?]?
        /// The mean probability the set gives each position (sets with values).
        public var meanProbability: [Double]?
        /// Against the gold if given, else the prior, else uniform shares.
        public var chiSquare: ChiSquare?
        public var mostFrequent: MostFrequent

        public struct ChiSquare: Sendable, Encodable {
            public var against: String
            public var statistic: Double
            public var degreesOfFreedom: Int
            public var pValue: Double
        }

        public struct MostFrequent: Sendable, Encodable {
            public var position: Int
            public var share: Double
            /// Its share in the reference (gold, prior or uniform).
            public var referenceShare: Double
            /// More than twice the reference share.
            public var flagged: Bool
        }
    }

    public var set: String
    public var groups: [Group]

    public var flagged: Bool { groups.contains { $0.mostFrequent.flagged } }
}

/// A labelled file's share of each answer position, per number of choices.
public func answerPrior(_ items: [ExamItem]) -> [Int: [Double]] {
    var prior: [Int: [Double]] = [:]
    for (choices, group) in Dictionary(grouping: items.filter { $0.answer != nil }, by: \.choices.count) {
        var counts = Array(repeating: 0.0, count: choices)
        for item in group { counts[item.answer! - 1] += 1 }
        prior[choices] = counts.map { $0 / Double(group.count) }
    }
    return prior
}

/// The position bias of a set. `gold`: answers by id; `prior`: shares per choice count.
public func positionBias(
    of set: PredictionSetRecord, table: PredictionTable, dataset: DatasetRecord, gold: [String: Int]?, prior: [Int: [Double]]?
) -> PositionBias {
    var choicesOf: [String: Int] = [:]
    for (id, n) in zip(dataset.itemIds, dataset.choiceCounts) { choicesOf[id] = n }
    let byChoices = Dictionary(grouping: table.rows, by: { choicesOf[$0.id]! })
    let member = Member(
        name: set.ref.description, answers: table.rows.map(\.answer),
        values: table.choiceValues.map { kind in
            let rows = table.rows.map { $0.values.map { $0 ?? 0 } }
            return kind == .logits ? MemberValues.logits(rows) : .probabilities(rows)
        } ?? .none, publicScore: nil)
    let probabilities = table.choiceValues == nil ? nil : member.probabilities(choiceCounts: table.rows.map { choicesOf[$0.id]! })
    var index: [String: Int] = [:]
    for (i, row) in table.rows.enumerated() { index[row.id] = i }
    let groups = byChoices.keys.sorted().map { n -> PositionBias.Group in
        let rows = byChoices[n]!
        var answers = Array(repeating: 0, count: n)
        for row in rows where row.answer > 0 { answers[row.answer - 1] += 1 }
        let labelled = gold.map { gold in rows.filter { gold[$0.id] != nil } } ?? []
        var goldCounts: [Int]?, recall: [Double?]?
        if let gold, !labelled.isEmpty {
            var counts = Array(repeating: 0, count: n), right = Array(repeating: 0, count: n)
            for row in labelled {
                let answer = gold[row.id]!
                counts[answer - 1] += 1
                if row.answer == answer { right[answer - 1] += 1 }
            }
            goldCounts = counts
            recall = (0..<n).map { counts[$0] == 0 ? nil : Double(right[$0]) / Double(counts[$0]) }
        }
        let meanProbability = probabilities.map { p in
            (0..<n).map { c in rows.reduce(0) { $0 + (p[index[$1.id]!][c]) } / Double(rows.count) }
        }
        let reference: (String, [Double])
        if let goldCounts {
            // Against the gold, the set's answers over the labelled items only.
            reference = ("gold", goldCounts.map { Double($0) })
        } else if let shares = prior?[n] {
            reference = ("prior", shares)
        } else {
            reference = ("uniform", Array(repeating: 1 / Double(n), count: n))
        }
        let observed: [Int]
        if goldCounts != nil {
            var counts = Array(repeating: 0, count: n)
            for row in labelled where row.answer > 0 { counts[row.answer - 1] += 1 }
            observed = counts
        } else {
            observed = answers
        }
        let test = chiSquare(observed: observed, expectedShares: reference.1).map {
            PositionBias.Group.ChiSquare(
                against: reference.0, statistic: $0.statistic, degreesOfFreedom: $0.degreesOfFreedom, pValue: $0.pValue)
        }
        let valid = max(1, answers.reduce(0, +))
        let top = answers.indices.max { (answers[$0], -$0) < (answers[$1], -$1) }!
        let referenceTotal = reference.1.reduce(0, +)
        let referenceShare = referenceTotal > 0 ? reference.1[top] / referenceTotal : 0
        let share = Double(answers[top]) / Double(valid)
        return PositionBias.Group(
            choices: n, items: rows.count, answers: answers, invalid: rows.filter { $0.answer == 0 }.count, gold: goldCounts,
            prior: prior?[n], recall: recall, meanProbability: meanProbability, chiSquare: test,
            mostFrequent: .init(
                position: top + 1, share: share, referenceShare: referenceShare, flagged: share > AnswerCounts.biasedRatio * referenceShare)
        )
    }
    return PositionBias(set: set.ref.description, groups: groups)
}
