import Foundation

// Pure ensemble maths over a prediction matrix: items x members x choices. No I/O; the
// store and the commands feed it and record what it returns.

/// What a member says about each item.
public enum MemberValues: Sendable, Equatable {
    /// Raw per-choice logits; probabilities are their softmax over the valid choices.
    case logits([[Double]])
    /// Per-choice probabilities, used as given but renormalised over the valid choices.
    case probabilities([[Double]])
    /// Answers only: the member's probability is a one-hot vector of its answer.
    case none
}

public struct Member: Sendable, Equatable {
    public var name: String
    /// 1-based answer per item; 0 where the member abstains (its answer was not one of
    /// the item's choices): it neither votes nor adds probability there.
    public var answers: [Int]
    /// Per item, at least as many values as the item has choices (extra ones ignored).
    public var values: MemberValues
    public var publicScore: Double?

    public init(name: String, answers: [Int], values: MemberValues, publicScore: Double?) {
        self.name = name
        self.answers = answers
        self.values = values
        self.publicScore = publicScore
    }

    /// The member's probability of each valid choice, per item; all zero where it abstains.
    public func probabilities(choiceCounts: [Int]) -> [[Double]] {
        choiceCounts.indices.map { item in
            let n = choiceCounts[item]
            if answers[item] == 0 { return Array(repeating: 0, count: n) }
            switch values {
            case .logits(let logits):
                let valid = logits[item].prefix(n)
                let top = valid.max()!
                let exps = valid.map { exp($0 - top) }
                let sum = exps.reduce(0, +)
                return exps.map { $0 / sum }
            case .probabilities(let probabilities):
                // Scaled by the largest first: values near the largest double would
                // overflow their sum.
                let largest = probabilities[item].prefix(n).max()!
                let valid = probabilities[item].prefix(n).map { $0 / largest }
                let sum = valid.reduce(0, +)
                return valid.map { $0 / sum }
            case .none:
                return (1...n).map { $0 == answers[item] ? 1 : 0 }
            }
        }
    }
}

public enum Method: String, Sendable, CaseIterable {
    /// One vote per member.
    case vote
    /// A vote counts its member's weight.
    case weightedVote = "weighted-vote"
    /// p(c) = Σ w_m p_m(c) / Σ w_m.
    case average

    public var tieRule: String {
        switch self {
        case .vote: "larger summed public score of the voters, then larger mean probability over all members, then lower choice number"
        case .weightedVote, .average: "lower choice number"
        }
    }
}

public struct EnsembleResult: Sendable, Equatable {
    /// 1-based answer per item.
    public var answers: [Int]
    /// Σ w_m p_m(c) / Σ w_m per item (uniform weights for `vote`): what the ensemble
    /// passes on when it is itself a member of another ensemble.
    public var probabilities: [[Double]]
}

public enum EnsembleError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let message): message
        }
    }
}

