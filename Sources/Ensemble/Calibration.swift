import Foundation

/// A member's calibration, fitted on labelled items: p(c) ∝ exp(l_c / T + b_c), with
/// l the member's logits (log-probabilities for a member with probabilities) and b a
/// per-position correction of its prior (b_1 = 0; all zero when only T is fitted).
public struct Calibration: Sendable, Codable, Equatable {
    public var temperature: Double
    public var positionBias: [Double]

    public init(temperature: Double, positionBias: [Double]) {
        self.temperature = temperature
        self.positionBias = positionBias
    }

    /// The calibrated probabilities of an item's choices.
    public func probabilities(logits: [Double]) -> [Double] {
        let z = logits.indices.map { logits[$0] / temperature + positionBias[$0] }
        let top = z.max()!
        let e = z.map { exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
}

public enum CalibrationKind: String, Sendable, CaseIterable {
    /// One temperature.
    case temperature
    /// A temperature and a correction per answer position.
    case prior
}

/// The ridge on the position corrections: a position that is never the gold answer
/// would otherwise drive its correction to −∞.
public let calibrationRidge = 0.01

/// Fits a calibration by minimising the summed negative log-likelihood of the gold
/// answers (plus `calibrationRidge` · Σ b²): in a = 1/T and b the problem is a convex
/// multinomial logistic regression, solved by Newton's method with backtracking.
/// `logits[i]` holds item i's valid choices only; `gold[i]` is 1-based.
public func fitCalibration(logits: [[Double]], gold: [Int], kind: CalibrationKind) throws(EnsembleError) -> Calibration {
    guard !logits.isEmpty, logits.count == gold.count else {
        throw .invalid("calibration needs labelled items (\(logits.count) items, \(gold.count) answers)")
    }
    let positions = kind == .prior ? (logits.map(\.count).max() ?? 1) - 1 : 0
    let k = 1 + positions
    // Features of choice c of item i: its logit, and an indicator of positions 2, 3, ...
    func z(_ theta: [Double], _ item: Int) -> [Double] {
        logits[item].indices.map { c in theta[0] * logits[item][c] + (c > 0 && positions > 0 ? theta[c] : 0) }
    }
    func loss(_ theta: [Double]) -> Double {
        var total = 0.0
        for item in logits.indices {
            let zi = z(theta, item)
            let top = zi.max()!
            total += top + log(zi.reduce(0) { $0 + exp($1 - top) }) - zi[gold[item] - 1]
        }
        return total + calibrationRidge * theta.dropFirst().reduce(0) { $0 + $1 * $1 }
    }
    var theta = [1.0] + Array(repeating: 0.0, count: positions)
    var current = loss(theta)
    for _ in 0..<100 {
        var gradient = Array(repeating: 0.0, count: k)
        var hessian = Array(repeating: Array(repeating: 0.0, count: k), count: k)
        for item in logits.indices {
            let zi = z(theta, item)
            let top = zi.max()!
            let e = zi.map { exp($0 - top) }
            let sum = e.reduce(0, +)
            let p = e.map { $0 / sum }
            func x(_ c: Int) -> [Double] {
                var features = Array(repeating: 0.0, count: k)
                features[0] = logits[item][c]
                if c > 0 && positions > 0 { features[c] = 1 }
                return features
            }
            var mean = Array(repeating: 0.0, count: k)
            for c in p.indices {
                let xc = x(c)
                for j in 0..<k {
                    mean[j] += p[c] * xc[j]
                    for l in 0..<k { hessian[j][l] += p[c] * xc[j] * xc[l] }
                }
            }
            let xy = x(gold[item] - 1)
            for j in 0..<k {
                gradient[j] += mean[j] - xy[j]
                for l in 0..<k { hessian[j][l] -= mean[j] * mean[l] }
            }
        }
        for j in 1..<k {
            gradient[j] += 2 * calibrationRidge * theta[j]
            hessian[j][j] += 2 * calibrationRidge
        }
        guard let step = solve(hessian, gradient) else { break }
        var scale = 1.0
        var next = theta
        var nextLoss = current
        while scale > 1e-10 {
            next = zip(theta, step).map { $0 - scale * $1 }
            nextLoss = loss(next)
            if next[0] > 1e-6 && nextLoss <= current { break }
            scale /= 2
        }
        guard scale > 1e-10 else { break }
        let moved = zip(theta, next).map { abs($0 - $1) }.max()!
        theta = next
        current = nextLoss
        if moved < 1e-12 { break }
    }
    return Calibration(temperature: 1 / theta[0], positionBias: [0] + Array(theta.dropFirst()) + Array(repeating: 0, count: 4 - positions))
}

/// Solves A x = b by Gaussian elimination with partial pivoting; nil when singular.
func solve(_ a: [[Double]], _ b: [Double]) -> [Double]? {
    var m = a
    var v = b
    let n = v.count
    for column in 0..<n {
        let pivot = (column..<n).max { abs(m[$0][column]) < abs(m[$1][column]) }!
        guard abs(m[pivot][column]) > 1e-300 else { return nil }
        m.swapAt(column, pivot)
        v.swapAt(column, pivot)
        for row in (column + 1)..<n {
            let f = m[row][column] / m[column][column]
            for c in column..<n { m[row][c] -= f * m[column][c] }
            v[row] -= f * v[column]
        }
    }
    var x = Array(repeating: 0.0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        x[row] = (v[row] - ((row + 1)..<n).reduce(0) { $0 + m[row][$1] * x[$1] }) / m[row][row]
    }
    return x
}
