import Ensemble
import Exam

/// Training against position bias (issue 16): an epoch's items with their choices
/// reordered, or resampled, so that the answer position the model sees is uniform
/// rather than the data's (47% of the real train answers are 1).

/// `augment: permute_choices`.
public enum Augmentation: String, Codable, Sendable, CaseIterable {
    /// Each epoch, each item's choices in a seeded random order, the answer relabelled.
    case permuteChoices = "permute_choices"
}

/// `balance: positions`.
public enum Balance: String, Codable, Sendable, CaseIterable {
    /// Each epoch, items drawn (with replacement) so that, per number of choices, every
    /// answer position is as likely.
    case positions
}

/// The item with its choices in a random order drawn from (seed, epoch, index), and its
/// answer relabelled to follow its content: choices[answer - 1] is the same text.
public func permutedChoices(_ item: ExamItem, seed: UInt64, epoch: Int, index: Int) -> ExamItem {
    var random = SplitMix64(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index) &* 0xBF58_476D_1CE4_E5B9) ^ 0xA5A5)
    let order = Array(item.choices.indices).shuffled(using: &random)
    var permuted = item
    permuted.choices = order.map { item.choices[$0] }
    permuted.answer = item.answer.map { answer in order.firstIndex(of: answer - 1)! + 1 }
    return permuted
}

/// `count` draws (with replacement) of the items, each weighted by one over the number
/// of items that share its choice count and answer position, from a seeded generator.
public func balancedDraw(positions: [(choices: Int, answer: Int)], count: Int, seed: UInt64) -> [Int] {
    var groupSize: [Int: Int] = [:]
    for p in positions { groupSize[p.choices * 8 + p.answer, default: 0] += 1 }
    let weights = positions.map { 1 / Double(groupSize[$0.choices * 8 + $0.answer]!) }
    var cumulative: [Double] = []
    var total = 0.0
    for w in weights {
        total += w
        cumulative.append(total)
    }
    var random = SplitMix64(seed: seed)
    return (0..<count).map { _ in
        let x = Double.random(in: 0..<total, using: &random)
        var low = 0, high = cumulative.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] > x { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
