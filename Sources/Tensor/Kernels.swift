import CBLAS
import Foundation

// The numeric core of the engine: row-major Float32 buffers, matrix products through
// OpenBLAS, and the element-wise kernels of a transformer layer.

public enum Kernels {
    /// y = x · Wᵀ: x is rows × inner, W is outer × inner (a GGUF weight: one row per
    /// output), y is rows × outer.
    public static func matmulTransposed(_ x: UnsafePointer<Float>, rows: Int, inner: Int, _ w: UnsafePointer<Float>, outer: Int, into y: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outer), Int32(inner), 1, x, Int32(inner), w, Int32(inner), 0, y, Int32(outer))
    }

    /// Root-mean-square normalisation of each row of `x` (rows × dim), times `weight`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, dim: Int, weight: UnsafePointer<Float>, epsilon: Float, into y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = x + r * dim, out = y + r * dim
            var sum: Float = 0
            for i in 0..<dim { sum += row[i] * row[i] }
            let scale = 1 / (sum / Float(dim) + epsilon).squareRoot()
            for i in 0..<dim { out[i] = row[i] * scale * weight[i] }
        }
    }

    /// Rotary position embedding, in place, on `heads` vectors of `headDim` per row;
    /// the first `ropeDim` dimensions rotate. `neox` pairs dimension i with i + d/2
    /// (Gemma, Qwen2); otherwise adjacent pairs (llama.cpp's layout for llama weights).
    public static func rope(_ x: UnsafeMutablePointer<Float>, positions: [Int], heads: Int, headDim: Int, ropeDim: Int, base: Float, neox: Bool) {
        let half = ropeDim / 2
        var inverseFrequency = [Float](repeating: 0, count: half)
        for i in 0..<half { inverseFrequency[i] = pow(base, -2 * Float(i) / Float(ropeDim)) }
        for (t, position) in positions.enumerated() {
            for h in 0..<heads {
                let v = x + (t * heads + h) * headDim
                for i in 0..<half {
                    let angle = Float(position) * inverseFrequency[i]
                    let c = cos(angle), s = sin(angle)
                    let a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1
                    let x0 = v[a], x1 = v[b]
                    v[a] = x0 * c - x1 * s
                    v[b] = x0 * s + x1 * c
                }
            }
        }
    }

    /// GELU with the tanh approximation (Gemma's gelu_pytorch_tanh).
    @inline(__always)
    public static func gelu(_ x: Float) -> Float {
        0.5 * x * (1 + tanh(0.797_884_56 * (x + 0.044_715 * x * x * x)))
    }

    @inline(__always)
    public static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    /// Softmax of each row, in place.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var top = -Float.infinity
        for i in 0..<count { top = max(top, x[i]) }
        var sum: Float = 0
        for i in 0..<count {
            x[i] = exp(x[i] - top)
            sum += x[i]
        }
        for i in 0..<count { x[i] /= sum }
    }

    /// Causal self-attention with grouped KV heads, an optional soft cap on the scores
    /// (cap·tanh(s/cap), Gemma 2) and an optional sliding window (a query sees the
    /// `window` latest keys, itself included). q is T × (H·D), k and v are
    /// T × (Hkv·D), out is T × (H·D). Heads run in parallel.
    public static func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, tokens: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float, softcap: Float? = nil, window: Int?, into out: UnsafeMutablePointer<Float>) {
        let group = heads / kvHeads
        nonisolated(unsafe) let (q, k, v, out) = (q, k, v, out)
        DispatchQueue.concurrentPerform(iterations: heads) { h in
            let kv = h / group
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: tokens * tokens)
            defer { scores.deallocate() }
            // scores = Q_h · K_kvᵀ, each T × T (strided views of the packed rows).
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(tokens), Int32(headDim), scale,
                        q + h * headDim, Int32(heads * headDim), k + kv * headDim, Int32(kvHeads * headDim), 0, scores, Int32(tokens))
            for t in 0..<tokens {
                let row = scores + t * tokens
                let first = window.map { max(0, t - $0 + 1) } ?? 0
                if let softcap { for j in first...t { row[j] = softcap * tanh(row[j] / softcap) } }
                for j in 0..<first { row[j] = 0 }
                softmax(row + first, count: t - first + 1)
                for j in (t + 1)..<max(t + 1, tokens) { row[j] = 0 }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tokens), Int32(headDim), Int32(tokens), 1,
                        scores, Int32(tokens), v + kv * headDim, Int32(kvHeads * headDim), 0, out + h * headDim, Int32(heads * headDim))
        }
    }
}

extension Kernels {
    /// Threads OpenBLAS may use for matrix products.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(count))
    }
}
