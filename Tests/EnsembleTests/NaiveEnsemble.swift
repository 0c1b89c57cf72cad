import Foundation

@testable import Ensemble

/// A deliberately naive, independent statement of the ensemble semantics of docs/ensembles.md,
/// written straight from the text: loops, dictionaries and explicit candidate lists
/// instead of the real implementation's running maxima.
enum Naive {
    static func probabilities(_ member: Member, item: Int, choices: Int) -> [Double] {
        switch member.values {
        case .logits(let rows):
            let e = (0..<choices).map { Foundation.exp(rows[item][$0]) }
            var total = 0.0
            for x in e { total += x }
            return e.map { $0 / total }
        case .probabilities(let rows):
            var total = 0.0
            for c in 0..<choices { total += rows[item][c] }
            return (0..<choices).map { rows[item][$0] / total }
        case .none:
            var p = [Double](repeating: 0, count: choices)
            p[member.answers[item] - 1] = 1
            return p
        }
    }

    /// The choices (1-based) whose value equals the maximum.
    static func argmaxAll(_ values: [Double]) -> [Int] {
        let top = values.max()!
        return values.indices.filter { abs(values[$0] - top) <= tieTolerance }.map { $0 + 1 }
    }

    static func answer(_ members: [Member], weights: [Double], method: Method, item: Int, choices: Int) -> Int {
        switch method {
        case .average:
            var sums = [Double](repeating: 0, count: choices)
            var totalWeight = 0.0
            for (m, member) in members.enumerated() {
                let p = probabilities(member, item: item, choices: choices)
                for c in 0..<choices { sums[c] += weights[m] * p[c] }
                totalWeight += weights[m]
            }
            return argmaxAll(sums.map { $0 / totalWeight }).min()!
        case .weightedVote:
            var tally: [Int: Double] = [:]
            for (m, member) in members.enumerated() { tally[member.answers[item], default: 0] += weights[m] }
            return argmaxAll((1...choices).map { tally[$0] ?? 0 }).min()!
        case .vote:
            var votes: [Int: Int] = [:]
            for member in members { votes[member.answers[item], default: 0] += 1 }
            let most = votes.values.max()!
            var tied = (1...choices).filter { votes[$0] == most }
            if tied.count > 1 {
                // Summed public score of each tied choice's voters.
                let scoreOf = { (c: Int) in members.filter { $0.answers[item] == c }.map { $0.publicScore ?? 0 }.reduce(0, +) }
                let bestScore = tied.map(scoreOf).max()!
                tied = tied.filter { abs(scoreOf($0) - bestScore) <= tieTolerance }
            }
            if tied.count > 1 {
                // Mean probability over all members.
                let meanOf = { (c: Int) in
                    members.map { probabilities($0, item: item, choices: choices)[c - 1] }.reduce(0, +) / Double(members.count)
                }
                let bestMean = tied.map(meanOf).max()!
                tied = tied.filter { abs(meanOf($0) - bestMean) <= tieTolerance }
            }
            return tied.min()!
        }
    }

    static func weights(_ scheme: WeightScheme, _ members: [Member]) -> [Double] {
        let s = members.map { $0.publicScore! }
        switch scheme {
        case .score: return s
        case .excess: return s.map { $0 - s.min()! + 0.01 }
        case .uniform: return s.map { _ in 1 }
        case .softmax(let t):
            let e = s.map { Foundation.exp($0 / t) }
            return e.map { $0 / e.reduce(0, +) }
        case .rank:
            // Position in a stable sort by score, best first.
            let order = members.indices.sorted { s[$0] > s[$1] || (s[$0] == s[$1] && $0 < $1) }
            var w = [Double](repeating: 0, count: members.count)
            for (place, index) in order.enumerated() { w[index] = Double(members.count - place) }
            return w
        case .explicit(let given): return members.map { given[$0.name]! }
        }
    }

    /// Caruana's selection by brute force: each round tries every candidate added to the
    /// current multiset and scores the whole ensemble from scratch.
    static func select(_ candidates: [Member], choiceCounts: [Int], gold: [Int], rounds: Int, method: Method) -> [Int] {
        var picks: [Int] = []
        let alone = candidates.map { c in zip(c.answers, gold).filter { $0 == $1 }.count }
        for _ in 0..<rounds {
            var best = (right: -1, alone: -1, index: 0)
            for index in candidates.indices {
                let members = (picks + [index]).map { candidates[$0] }
                let right = choiceCounts.indices.filter { item in
                    answer(members, weights: members.map { _ in 1 }, method: method, item: item, choices: choiceCounts[item]) == gold[item]
                }.count
                if right > best.right || (right == best.right && alone[index] > best.alone) { best = (right, alone[index], index) }
            }
            picks.append(best.index)
        }
        return picks
    }
}
