import Foundation

/// Share of items on which two answer lists agree.
public func agreement(_ a: [Int], _ b: [Int]) -> Double {
    guard !a.isEmpty else { return .nan }
    return Double(zip(a, b).filter { $0 == $1 }.count) / Double(a.count)
}

/// Cohen's kappa of two raters over answers 1...5: (p_o − p_e) / (1 − p_e); NaN when
/// p_e = 1 (both always give the same single answer).
public func cohensKappa(_ a: [Int], _ b: [Int]) -> Double {
    let n = Double(a.count)
    guard n > 0 else { return .nan }
    var countA = [Int: Int](), countB = [Int: Int]()
    for x in a { countA[x, default: 0] += 1 }
    for x in b { countB[x, default: 0] += 1 }
    let expected = countA.keys.reduce(0.0) { $0 + Double(countA[$1]!) / n * Double(countB[$1] ?? 0) / n }
    guard expected < 1 else { return .nan }
    return (agreement(a, b) - expected) / (1 - expected)
}

/// Exact two-sided McNemar test: the binomial probability, under p = 1/2, of a split of
/// the discordant items at least as uneven as `onlyA` vs `onlyB`.
public func mcNemarExactPValue(onlyA: Int, onlyB: Int) -> Double {
    let n = onlyA + onlyB
    guard n > 0 else { return 1 }
    let k = min(onlyA, onlyB)
    // Σ_{i ≤ k} C(n, i) / 2^n, in logs to stay finite for large n.
    var tail = 0.0
    for i in 0...k {
        tail += exp(lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1)) - Double(n) * log(2))
    }
    return min(1, 2 * tail)
}

/// A deterministic 64-bit generator (SplitMix64), so resampling is repeatable.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Percentile bootstrap interval of accuracy(A) − accuracy(B) over paired items.
public func bootstrapDifferenceInterval(
    correctA: [Bool], correctB: [Bool], resamples: Int = 10_000, confidence: Double = 0.95, seed: UInt64 = 20_261_124
) -> (low: Double, high: Double) {
    let n = correctA.count
    guard n > 0 else { return (.nan, .nan) }
    // Per item: +1 (only A right), −1 (only B right), 0 (same).
    let delta = zip(correctA, correctB).map { ($0 ? 1 : 0) - ($1 ? 1 : 0) }
    var generator = SplitMix64(seed: seed)
    var differences: [Double] = []
    differences.reserveCapacity(resamples)
    for _ in 0..<resamples {
        var sum = 0
        for _ in 0..<n { sum += delta[Int.random(in: 0..<n, using: &generator)] }
        differences.append(Double(sum) / Double(n))
    }
    differences.sort()
    let tail = (1 - confidence) / 2
    func quantile(_ q: Double) -> Double { differences[min(resamples - 1, max(0, Int((q * Double(resamples - 1)).rounded())))] }
    return (quantile(tail), quantile(1 - tail))
}

/// The items of the public leaderboard split when the competition does not say: half
/// the dataset's, rounded down.
public func publicSplitItems(ofDataset items: Int) -> Int { items / 2 }

/// The binomial standard error of an accuracy p measured on n items.
public func standardError(accuracy p: Double, items n: Int) -> Double {
    n > 0 ? (p * (1 - p) / Double(n)).squareRoot() : .nan
}
