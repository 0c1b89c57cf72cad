import CBLAS
import Foundation
import Tensor

/// Causal attention for training: the forward keeps each head's probabilities
/// (heads × T × T, zero outside what a query sees) for the backward. The whole square
/// is computed, not only the causal triangle as the engine does: simpler, and the
/// linear layers cost far more at the lengths we train on. Heads run in parallel.
struct Attention {
    let tokens: Int, heads: Int, kvHeads: Int, headDim: Int
    let scale: Float
    let softcap: Float?
    let window: Int?

    /// Keys query t sees: from `first(t)` to t.
    func first(_ t: Int) -> Int { window.map { max(0, t - $0 + 1) } ?? 0 }

    /// The scaled scores of head h (T × T), before the soft cap.
    func scores(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, head h: Int, into s: UnsafeMutablePointer<Float>) {
        let d = headDim, kv = h / (heads / kvHeads), t = Int32(tokens)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, Int32(d), scale, q + h * d, Int32(heads * d), k + kv * d, Int32(kvHeads * d), 0, s, t)
    }

    /// out (T × H·D) and the probabilities.
    func forward(q: [Float], k: [Float], v: [Float], into out: inout [Float]) -> [Float] {
        let t = tokens, d = headDim
        var probabilities = [Float](repeating: 0, count: heads * t * t)
        q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
            probabilities.withUnsafeMutableBufferPointer { p in out.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let (q, k, v, p, out) = (q.baseAddress!, k.baseAddress!, v.baseAddress!, p.baseAddress!, out.baseAddress!)
                Parallel.forEach(heads) { h in
                    let ph = p + h * t * t, kv = h / (heads / kvHeads)
                    scores(q, k, head: h, into: ph)
                    for r in 0..<t {
                        let row = ph + r * t, from = first(r)
                        if let softcap { for j in from...r { row[j] = softcap * tanh(row[j] / softcap) } }
                        Kernels.softmax(row + from, count: r - from + 1)
                        for j in 0..<from { row[j] = 0 }
                        for j in (r + 1)..<t { row[j] = 0 }
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(d), Int32(t), 1, ph, Int32(t),
                                v + kv * d, Int32(kvHeads * d), 0, out + h * d, Int32(heads * d))
                }
            } }
        } } }
        return probabilities
    }

    /// Gradients of q, k and v from the gradient of the output. dS = P ⊙ (dP − Σ P·dP)
    /// with dP = dOut·Vᵀ; dq = scale·dS·K, dk = scale·dSᵀ·Q, dv = Pᵀ·dOut. The heads of a
    /// KV group write their dk and dv apart, summed after.
    func backward(q: [Float], k: [Float], v: [Float], probabilities: [Float], gradient dOut: [Float], dq: inout [Float], dk: inout [Float], dv: inout [Float]) {
        let t = tokens, d = headDim, group = heads / kvHeads
        var perHead = [Float](repeating: 0, count: 2 * heads * t * d)
        q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
            probabilities.withUnsafeBufferPointer { p in dOut.withUnsafeBufferPointer { dOut in
                dq.withUnsafeMutableBufferPointer { dq in perHead.withUnsafeMutableBufferPointer { perHead in
                    nonisolated(unsafe) let (q, k, v, p, dOut, dq, perHead) = (q.baseAddress!, k.baseAddress!, v.baseAddress!, p.baseAddress!, dOut.baseAddress!, dq.baseAddress!, perHead.baseAddress!)
                    Parallel.forEach(heads) { h in
                        let ph = p + h * t * t, kv = h / group
                        let ds = UnsafeMutablePointer<Float>.allocate(capacity: t * t)
                        defer { ds.deallocate() }
                        // dP, then dS in its place.
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(t), Int32(d), 1, dOut + h * d, Int32(heads * d),
                                    v + kv * d, Int32(kvHeads * d), 0, ds, Int32(t))
                        let raw = softcap.map { _ in UnsafeMutablePointer<Float>.allocate(capacity: t * t) }
                        defer { raw?.deallocate() }
                        if let raw { scores(q, k, head: h, into: raw) }
                        for r in 0..<t {
                            let prow = ph + r * t, drow = ds + r * t, from = first(r)
                            var dot: Float = 0
                            for j in from...r { dot += prow[j] * drow[j] }
                            for j in 0..<t { drow[j] = j >= from && j <= r ? prow[j] * (drow[j] - dot) : 0 }
                            if let softcap, let raw {
                                for j in from...r {
                                    let c = tanh(raw[r * t + j] / softcap)
                                    drow[j] *= 1 - c * c
                                }
                            }
                        }
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(d), Int32(t), scale, ds, Int32(t),
                                    k + kv * d, Int32(kvHeads * d), 0, dq + h * d, Int32(heads * d))
                        let dkHead = perHead + h * t * d, dvHead = perHead + (heads + h) * t * d
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(t), Int32(d), Int32(t), scale, ds, Int32(t),
                                    q + h * d, Int32(heads * d), 0, dkHead, Int32(d))
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(t), Int32(d), Int32(t), 1, ph, Int32(t),
                                    dOut + h * d, Int32(heads * d), 0, dvHead, Int32(d))
                    }
                } }
            } }
        } } }
        for i in 0..<dk.count { dk[i] = 0; dv[i] = 0 }
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
