import CBLAS
import Foundation

// The numeric core of the engine: row-major Float32 buffers, matrix products through
// OpenBLAS, and the element-wise kernels of a transformer layer.

public enum Kernels {
    /// y = x · Wᵀ: x is rows × inner (rows `stride` apart, default inner), W is
    /// outer × inner (a GGUF weight: one row per output), y is rows × outer. The outputs
    /// are split into one column band per thread, each a single-threaded sgemm (see
    /// `Parallel`).
    public static func matmulTransposed(
        _ x: UnsafePointer<Float>, rows: Int, inner: Int, stride: Int? = nil, _ w: UnsafePointer<Float>, outer: Int,
        into y: UnsafeMutablePointer<Float>
    ) {
        let stride = stride ?? inner
        nonisolated(unsafe) let (x, w, y) = (x, w, y)
        forEachBand(columns: outer, work: rows * outer * inner) { first, last in
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(last - first), Int32(inner), 1, x, Int32(stride),
                w + first * inner, Int32(inner), 0, y + first, Int32(outer))
        }
    }

    /// body(first, last) for column bands of whole 16-column panels, one per thread
    /// (one band for a product under 2^20 multiply-adds).
    static func forEachBand(columns: Int, work: Int, _ body: (Int, Int) -> Void) {
        let bands = work < 1 << 20 ? 1 : min(Parallel.threads, max(1, columns / 16))
        Parallel.forEach(bands) { band in
            let first = columns * band / bands / 16 * 16
            let last = band == bands - 1 ? columns : columns * (band + 1) / bands / 16 * 16
            if last > first { body(first, last) }
        }
    }

    /// Columns first..<first + width of each row of x (rows `stride` apart), packed
    /// into y (rows × width).
    public static func copyColumns(
        _ x: UnsafePointer<Float>, rows: Int, stride: Int, first: Int, width: Int, into y: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows { (y + r * width).update(from: x + r * stride + first, count: width) }
    }

    /// c += scale · a · b: a is rows × inner, b is inner × cols, c is rows × cols (a
    /// LoRA delta B·A added to a weight).
    public static func addProduct(
        _ a: UnsafePointer<Float>, rows: Int, inner: Int, _ b: UnsafePointer<Float>, cols: Int, scale: Float,
        into c: UnsafeMutablePointer<Float>
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(cols), Int32(inner), scale, a, Int32(inner), b, Int32(cols), 1, c,
            Int32(cols))
    }

    /// Root-mean-square normalisation of each row of `x` (rows × dim), times `weight`;
    /// rows run in parallel, eight lanes at a time.
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, rows: Int, dim: Int, weight: UnsafePointer<Float>, epsilon: Float, into y: UnsafeMutablePointer<Float>
    ) {
        let chunks = min(rows, rows * dim < 1 << 16 ? 1 : Parallel.threads * 4)
        nonisolated(unsafe) let (x, weight, y) = (x, weight, y)
        Parallel.forEach(chunks) { chunk in
            for r in rows * chunk / chunks..<rows * (chunk + 1) / chunks {
                let row = x + r * dim, out = y + r * dim
                var lanes = SIMD8<Float>.zero, i = 0
                while i + 8 <= dim {
                    let v = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self)
                    lanes += v * v
                    i += 8
                }
                var sum = lanes.sum()
                for j in i..<dim { sum += row[j] * row[j] }
                let scale = 1 / (sum / Float(dim) + epsilon).squareRoot()
                for j in 0..<dim { out[j] = row[j] * scale * weight[j] }
            }
        }
    }

    /// The cosines and sines of rotary position embedding for positions 0..<count:
    /// [position × ropeDim/2] each, computed once per forward pass and base.
    public struct RopeTable: Sendable {
        public let cos: [Float], sin: [Float]
        public let half: Int

        /// `factors` (ropeDim/2, from rope_freqs) divide each pair's frequency, as
        /// llama.cpp's freq_factors do.
        public init(positions count: Int, ropeDim: Int, base: Float, factors: [Float]? = nil) {
            half = ropeDim / 2
            var cos = [Float](repeating: 0, count: count * half), sin = cos
            for i in 0..<half {
                let inverseFrequency = pow(base, -2 * Float(i) / Float(ropeDim)) / (factors?[i] ?? 1)
                for p in 0..<count {
                    let angle = Float(p) * inverseFrequency
                    cos[p * half + i] = Foundation.cos(angle)
                    sin[p * half + i] = Foundation.sin(angle)
                }
            }
            self.cos = cos
            self.sin = sin
        }
    }

    /// Rotary position embedding, in place, on `heads` vectors of `headDim` per row
    /// (row r is position firstPosition + r); the first ropeDim dimensions rotate. `neox` pairs
    /// dimension i with i + d/2 (Gemma, Qwen2); otherwise adjacent pairs (llama.cpp's
    /// layout for llama weights). `inverse` rotates back: the backward of a rotation,
    /// for the trainer.
    public static func rope(
        _ x: UnsafeMutablePointer<Float>, rows: Int, firstPosition: Int = 0, heads: Int, headDim: Int, table: RopeTable, neox: Bool,
        inverse: Bool = false
    ) {
        let half = table.half
        for r in 0..<rows {
            let t = firstPosition + r
            for h in 0..<heads {
                let v = x + (r * heads + h) * headDim
                for i in 0..<half {
                    let c = table.cos[t * half + i], s = inverse ? -table.sin[t * half + i] : table.sin[t * half + i]
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

    /// Softmax of a row, in place, eight lanes at a time (the attention scores of every
    /// query: the largest element-wise cost of a long prompt).
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let vectors = count / 8 * 8
        var lanes = SIMD8<Float>(repeating: -.infinity), i = 0
        while i < vectors {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            lanes = lanes.replacing(with: v, where: v .> lanes)
            i += 8
        }
        var top = lanes.max()
        for j in vectors..<count { top = max(top, x[j]) }
        var sums = SIMD8<Float>.zero
        i = 0
        while i < vectors {
            let e = exp8(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - top)
            UnsafeMutableRawPointer(x + i).storeBytes(of: e, as: SIMD8<Float>.self)
            sums += e
            i += 8
        }
        var sum = sums.sum()
        for j in vectors..<count {
            x[j] = exp(x[j] - top)
            sum += x[j]
        }
        let scale = 1 / sum
        for j in 0..<count { x[j] *= scale }
    }

    /// Causal self-attention with grouped KV heads, an optional soft cap on the scores
    /// (cap·tanh(s/cap), Gemma 2) and an optional sliding window (a query sees the
    /// `window` latest keys, itself included). k and v are T × (Hkv·D) for positions
    /// 0..<T; q and out are (T − firstQuery) × (H·D), the queries of positions
    /// firstQuery..<T (a last layer needs only the last one). Queries go in blocks,
    /// each multiplied only with the keys it can see (the causal triangle and the
    /// window band are not computed); the heads that share a KV head go in one product
    /// (their queries gathered into one matrix: Gemma 3's four heads make it 256 rows,
    /// and the keys are packed once, not four times); KV heads and blocks run in
    /// parallel.
    public static func attention(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, tokens: Int, firstQuery: Int = 0, heads: Int,
        kvHeads: Int, headDim: Int, scale: Float, softcap: Float? = nil, window: Int?, into out: UnsafeMutablePointer<Float>
    ) {
        let group = heads / kvHeads, block = 64, d = headDim
        let blocks = (tokens - firstQuery + block - 1) / block
        nonisolated(unsafe) let (q, k, v, out) = (q, k, v, out)
        Parallel.forEach(kvHeads * blocks) { job in
            let kv = job / blocks
            let first = firstQuery + (job % blocks) * block, last = min(tokens, first + block)
            // Keys from the first one the block's first query sees to its last query.
            let keyStart = window.map { max(0, first - $0 + 1) } ?? 0
            let keys = last - keyStart, rows = last - first, gathered = group * rows
            // Row g·rows + r: the query of head kv·group + g at position first + r.
            let queries = UnsafeMutablePointer<Float>.allocate(capacity: gathered * d)
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: gathered * keys)
            defer {
                queries.deallocate()
                scores.deallocate()
            }
            func slot(_ g: Int, _ r: Int) -> Int { (first + r - firstQuery) * heads * d + (kv * group + g) * d }
            for g in 0..<group {
                for r in 0..<rows { (queries + (g * rows + r) * d).update(from: q + slot(g, r), count: d) }
            }
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(gathered), Int32(keys), Int32(d), scale,
                queries, Int32(d), k + keyStart * kvHeads * d + kv * d, Int32(kvHeads * d), 0, scores, Int32(keys))
            for m in 0..<gathered {
                let t = first + m % rows, row = scores + m * keys
                // Visible keys of query t: from max(keyStart, t − window + 1) to t.
                let from = (window.map { max(0, t - $0 + 1) } ?? 0) - keyStart, to = t - keyStart
                if let softcap { for j in from...to { row[j] = softcap * tanh(row[j] / softcap) } }
                softmax(row + from, count: to - from + 1)
                for j in 0..<from { row[j] = 0 }
                for j in (to + 1)..<max(to + 1, keys) { row[j] = 0 }
            }
            // The weighted values, into the gathered queries' place, then back per head.
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(gathered), Int32(d), Int32(keys), 1,
                scores, Int32(keys), v + keyStart * kvHeads * d + kv * d, Int32(kvHeads * d), 0, queries, Int32(d))
            for g in 0..<group {
                for r in 0..<rows { (out + slot(g, r)).update(from: queries + (g * rows + r) * d, count: d) }
            }
        }
    }
}
