import Foundation
import XCTest

@testable import Training

/// Training's blocked attention (several query blocks, a window that starts past 0,
/// grouped KV heads, a soft cap) against plain loops in Double: the forward output and
/// the gradients of q, k and v for a random output gradient; all queries, and only those
/// from row 97 on (the last block's: the rows before get keys but no output).
final class AttentionTests: XCTestCase {
    func testBlockedAttentionMatchesPlainLoops() {
        for firstQuery in [0, 97] { check(firstQuery: firstQuery) }
    }

    func check(firstQuery: Int) {
        let t = 150, heads = 4, kvHeads = 2, d = 8, window = 40, softcap: Float = 5
        func values(_ count: Int, _ seed: Double) -> [Float] { (0..<count).map { Float(sin(Double($0) * 0.37 + seed)) } }
        let q = values(t * heads * d, 1), k = values(t * kvHeads * d, 2), v = values(t * kvHeads * d, 3), dOut = values(t * heads * d, 4)
        let attention = Attention(
            tokens: t, heads: heads, kvHeads: kvHeads, headDim: d, scale: 1 / Float(d).squareRoot(), softcap: softcap, window: window,
            firstQuery: firstQuery)
        var out = [Float](repeating: 0, count: t * heads * d)
        let probabilities = attention.forward(q: q, k: k, v: v, into: &out)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        attention.backward(q: q, k: k, v: v, probabilities: probabilities, gradient: dOut, dq: &dq, dk: &dk, dv: &dv)

        var expectedOut = [Double](repeating: 0, count: out.count), expectedDq = expectedOut
        var expectedDk = [Double](repeating: 0, count: k.count), expectedDv = expectedDk
        let scale = 1 / Double(d).squareRoot()
        for h in 0..<heads {
            let kv = h / (heads / kvHeads)
            for r in firstQuery..<t {
                let keys = Array(max(0, r - window + 1)...r)
                let raw = keys.map { j in
                    scale * (0..<d).reduce(0.0) { $0 + Double(q[(r * heads + h) * d + $1]) * Double(k[(j * kvHeads + kv) * d + $1]) }
                }
                let capped = raw.map { Double(softcap) * tanh($0 / Double(softcap)) }
                let top = capped.max()!, e = capped.map { exp($0 - top) }, sum = e.reduce(0, +), p = e.map { $0 / sum }
                for (n, j) in keys.enumerated() {
                    for i in 0..<d { expectedOut[(r * heads + h) * d + i] += p[n] * Double(v[(j * kvHeads + kv) * d + i]) }
                }
                let dp = keys.map { j in
                    (0..<d).reduce(0.0) { $0 + Double(dOut[(r * heads + h) * d + $1]) * Double(v[(j * kvHeads + kv) * d + $1]) }
                }
                let dot = zip(p, dp).reduce(0.0) { $0 + $1.0 * $1.1 }
                for (n, j) in keys.enumerated() {
                    let c = tanh(raw[n] / Double(softcap))
                    let ds = p[n] * (dp[n] - dot) * (1 - c * c) * scale
                    for i in 0..<d {
                        expectedDq[(r * heads + h) * d + i] += ds * Double(k[(j * kvHeads + kv) * d + i])
                        expectedDk[(j * kvHeads + kv) * d + i] += ds * Double(q[(r * heads + h) * d + i])
                        expectedDv[(j * kvHeads + kv) * d + i] += p[n] * Double(dOut[(r * heads + h) * d + i])
                    }
                }
            }
        }
        for (name, ours, expected) in [("out", out, expectedOut), ("dq", dq, expectedDq), ("dk", dk, expectedDk), ("dv", dv, expectedDv)] {
            let worst = zip(ours, expected).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThan(worst, 1e-4, "\(name) from query \(firstQuery): largest difference \(worst)")
        }
    }
}