/// Combines members over the same items. `weights` (one per member) matter for
/// `weightedVote` and `average`; `vote` gives every member one vote.
public func combine(_ members: [Member], choiceCounts: [Int], method: Method, weights: [Double]) throws(EnsembleError) -> EnsembleResult {
    guard !members.isEmpty else { throw .invalid("an ensemble needs at least one member") }
    guard weights.count == members.count else { throw .invalid("\(weights.count) weights for \(members.count) members") }
    guard weights.allSatisfy({ $0.isFinite && $0 >= 0 }), weights.contains(where: { $0 > 0 }) else {
        throw .invalid("weights must be finite, non-negative and not all zero")
    }
    try checkShape(members, choiceCounts: choiceCounts)
    var weights = weights
    // Weights whose sum overflows (1e308 twice) mean the same scaled down.
    if !weights.reduce(0, +).isFinite {
        let largest = weights.max()!
        weights = weights.map { $0 / largest }
    }
    let averagingWeights = method == .vote ? Array(repeating: 1.0, count: members.count) : weights
    let memberProbabilities = members.map { $0.probabilities(choiceCounts: choiceCounts) }

    var answers: [Int] = []
    var probabilities: [[Double]] = []
    for item in choiceCounts.indices {
        let n = choiceCounts[item]
        var average = Array(repeating: 0.0, count: n)
        var totalWeight = 0.0
        for (m, weight) in averagingWeights.enumerated() where members[m].answers[item] != 0 {
            for c in 0..<n { average[c] += weight * memberProbabilities[m][item][c] }
            totalWeight += weight
        }
        // Where every member abstains, nothing is known: uniform, and the lowest choice.
        average = totalWeight > 0 ? average.map { $0 / totalWeight } : Array(repeating: 1 / Double(n), count: n)
        probabilities.append(average)

        switch method {
        case .average:
            answers.append(highest(n) { average[$0] } + 1)
        case .weightedVote:
            var tally = Array(repeating: 0.0, count: n)
            for (m, member) in members.enumerated() where member.answers[item] != 0 { tally[member.answers[item] - 1] += weights[m] }
            answers.append(highest(n) { tally[$0] } + 1)
        case .vote:
            var votes = Array(repeating: 0, count: n)
            var voterScore = Array(repeating: 0.0, count: n)
            for member in members where member.answers[item] != 0 {
                votes[member.answers[item] - 1] += 1
                voterScore[member.answers[item] - 1] += member.publicScore ?? 0
            }
            answers.append(voteWinner(n, votes: { votes[$0] }, voterScore: { voterScore[$0] }, meanProbability: { average[$0] }) + 1)
        }
    }
    return EnsembleResult(answers: answers, probabilities: probabilities)
}

/// Every member answers every item within its choices (or abstains: 0) and has values
/// for them.
func checkShape(_ members: [Member], choiceCounts: [Int]) throws(EnsembleError) {
    for member in members {
        guard member.answers.count == choiceCounts.count else {
            throw .invalid("\(member.name) answers \(member.answers.count) items, the matrix has \(choiceCounts.count)")
        }
        for (item, n) in choiceCounts.enumerated() where !(0...n).contains(member.answers[item]) {
            throw .invalid("\(member.name) answers \(member.answers[item]) on item \(item + 1), which has \(n) choices")
        }
        switch member.values {
        case .logits(let rows), .probabilities(let rows):
            guard rows.count == choiceCounts.count, zip(rows, choiceCounts).allSatisfy({ $0.count >= $1 }) else {
                throw .invalid("\(member.name) lacks values for some items' choices")
            }
        case .none: break
        }
    }
}

/// Values this close count as equal, so that sums which are equal in exact arithmetic
/// tie whatever order floating point added them in.
public let tieTolerance = 1e-9

/// The 0-based choice with the largest value; among values within `tieTolerance` of
/// the largest, the lowest choice.
@inline(__always)
func highest(_ n: Int, _ value: (Int) -> Double) -> Int {
    var top = value(0)
    for c in 1..<n { top = max(top, value(c)) }
    return (0..<n).first { value($0) >= top - tieTolerance }!
}

/// The vote's winner: most votes; then the larger summed public score of the voters;
/// then the larger mean probability over all members; then the lowest choice.
@inline(__always)
func voteWinner(_ n: Int, votes: (Int) -> Int, voterScore: (Int) -> Double, meanProbability: (Int) -> Double) -> Int {
    var most = votes(0)
    for c in 1..<n { most = max(most, votes(c)) }
    var bestScore = -Double.infinity
    for c in 0..<n where votes(c) == most { bestScore = max(bestScore, voterScore(c)) }
    var bestMean = -Double.infinity
    for c in 0..<n where votes(c) == most && voterScore(c) >= bestScore - tieTolerance { bestMean = max(bestMean, meanProbability(c)) }
    return (0..<n).first {
        votes($0) == most && voterScore($0) >= bestScore - tieTolerance && meanProbability($0) >= bestMean - tieTolerance
    }!
}
