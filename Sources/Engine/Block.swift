import Foundation
import Tensor

/// What differs between the two users of a transformer block: the engine (`forwardToFinalHidden`)
/// and the trainer (Training's `Network`). The block itself is written once, in
/// `Model.forward(block:)`; a pass decides how the stacked linear layers run (the trainer
/// adds LoRA's unmerged product), how attention runs (the engine over its cache of
/// earlier keys, the trainer keeping the probabilities) and what is kept for a backward
/// pass.
package protocol BlockPass {
    /// y (rows × outer, overwritten) = x · Wᵀ for one stack of the block numbered `block`; x's rows
    /// are `stride` apart.
    mutating func linear(
        _ stack: Model.Stack, block: Int, _ x: UnsafePointer<Float>, rows: Int, stride: Int, into y: UnsafeMutablePointer<Float>)
    /// Causal attention of the block's queries (rows × heads·headDim, RoPE applied) over
    /// its keys and values (rows × kvHeads·headDim) and whatever the pass holds from
    /// before: the output of rows first..<rows, into `attended` from its first row.
    mutating func attend(block: Int, q: [Float], k: [Float], v: [Float], rows: Int, first: Int, into attended: UnsafeMutablePointer<Float>)
    /// An intermediate value the backward pass needs; `value` is only evaluated by a pass
    /// that keeps it.
    mutating func keep(_ activation: BlockActivation, _ value: () -> [Float])
}

/// The intermediate values of a block that a backward pass reads (besides each linear
/// layer's input and attention's own, which the pass sees when it runs them).
package enum BlockActivation: Sendable {
    /// The block's input, all rows.
    case input
    /// q and k before QK-norm (where the family has it).
    case qBeforeNorm, kBeforeNorm
    /// The attention projection's output before the post-attention norm, rows first..<rows.
    case attentionOutput
    /// The residual stream between attention and FFN, rows first..<rows.
    case middle
    /// The gate and up projections before the gated activation.
    case gateUp
    /// The down projection's output before the post-FFN norm.
    case ffnOutput
}

/// The RoPE tables of one pass: the global base and, where the family's sliding blocks
/// have their own (Gemma 3), the local one.
package struct RopeTables {
    let global: Kernels.RopeTable, local: Kernels.RopeTable

    package func table(block: Int, _ config: ModelConfig) -> Kernels.RopeTable {
        config.isSliding(block) ? local : global
    }
}

/// The working buffers of a block's forward pass, sized for its rows: the engine makes
/// one set for all the blocks of a pass, the trainer one per block (`blockForward`).
package struct BlockBuffers {
    var h: [Float], qkv: [Float], q: [Float], k: [Float], v: [Float], attended: [Float], gateUp: [Float], projected: [Float]

    package init(_ c: ModelConfig, rows: Int) {
        let qWidth = c.queryWidth, kvWidth = c.keyValueWidth
        h = [Float](repeating: 0, count: rows * c.embedding)
        qkv = [Float](repeating: 0, count: rows * (qWidth + 2 * kvWidth))
        q = [Float](repeating: 0, count: rows * qWidth)
        k = [Float](repeating: 0, count: rows * kvWidth)
        v = k
        attended = q
        gateUp = [Float](repeating: 0, count: rows * 2 * c.feedForward)
        projected = h
    }
}

extension Model {
    /// The token embeddings of a sequence (times √d where the family scales them).
    package func embed(_ tokens: ArraySlice<Int32>) throws -> [Float] {
        let d = config.embedding, scale: Float = config.family.scalesEmbedding ? Float(d).squareRoot() : 1
        var x = [Float](repeating: 0, count: tokens.count * d)
        for (row, token) in tokens.enumerated() {
            guard token >= 0, Int(token) < embedding.rowCount else {
                throw EngineError(message: "token id \(token) is outside the vocabulary")
            }
            let values = file.dequantizeRow(embedding, Int(token))
            for i in 0..<d { x[row * d + i] = values[i] * scale }
        }
        return x
    }

    /// The RoPE tables for positions 0..<positions, with the file's frequency factors.
    package func ropeTables(positions: Int) -> RopeTables {
        let c = config
        let global = Kernels.RopeTable(positions: positions, ropeDim: c.ropeDim, base: c.ropeBase, factors: ropeFactors)
        let local =
            c.ropeBaseLocal == c.ropeBase
            ? global : Kernels.RopeTable(positions: positions, ropeDim: c.ropeDim, base: c.ropeBaseLocal, factors: ropeFactors)
        return RopeTables(global: global, local: local)
    }

