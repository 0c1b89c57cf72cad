/// One round of greedy selection: the candidate it added and the accuracy after it.
public struct SelectionRound: Sendable, Equatable {
    public var added: Int
    public var accuracy: Double
}

/// Greedy forward selection with replacement (Caruana et al., 2004): each round adds the
/// candidate (possibly one already chosen) whose addition gives the highest accuracy on
/// the labelled items; equal accuracies go to the candidate more accurate on its own,
/// then the earlier one. Each pick counts once: under `average` a candidate picked
/// twice has weight 2, under `vote` two votes, with `combine`'s tie rules.
public func greedySelection(_ candidates: [Member], choiceCounts: [Int], gold: [Int], rounds: Int, method: Method) throws(EnsembleError)
    -> [SelectionRound]
{
    guard !candidates.isEmpty else { throw .invalid("no candidates to select from") }
    guard rounds >= 1 else { throw .invalid("the number of rounds must be at least 1") }
    guard method != .weightedVote else { throw .invalid("selection combines with average or vote (the picks are the weights)") }
    guard gold.count == choiceCounts.count else { throw .invalid("\(gold.count) gold answers for \(choiceCounts.count) items") }
    try checkShape(candidates, choiceCounts: choiceCounts)
    let probabilities = candidates.map { $0.probabilities(choiceCounts: choiceCounts) }
    let alone = candidates.map { candidate in zip(candidate.answers, gold).filter { $0 == $1 }.count }

    // Everything the decision needs is a sum over the picks, so each round only adds
    // one candidate's share: probability sums, and for `vote` the vote counts and the
    // voters' summed public scores.
    var probabilitySum = choiceCounts.map { Array(repeating: 0.0, count: $0) }
    var votes = choiceCounts.map { Array(repeating: 0, count: $0) }
    var voterScore = choiceCounts.map { Array(repeating: 0.0, count: $0) }

    func answer(_ item: Int, adding c: Int) -> Int {
        let n = choiceCounts[item]
        let picked = candidates[c].answers[item] - 1 // -1: abstains
        let probability = { (choice: Int) in probabilitySum[item][choice] + probabilities[c][item][choice] }
        if method == .average { return highest(n, probability) + 1 }
        return voteWinner(
            n,
            votes: { votes[item][$0] + ($0 == picked ? 1 : 0) },
            voterScore: { voterScore[item][$0] + ($0 == picked ? candidates[c].publicScore ?? 0 : 0) },
            meanProbability: probability) + 1
    }

    var history: [SelectionRound] = []
    for _ in 0..<rounds {
        var chosen = 0
        var chosenKey = (right: -1, alone: -1)
        for c in candidates.indices {
            let right = choiceCounts.indices.reduce(0) { $0 + (answer($1, adding: c) == gold[$1] ? 1 : 0) }
            if (right, alone[c]) > chosenKey {
                chosenKey = (right, alone[c])
                chosen = c
            }
        }
        for item in choiceCounts.indices {
            for choice in 0..<choiceCounts[item] { probabilitySum[item][choice] += probabilities[chosen][item][choice] }
            let picked = candidates[chosen].answers[item] - 1
            guard picked >= 0 else { continue }
            votes[item][picked] += 1
            voterScore[item][picked] += candidates[chosen].publicScore ?? 0
        }
        history.append(SelectionRound(added: chosen, accuracy: Double(chosenKey.right) / Double(choiceCounts.count)))
    }
    return history
}
