import CBLAS
import Foundation
import Tensor

/// Causal attention for training: the forward keeps each head's probabilities
/// (heads × T × T, zero outside what a query sees) for the backward. Queries go in
/// blocks of 64, each multiplied only with the keys it can see (the causal triangle and
/// the window band, as in the engine), in both passes. Heads run in parallel.
struct Attention {
    let tokens: Int, heads: Int, kvHeads: Int, headDim: Int
    let scale: Float
    let softcap: Float?
    let window: Int?
    /// Queries before this one are skipped (their output and gradients stay zero): the
    /// last block needs only the rows whose next token is scored.
    var firstQuery = 0
    static let block = 64

    /// Keys query t sees: from `first(t)` to t.
    func first(_ t: Int) -> Int { window.map { max(0, t - $0 + 1) } ?? 0 }

    /// The query blocks: rows first..<last see keys keyStart..<last.
    var blocks: [(first: Int, last: Int, keyStart: Int)] {
        stride(from: firstQuery, to: tokens, by: Self.block).map { ($0, min(tokens, $0 + Self.block), first($0)) }
    }

    /// Scaled scores (before the soft cap) of head h for one block, into s (rows ×
    /// keys, rows `t` apart: the block's rows of the T × T square, from column keyStart).
    func scores(
        _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, head h: Int, _ b: (first: Int, last: Int, keyStart: Int),
        into s: UnsafeMutablePointer<Float>
    ) {
        let d = headDim, kv = h / (heads / kvHeads)
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b.last - b.first), Int32(b.last - b.keyStart), Int32(d), scale,
            q + b.first * heads * d + h * d, Int32(heads * d), k + b.keyStart * kvHeads * d + kv * d, Int32(kvHeads * d), 0, s,
            Int32(tokens))
    }

    /// out (T × H·D) and the probabilities.
    func forward(q: [Float], k: [Float], v: [Float], into out: inout [Float]) -> [Float] {
        let t = tokens, d = headDim, blocks = self.blocks
        var probabilities = [Float](repeating: 0, count: heads * t * t)
        q.withUnsafeBufferPointer { q in
            k.withUnsafeBufferPointer { k in
                v.withUnsafeBufferPointer { v in
                    probabilities.withUnsafeMutableBufferPointer { p in
                        out.withUnsafeMutableBufferPointer { out in
                            nonisolated(unsafe) let (q, k, v, p, out) = (
                                q.baseAddress!, k.baseAddress!, v.baseAddress!, p.baseAddress!, out.baseAddress!
                            )
                            Parallel.forEach(heads) { h in
                                let kv = h / (heads / kvHeads)
                                for b in blocks {
                                    let corner = p + h * t * t + b.first * t + b.keyStart
                                    scores(q, k, head: h, b, into: corner)
                                    for r in b.first..<b.last {
                                        let row = p + h * t * t + r * t, from = first(r)
                                        if let softcap { for j in from...r { row[j] = softcap * tanh(row[j] / softcap) } }
                                        Kernels.softmax(row + from, count: r - from + 1)
                                        for j in b.keyStart..<from { row[j] = 0 }
                                        for j in (r + 1)..<b.last { row[j] = 0 }
                                    }
                                    cblas_sgemm(
                                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(b.last - b.first), Int32(d),
                                        Int32(b.last - b.keyStart), 1, corner, Int32(t),
                                        v + b.keyStart * kvHeads * d + kv * d, Int32(kvHeads * d), 0, out + b.first * heads * d + h * d,
                                        Int32(heads * d))
                                }
                            }
                        }
                    }
                }
            }
        }
        return probabilities
    }

    /// Gradients of q, k and v from the gradient of the output, block by block:
    /// dS = P ⊙ (dP − Σ P·dP) with dP = dOut·Vᵀ; dq = scale·dS·K, dk = scale·dSᵀ·Q,
    /// dv = Pᵀ·dOut. The heads of a KV group write their dk and dv apart, summed after.
    func backward(
        q: [Float], k: [Float], v: [Float], probabilities: [Float], gradient dOut: [Float], dq: inout [Float], dk: inout [Float],
        dv: inout [Float]
    ) {
        let t = tokens, d = headDim, group = heads / kvHeads, blocks = self.blocks
        var perHead = [Float](repeating: 0, count: 2 * heads * t * d)
        q.withUnsafeBufferPointer { q in
            k.withUnsafeBufferPointer { k in
                v.withUnsafeBufferPointer { v in
                    probabilities.withUnsafeBufferPointer { p in
                        dOut.withUnsafeBufferPointer { dOut in
                            dq.withUnsafeMutableBufferPointer { dq in
                                perHead.withUnsafeMutableBufferPointer { perHead in
                                    nonisolated(unsafe) let (q, k, v, p, dOut, dq, perHead) = (
                                        q.baseAddress!, k.baseAddress!, v.baseAddress!, p.baseAddress!, dOut.baseAddress!, dq.baseAddress!,
                                        perHead.baseAddress!
                                    )
                                    Parallel.forEach(heads) { h in
                                        let kv = h / group, dkHead = perHead + h * t * d, dvHead = perHead + (heads + h) * t * d
                                        let ds = UnsafeMutablePointer<Float>.allocate(capacity: Self.block * t)
                                        let raw = softcap.map { _ in UnsafeMutablePointer<Float>.allocate(capacity: Self.block * t) }
                                        defer {
                                            ds.deallocate()
                                            raw?.deallocate()
                                        }
                                        for b in blocks {
                                            let rows = Int32(b.last - b.first), keys = Int32(b.last - b.keyStart)
                                            let pBlock = p + h * t * t + b.first * t + b.keyStart
                                            let qBlock = q + b.first * heads * d + h * d, dOutBlock = dOut + b.first * heads * d + h * d
                                            // dP, then dS in its place (rows t apart, from column keyStart).
                                            cblas_sgemm(
                                                CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, Int32(d), 1, dOutBlock,
                                                Int32(heads * d),
                                                v + b.keyStart * kvHeads * d + kv * d, Int32(kvHeads * d), 0, ds, Int32(t))
                                            if let raw { scores(q, k, head: h, b, into: raw) }
                                            for r in b.first..<b.last {
                                                let prow = p + h * t * t + r * t, drow = ds + (r - b.first) * t - b.keyStart,
                                                    from = first(r)
                                                var dot: Float = 0
                                                for j in from...r { dot += prow[j] * drow[j] }
                                                for j in b.keyStart..<b.last {
                                                    drow[j] = j >= from && j <= r ? prow[j] * (drow[j] - dot) : 0
                                                }
                                                if let softcap, let raw {
                                                    let rawRow = raw + (r - b.first) * t - b.keyStart
                                                    for j in from...r {
                                                        let c = tanh(rawRow[j] / softcap)
                                                        drow[j] *= 1 - c * c
                                                    }
                                                }
                                            }
                                            cblas_sgemm(
                                                CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, Int32(d), keys, scale, ds, Int32(t),
                                                k + b.keyStart * kvHeads * d + kv * d, Int32(kvHeads * d), 0,
                                                dq + b.first * heads * d + h * d, Int32(heads * d))
                                            cblas_sgemm(
                                                CblasRowMajor, CblasTrans, CblasNoTrans, keys, Int32(d), rows, scale, ds, Int32(t),
                                                qBlock, Int32(heads * d), 1, dkHead + b.keyStart * d, Int32(d))
                                            cblas_sgemm(
                                                CblasRowMajor, CblasTrans, CblasNoTrans, keys, Int32(d), rows, 1, pBlock, Int32(t),
                                                dOutBlock, Int32(heads * d), 1, dvHead + b.keyStart * d, Int32(d))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for i in 0..<dk.count {
            dk[i] = 0
            dv[i] = 0
        }
        for h in 0..<heads {
            let kv = h / group
            for r in 0..<t {
                for i in 0..<d {
                    dk[r * kvHeads * d + kv * d + i] += perHead[(h * t + r) * d + i]
                    dv[r * kvHeads * d + kv * d + i] += perHead[((heads + h) * t + r) * d + i]
                }
            }
        }
    }
}