    /// Block `index` over the rows of x (rows × d, positions firstPosition onwards), in
    /// place: every row makes keys and values; rows first..<rows get the block's output
    /// (the last block needs only the rows whose next token matters), the rows before
    /// stay as they were. The family's specifics all come from `config`.
    package func forward<Pass: BlockPass>(
        block index: Int, x: inout [Float], rows: Int, first: Int = 0, firstPosition: Int = 0,
        rope: RopeTables, buffers b: inout BlockBuffers, pass: inout Pass
    ) {
        let c = config, weights = blocks[index], d = c.embedding, f = c.feedForward, m = rows - first
        let qWidth = c.queryWidth, kvWidth = c.keyValueWidth, qkvWidth = qWidth + 2 * kvWidth
        pass.keep(.input) { Array(x[..<(rows * d)]) }
        preNorm(x, rows: rows, weight: weights.attentionNorm, into: &b.h)
        pass.linear(.qkv, block: index, b.h, rows: rows, stride: d, into: &b.qkv)
        Kernels.copyColumns(b.qkv, rows: rows, stride: qkvWidth, first: 0, width: qWidth, into: &b.q)
        Kernels.copyColumns(b.qkv, rows: rows, stride: qkvWidth, first: qWidth, width: kvWidth, into: &b.k)
        Kernels.copyColumns(b.qkv, rows: rows, stride: qkvWidth, first: qWidth + kvWidth, width: kvWidth, into: &b.v)
        if let bias = weights.qBias { addBias(&b.q, bias, rows: rows) }
        if let bias = weights.kBias { addBias(&b.k, bias, rows: rows) }
        if let bias = weights.vBias { addBias(&b.v, bias, rows: rows) }
        if let w = weights.qNorm {
            pass.keep(.qBeforeNorm) { b.q }
            normalizeRows(&b.q, rows: rows * c.heads, dim: c.headDim, weight: w)
        }
        if let w = weights.kNorm {
            pass.keep(.kBeforeNorm) { b.k }
            normalizeRows(&b.k, rows: rows * c.kvHeads, dim: c.headDim, weight: w)
        }
        if c.rotates(index) {
            let table = rope.table(block: index, c)
            Kernels.rope(
                &b.q, rows: rows, firstPosition: firstPosition, heads: c.heads, headDim: c.headDim, table: table, neox: c.family.ropeNeox)
            Kernels.rope(
                &b.k, rows: rows, firstPosition: firstPosition, heads: c.kvHeads, headDim: c.headDim, table: table, neox: c.family.ropeNeox)
        }
        pass.attend(block: index, q: b.q, k: b.k, v: b.v, rows: rows, first: first, into: &b.attended)
        pass.linear(.output, block: index, b.attended, rows: m, stride: qWidth, into: &b.projected)
        pass.keep(.attentionOutput) { Array(b.projected[..<(m * d)]) }
        if let w = weights.postAttentionNorm { normalizeRows(&b.projected, rows: m, dim: d, weight: w) }
        for i in 0..<(m * d) { x[first * d + i] += b.projected[i] }
        pass.keep(.middle) { Array(x[(first * d)..<(rows * d)]) }

        x.withUnsafeBufferPointer { x in preNorm(x.baseAddress! + first * d, rows: m, weight: weights.ffnNorm, into: &b.h) }
        pass.linear(.gateUp, block: index, b.h, rows: m, stride: d, into: &b.gateUp)
        pass.keep(.gateUp) { Array(b.gateUp[..<(m * 2 * f)]) }
        Kernels.gatedActivation(&b.gateUp, rows: m, width: f, gelu: c.family.gelu)
        pass.linear(.down, block: index, b.gateUp, rows: m, stride: 2 * f, into: &b.projected)
        pass.keep(.ffnOutput) { Array(b.projected[..<(m * d)]) }
        if let w = weights.postFFNNorm { normalizeRows(&b.projected, rows: m, dim: d, weight: w) }
        for i in 0..<(m * d) { x[first * d + i] += b.projected[i] }
    }

    /// The norm before attention or FFN, into `h`; a copy where the family has none.
    func preNorm(_ x: UnsafePointer<Float>, rows: Int, weight: [Float]?, into h: UnsafeMutablePointer<Float>) {
        let d = config.embedding
        if let weight {
            Kernels.rmsNorm(x, rows: rows, dim: d, weight: weight, epsilon: config.epsilon, into: h)
        } else {
            h.update(from: x, count: rows * d)
        }
    }

    func addBias(_ x: inout [Float], _ bias: [Float], rows: Int) {
        for i in 0..<(rows * bias.count) { x[i] += bias[i % bias.count] }
    }

    /// RMS normalisation, in place, of the first `rows` rows of `dim` (a token's
    /// vector, or one head's for QK-norm).
    func normalizeRows(_ x: inout [Float], rows: Int, dim: Int, weight: [Float]) {
        x.withUnsafeMutableBufferPointer { buffer in
            Kernels.rmsNorm(buffer.baseAddress!, rows: rows, dim: dim, weight: weight, epsilon: config.epsilon, into: buffer.baseAddress!)
        }
    }
}
