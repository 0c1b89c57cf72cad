import Ensemble
import Foundation

/// Debiasing multiple-choice scores at inference (Zheng et al., "Large Language Models
/// Are Not Robust Multiple Choice Selectors", ICLR 2024): a model's probability of a
/// choice mixes what it knows of the content with a prior over the positions.
public enum DebiasMethod: Sendable, Equatable, CustomStringConvertible {
    /// Every cyclic permutation of an item's choices is scored; each choice's content
    /// gets the mean of its probabilities over the permutations (n passes per item).
    case permute
    /// PriDe: the position prior is estimated from the permuted passes of a seeded
    /// sample (this fraction of the items of each choice count) and divided out of the
    /// other items' single pass.
    case pride(fraction: Double)

    public static let defaultFraction = 0.05
    /// The sample's seed: the same items are sampled on every run (and on a resume).
    public static let sampleSeed: UInt64 = 20_261_130

    /// `permute`, `pride` or `pride:FRACTION` (0 < FRACTION ≤ 1).
    public init?(parsing text: String) {
        if text == "permute" {
            self = .permute
            return
        }
        if text == "pride" {
            self = .pride(fraction: Self.defaultFraction)
            return
        }
        guard text.hasPrefix("pride:"), let fraction = Double(text.dropFirst("pride:".count)), fraction > 0, fraction <= 1 else {
            return nil
        }
        self = .pride(fraction: fraction)
    }

    public var description: String {
        switch self {
        case .permute: "permute"
        case .pride(let fraction): "pride:\(fraction)"
        }
    }

    /// The items scored with every permutation: all for `permute`; for `pride`, per
    /// number of choices, ⌈fraction · count⌉ of them (at least one), drawn with a fixed seed.
    public func sample(choiceCounts: [Int]) -> Set<Int> {
        guard case .pride(let fraction) = self else { return Set(choiceCounts.indices) }
        var generator = SplitMix64(seed: Self.sampleSeed)
        var chosen: Set<Int> = []
        for n in Set(choiceCounts).sorted() {
            var items = choiceCounts.indices.filter { choiceCounts[$0] == n }
            items.shuffle(using: &generator)
            chosen.formUnion(items.prefix(max(1, Int((fraction * Double(items.count)).rounded(.up)))))
        }
        return chosen
    }
}

/// The choices shifted by k: position p shows the original choice (p + k) mod n.
public func rotated<T>(_ choices: [T], by k: Int) -> [T] {
    Array(choices[k...] + choices[..<k])
}

/// Softmax of logits.
public func softmax(_ logits: [Double]) -> [Double] {
    let top = logits.max()!
    let e = logits.map { exp($0 - top) }
    let sum = e.reduce(0, +)
    return e.map { $0 / sum }
}

/// Each original choice's mean probability over the n rotated passes, where pass k's
/// position p held choice (p + k) mod n.
public func contentProbabilities(passes: [[Double]]) -> [Double] {
    let n = passes.count
    var mean = Array(repeating: 0.0, count: n)
    for (k, pass) in passes.enumerated() {
        for p in 0..<n { mean[(p + k) % n] += pass[p] / Double(n) }
    }
    return mean
}

/// p ∝ p_observed · target / prior (each renormalised): the position prior divided out,
/// and a target prior (a labelled file's answer shares) put in its place; uniform
/// target and prior leave p unchanged.
public func corrected(_ p: [Double], prior: [Double]?, target: [Double]?) -> [Double] {
    let raw = p.indices.map { c in p[c] * (target?[c] ?? 1) / max(prior?[c] ?? 1, 1e-300) }
    let sum = raw.reduce(0, +)
    return sum > 0 ? raw.map { $0 / sum } : p
}
