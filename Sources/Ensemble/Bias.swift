import Foundation

// Position bias: how a set's answers spread over the choice positions, against a
// reference (the gold's answers over the same items, or a labelled file's prior).

/// Pearson's chi-square goodness of fit of observed counts to expected shares (as
/// `scipy.stats.chisquare(f_obs, f_exp)` with f_exp = total · share). Positions whose
/// expected share is 0 are left out; df = positions kept − 1. nil when fewer than two
/// positions are kept or nothing was observed.
public func chiSquare(observed: [Int], expectedShares: [Double]) -> (statistic: Double, degreesOfFreedom: Int, pValue: Double)? {
    let total = Double(observed.reduce(0, +))
    let sum = expectedShares.reduce(0, +)
    let kept = observed.indices.filter { expectedShares[$0] > 0 }
    guard total > 0, sum > 0, kept.count >= 2 else { return nil }
    var statistic = 0.0
    for c in kept {
        let expected = total * expectedShares[c] / sum
        statistic += (Double(observed[c]) - expected) * (Double(observed[c]) - expected) / expected
    }
    let df = kept.count - 1
    return (statistic, df, regularizedUpperGamma(Double(df) / 2, statistic / 2))
}

/// Q(a, x) = Γ(a, x) / Γ(a): the chi-square survival function is Q(df/2, x/2). A series
/// below x < a + 1, Lentz's continued fraction above (Numerical Recipes, §6.2).
public func regularizedUpperGamma(_ a: Double, _ x: Double) -> Double {
    guard x > 0 else { return 1 }
    guard x.isFinite else { return 0 }
    let logPrefix = -x + a * log(x) - lgamma(a)
    if x < a + 1 {
        var term = 1 / a, sum = term, n = a
        for _ in 0..<1000 {
            n += 1
            term *= x / n
            sum += term
            if abs(term) < abs(sum) * 1e-16 { break }
        }
        return max(0, 1 - sum * exp(logPrefix))
    }
    let tiny = 1e-300
    var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
    for i in 1..<1000 {
        let an = -Double(i) * (Double(i) - a)
        b += 2
        d = an * d + b
        if abs(d) < tiny { d = tiny }
        c = b + an / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        let delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16 { break }
    }
    return min(1, exp(logPrefix) * h)
}
