import Foundation
import XCTest

@testable import Tensor

/// The kernels against plain scalar versions written here: the SIMD exponential, the
/// softmax, the matrix product split into column bands, and attention over a subset
/// of queries.
final class KernelTests: XCTestCase {
    func testExpMatchesLibm() {
        var worst: Float = 0
        for i in stride(from: -80.0, through: 80.0, by: 0.037) {
            let x = SIMD8<Float>((0..<8).map { Float(i) + Float($0) * 0.0041 })
            let ours = Kernels.exp8(x)
            for lane in 0..<8 { worst = max(worst, abs(ours[lane] - exp(x[lane])) / exp(x[lane])) }
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(Kernels.exp8(SIMD8(repeating: -200))[0], exp(-87.3), accuracy: 1e-40, "saturates below")
    }

    func testSoftmax() {
        for count in [1, 7, 8, 9, 33] {
            var x = (0..<count).map { Float($0 % 5) * 1.7 - 3 }
            let top = x.max()!, sum = x.map { exp($0 - top) }.reduce(0, +)
            let expected = x.map { exp($0 - top) / sum }
            Kernels.softmax(&x, count: count)
            for (a, b) in zip(x, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        }
    }

    func random(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float(sin(Double($0 * 7 + seed) * 0.37)) }
    }

    func testMatmulBandsOnEveryThreadCount() {
        let rows = 37, inner = 129, outer = 1000
        let x = random(rows * inner, seed: 1), w = random(outer * inner, seed: 2)
        var expected = [Float](repeating: 0, count: rows * outer)
        for r in 0..<rows {
            for o in 0..<outer { expected[r * outer + o] = (0..<inner).reduce(0) { $0 + x[r * inner + $1] * w[o * inner + $1] } }
        }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for threads in [1, 2, 3, 7] {
            Parallel.threads = threads
            var y = [Float](repeating: .nan, count: rows * outer)
            Kernels.matmulTransposed(x, rows: rows, inner: inner, w, outer: outer, into: &y)
            XCTAssertLessThan(zip(y, expected).map { abs($0 - $1) }.max()!, 1e-3, "\(threads) threads")
        }
    }

    func testGatedActivationOnStackedRows() {
        let rows = 5, width = 21
        for gelu in [true, false] {
            var x = random(rows * 2 * width, seed: 9).map { $0 * 4 }
            let before = x
            Kernels.gatedActivation(&x, rows: rows, width: width, gelu: gelu)
            for r in 0..<rows {
                for i in 0..<width {
                    let g = before[r * 2 * width + i], u = before[r * 2 * width + width + i]
                    let act = gelu ? 0.5 * g * (1 + tanh(0.797_884_56 * (g + 0.044_715 * g * g * g))) : g / (1 + exp(-g))
                    XCTAssertEqual(x[r * 2 * width + i], act * u, accuracy: 1e-5, "gelu \(gelu), row \(r), \(i)")
                    XCTAssertEqual(x[r * 2 * width + width + i], u, "up is left as it was")
                }
            }
        }
    }

    func testMatmulOverEveryOtherColumnBlock() {
        // x is the first half of each row of a rows × 2·inner buffer.
        let rows = 3, inner = 40, outer = 24
        let wide = random(rows * 2 * inner, seed: 6), w = random(outer * inner, seed: 7)
        var y = [Float](repeating: .nan, count: rows * outer)
        Kernels.matmulTransposed(wide, rows: rows, inner: inner, stride: 2 * inner, w, outer: outer, into: &y)
        for r in 0..<rows {
            for o in 0..<outer {
                XCTAssertEqual(
                    y[r * outer + o], (0..<inner).reduce(0) { $0 + wide[r * 2 * inner + $1] * w[o * inner + $1] }, accuracy: 1e-4)
            }
        }
    }

    /// Scalar causal attention for the queries from `first`, with an optional window.
    func naiveAttention(q: [Float], k: [Float], v: [Float], tokens: Int, first: Int, heads: Int, kvHeads: Int, dim: Int, window: Int?)
        -> [Float]
    {
        var out = [Float](repeating: 0, count: (tokens - first) * heads * dim)
        for t in first..<tokens {
            for h in 0..<heads {
                let kv = h / (heads / kvHeads), from = window.map { max(0, t - $0 + 1) } ?? 0
                let scores = (from...t).map { j in
                    (0..<dim).reduce(Float(0)) { $0 + q[((t - first) * heads + h) * dim + $1] * k[(j * kvHeads + kv) * dim + $1] }
                        / Float(dim).squareRoot()
                }
                let top = scores.max()!, weights = scores.map { exp($0 - top) }, sum = weights.reduce(0, +)
                for (n, j) in (from...t).enumerated() {
                    for e in 0..<dim { out[((t - first) * heads + h) * dim + e] += weights[n] / sum * v[(j * kvHeads + kv) * dim + e] }
                }
            }
        }
        return out
    }

    func testAttentionOverLaterQueriesAndWindows() {
        let tokens = 150, heads = 4, kvHeads = 2, dim = 16
        let k = random(tokens * kvHeads * dim, seed: 3), v = random(tokens * kvHeads * dim, seed: 4)
        for (first, window) in [(0, nil), (0, 20), (90, nil), (90, 20), (149, 7)] as [(Int, Int?)] {
            let q = random((tokens - first) * heads * dim, seed: 5 + first)
            var out = [Float](repeating: .nan, count: (tokens - first) * heads * dim)
            Kernels.attention(
                q: q, k: k, v: v, tokens: tokens, firstQuery: first, heads: heads, kvHeads: kvHeads, headDim: dim,
                scale: 1 / Float(dim).squareRoot(), window: window, into: &out)
            let expected = naiveAttention(
                q: q, k: k, v: v, tokens: tokens, first: first, heads: heads, kvHeads: kvHeads, dim: dim, window: window)
            XCTAssertLessThan(zip(out, expected).map { abs($0 - $1) }.max()!, 1e-5, "first \(first), window \(String(describing: window))")
        }
    }
}
