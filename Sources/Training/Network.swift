import CBLAS
import Engine
import Ensemble
import Foundation
import GGUF
import Tensor

/// One training sequence: its tokens and the positions whose next token is scored
/// (completion-only: the answer after the generation prompt, and optionally the
/// end-of-turn token after it).
public struct TrainingSequence: Sendable {
    public var tokens: [Int32]
    public var targets: [(position: Int, token: Int32)]
    /// The answer tokens "1".."N": the softmax of `LossKind.choices`, and accuracy.
    public var choices: [Int32]

    public init(tokens: [Int32], targets: [(position: Int, token: Int32)], choices: [Int32]) {
        self.tokens = tokens
        self.targets = targets
        self.choices = choices
    }
}

public enum LossKind: String, Sendable, Codable, CaseIterable {
    /// Cross-entropy over the whole vocabulary (the seed's completion-only LM loss).
    case full
    /// Cross-entropy over the item's answer tokens only.
    case choices
}

/// The base model with unmerged LoRA weights beside its frozen linear layers: the
/// forward pass over every position, keeping what the backward pass needs, and the
/// backward pass, which produces gradients for LoRA's A and B only (llm.c's layout:
/// each op a forward/backward pair over flat buffers, the step readable top to bottom).
public final class Network: @unchecked Sendable {
    public let model: Model
    public var config: ModelConfig { model.config }
    /// The output projection as Float32 (V × d), dequantised on the first full-vocabulary
    /// loss: the loss needs every row at the target positions.
    private var outputMatrix: [Float]?
    private let lock = NSLock()
    /// Each block's linear weights row-major, for the input gradients dx = dy·W (the
    /// model keeps them packed for its forward products).
    let rowMajor: [(qkv: [Float], output: [Float], gateUp: [Float], down: [Float])]

    public init(model: Model) {
        self.model = model
        rowMajor = model.layers.map { ($0.qkv.rows(), $0.output.rows(), $0.gateUp.rows(), $0.down.rows()) }
    }

    /// Dropout of LoRA's inputs: probability and a seed that makes the masks of one
    /// sequence in one step the same in the recomputation and after a resume.
    public struct Dropout: Sendable {
        public var probability: Float
        public var seed: UInt64
    }

    /// What the backward pass of one block needs from its forward pass.
    struct Block {
        var input: [Float]
        var normed: [Float]
        var lora: [LoRAAdapter.Module: [Float]] = [:]
        var masks: [LoRAAdapter.Module: [Float]] = [:]
        var qBeforeNorm: [Float]?, kBeforeNorm: [Float]?
        var q: [Float], k: [Float], v: [Float]
        var probabilities: [Float]
        var attended: [Float]
        var attentionOutput: [Float]
        var middle: [Float]
        var ffnNormed: [Float]
        var gateUp: [Float]
        var activated: [Float]
        var ffnOutput: [Float]
    }

    struct Shapes {
        let t: Int, d: Int, qWidth: Int, kvWidth: Int, f: Int
        var qkvWidth: Int { qWidth + 2 * kvWidth }
    }

    func shapes(_ t: Int) -> Shapes {
        Shapes(t: t, d: config.embedding, qWidth: config.heads * config.headDim, kvWidth: config.kvHeads * config.headDim, f: config.feedForward)
    }

    /// The adapted modules of a stacked product, with the first column of each.
    func columns(_ modules: [(LoRAAdapter.Module, Int)], _ lora: LoRAWeights, layer: Int) -> [(LoRAWeights.Slot, Int)] {
        modules.compactMap { module, column in lora.slot(layer: layer, module: module).map { ($0, column) } }
    }

    // MARK: - Linear layers with LoRA

    /// y = x·Wᵀ, plus scale·drop(x)·Aᵀ·Bᵀ on the columns of each adapted module; keeps
    /// drop(x)·Aᵀ (T × r) and the dropout mask of each.
    func linear(_ x: [Float], rows: Int, weight: PackedMatrix, adapted: [(LoRAWeights.Slot, Int)], lora: LoRAWeights,
                dropout: Dropout?, block: inout Block?) -> [Float] {
        let inner = weight.inner, outer = weight.outer
        var y = [Float](repeating: 0, count: rows * outer)
        weight.product(x, rows: rows, into: &y)
        let r = lora.rank
        for (slot, column) in adapted {
            let mask = dropout.map { Self.mask($0, count: rows * inner, salt: UInt64(LoRAWeights.key(slot.layer, slot.module))) }
            let input = mask.map { m in zip(x, m).map { $0 * $1 } } ?? x
            var u = [Float](repeating: 0, count: rows * r)
            lora.values.withUnsafeBufferPointer { w in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(r), Int32(inner), 1, input, Int32(inner), w.baseAddress! + slot.a, Int32(inner), 0, &u, Int32(r))
                y.withUnsafeMutableBufferPointer { y in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(slot.outputs), Int32(r), lora.scale, u, Int32(r),
                                w.baseAddress! + slot.b, Int32(r), 1, y.baseAddress! + column, Int32(outer))
                }
            }
            block?.lora[slot.module] = u
            if let mask { block?.masks[slot.module] = mask }
        }
        return y
    }

    /// dx = dy·W plus LoRA's part; adds the gradients of each adapted A and B:
    /// g = dy·B, dB += scale·dyᵀ·u, dA += scale·gᵀ·drop(x), dx += scale·(g·A) ⊙ mask.
    func linearBackward(_ dy: [Float], rows: Int, inner: Int, weight: [Float], outer: Int, x: [Float], adapted: [(LoRAWeights.Slot, Int)],
                        lora: LoRAWeights, block: Block, gradient: inout [Float]) -> [Float] {
        var dx = [Float](repeating: 0, count: rows * inner)
        Kernels.matmul(dy, rows: rows, inner: outer, weight, cols: inner, into: &dx)
        let r = lora.rank, scale = lora.scale
        for (slot, column) in adapted {
            let u = block.lora[slot.module]!, mask = block.masks[slot.module]
            let input = mask.map { m in zip(x, m).map { $0 * $1 } } ?? x
            var g = [Float](repeating: 0, count: rows * r)
            var dInput = mask == nil ? [] : [Float](repeating: 0, count: rows * inner)
            lora.values.withUnsafeBufferPointer { w in
                let a = w.baseAddress! + slot.a, b = w.baseAddress! + slot.b
                dy.withUnsafeBufferPointer { dy in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(r), Int32(slot.outputs), 1, dy.baseAddress! + column, Int32(outer), b, Int32(r), 0, &g, Int32(r))
                    gradient.withUnsafeMutableBufferPointer { grad in
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(slot.outputs), Int32(r), Int32(rows), scale, dy.baseAddress! + column, Int32(outer),
                                    u, Int32(r), 1, grad.baseAddress! + slot.b, Int32(r))
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(r), Int32(inner), Int32(rows), scale, g, Int32(r),
                                    input, Int32(inner), 1, grad.baseAddress! + slot.a, Int32(inner))
                    }
                }
                if mask == nil {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inner), Int32(r), scale, g, Int32(r), a, Int32(inner), 1, &dx, Int32(inner))
                } else {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inner), Int32(r), scale, g, Int32(r), a, Int32(inner), 0, &dInput, Int32(inner))
                }
            }
            if let mask { for i in 0..<dx.count { dx[i] += dInput[i] * mask[i] } }
        }
        return dx
    }

    /// Inverted dropout's mask: 0 with probability p, else 1/(1 − p); four 16-bit
    /// draws from each 64-bit number (p is resolved to 1/65,536).
    static func mask(_ dropout: Dropout, count: Int, salt: UInt64) -> [Float] {
        var random = SplitMix64(seed: dropout.seed ^ (salt &* 0x9E37_79B9_7F4A_7C15))
        let keep = 1 / (1 - dropout.probability), threshold = UInt64((dropout.probability * 65_536).rounded())
        var mask = [Float](repeating: 0, count: count)
        var bits: UInt64 = 0
        for i in 0..<count {
            if i % 4 == 0 { bits = random.next() }
            mask[i] = bits & 0xFFFF < threshold ? 0 : keep
            bits >>= 16
        }
        return mask
    }

    // MARK: - One block

    /// The block's output (in place of its input x), and what its backward needs when
    /// `keep` is set.
    func blockForward(_ index: Int, x: inout [Float], rows t: Int, lora: LoRAWeights, dropout: Dropout?, rope: Kernels.RopeTable, keep: Bool) -> Block? {
        let layer = model.layers[index], c = config, s = shapes(t), eps = c.epsilon
        var normed = [Float](repeating: 0, count: t * s.d)
        Kernels.rmsNorm(x, rows: t, dim: s.d, weight: layer.attentionNorm, epsilon: eps, into: &normed)
        var block: Block? = keep ? Block(input: x, normed: normed, q: [], k: [], v: [], probabilities: [], attended: [], attentionOutput: [], middle: [],
                                          ffnNormed: [], gateUp: [], activated: [], ffnOutput: []) : nil
        let qkvAdapted = columns([(.q, 0), (.k, s.qWidth), (.v, s.qWidth + s.kvWidth)], lora, layer: index)
        let qkv = linear(normed, rows: t, weight: layer.qkv, adapted: qkvAdapted, lora: lora, dropout: dropout, block: &block)
        var q = [Float](repeating: 0, count: t * s.qWidth), k = [Float](repeating: 0, count: t * s.kvWidth), v = k
        Kernels.copyColumns(qkv, rows: t, stride: s.qkvWidth, first: 0, width: s.qWidth, into: &q)
        Kernels.copyColumns(qkv, rows: t, stride: s.qkvWidth, first: s.qWidth, width: s.kvWidth, into: &k)
        Kernels.copyColumns(qkv, rows: t, stride: s.qkvWidth, first: s.qWidth + s.kvWidth, width: s.kvWidth, into: &v)
        if let b = layer.qBias { for i in 0..<q.count { q[i] += b[i % b.count] } }
        if let b = layer.kBias { for i in 0..<k.count { k[i] += b[i % b.count] } }
        if let b = layer.vBias { for i in 0..<v.count { v[i] += b[i % b.count] } }
        if let w = layer.qNorm {
            block?.qBeforeNorm = q
            let before = q
            Kernels.rmsNorm(before, rows: t * c.heads, dim: c.headDim, weight: w, epsilon: eps, into: &q)
        }
        if let w = layer.kNorm {
            block?.kBeforeNorm = k
            let before = k
            Kernels.rmsNorm(before, rows: t * c.kvHeads, dim: c.headDim, weight: w, epsilon: eps, into: &k)
        }
        Kernels.rope(&q, rows: t, heads: c.heads, headDim: c.headDim, table: rope, neox: c.ropeNeox)
        Kernels.rope(&k, rows: t, heads: c.kvHeads, headDim: c.headDim, table: rope, neox: c.ropeNeox)
        var attended = [Float](repeating: 0, count: t * s.qWidth)
        let probabilities = attention(index, tokens: t).forward(q: q, k: k, v: v, into: &attended)
        let oAdapted = columns([(.o, 0)], lora, layer: index)
        var attentionOutput = linear(attended, rows: t, weight: layer.output, adapted: oAdapted, lora: lora, dropout: dropout, block: &block)
        let beforePostNorm = attentionOutput
        if let w = layer.postAttentionNorm { Kernels.rmsNorm(beforePostNorm, rows: t, dim: s.d, weight: w, epsilon: eps, into: &attentionOutput) }
        for i in 0..<x.count { x[i] += attentionOutput[i] }
        let middle = x
        var ffnNormed = [Float](repeating: 0, count: t * s.d)
        Kernels.rmsNorm(x, rows: t, dim: s.d, weight: layer.ffnNorm, epsilon: eps, into: &ffnNormed)
        let guAdapted = columns([(.gate, 0), (.up, s.f)], lora, layer: index)
        let gateUp = linear(ffnNormed, rows: t, weight: layer.gateUp, adapted: guAdapted, lora: lora, dropout: dropout, block: &block)
        var activated = gateUp
        Kernels.gatedActivation(&activated, rows: t, width: s.f, gelu: c.gemma)
        var packed = [Float](repeating: 0, count: t * s.f)
        Kernels.copyColumns(activated, rows: t, stride: 2 * s.f, first: 0, width: s.f, into: &packed)
        let downAdapted = columns([(.down, 0)], lora, layer: index)
        var ffnOutput = linear(packed, rows: t, weight: layer.down, adapted: downAdapted, lora: lora, dropout: dropout, block: &block)
        let beforeFFNNorm = ffnOutput
        if let w = layer.postFFNNorm { Kernels.rmsNorm(beforeFFNNorm, rows: t, dim: s.d, weight: w, epsilon: eps, into: &ffnOutput) }
        for i in 0..<x.count { x[i] += ffnOutput[i] }
        guard var block else { return nil }
        block.q = q
        block.k = k
        block.v = v
        block.probabilities = probabilities
        block.attended = attended
        block.attentionOutput = beforePostNorm
        block.middle = middle
        block.ffnNormed = ffnNormed
        block.gateUp = gateUp
        block.activated = packed
        block.ffnOutput = beforeFFNNorm
        return block
    }

    func attention(_ index: Int, tokens: Int) -> Attention {
        let c = config
        return Attention(tokens: tokens, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, scale: 1 / Float(c.headDim).squareRoot(),
                         softcap: c.attentionSoftcap, window: c.isSliding(index) ? c.slidingWindow : nil)
    }

    /// From the gradient of the block's output (dx), the gradient of its input (in
    /// place), adding LoRA's gradients to `gradient`.
    func blockBackward(_ index: Int, _ b: Block, dx: inout [Float], rows t: Int, lora: LoRAWeights, rope: Kernels.RopeTable, gradient: inout [Float]) {
        let layer = model.layers[index], c = config, s = shapes(t), eps = c.epsilon
        // FFN: x_out = middle + post(down(act(gate)·up)).
        var dFFN = dx
        if let w = layer.postFFNNorm { Kernels.rmsNormBackward(b.ffnOutput, rows: t, dim: s.d, weight: w, epsilon: eps, gradient: dx, into: &dFFN) }
        let dActivated = linearBackward(dFFN, rows: t, inner: s.f, weight: rowMajor[index].down, outer: s.d, x: b.activated, adapted: columns([(.down, 0)], lora, layer: index),
                                        lora: lora, block: b, gradient: &gradient)
        var dGateUp = [Float](repeating: 0, count: t * 2 * s.f)
        Kernels.gatedActivationBackward(b.gateUp, rows: t, width: s.f, gelu: c.gemma, gradient: dActivated, into: &dGateUp)
        let dFFNNormed = linearBackward(dGateUp, rows: t, inner: s.d, weight: rowMajor[index].gateUp, outer: 2 * s.f, x: b.ffnNormed,
                                        adapted: columns([(.gate, 0), (.up, s.f)], lora, layer: index), lora: lora, block: b, gradient: &gradient)
        Kernels.rmsNormBackward(b.middle, rows: t, dim: s.d, weight: layer.ffnNorm, epsilon: eps, gradient: dFFNNormed, into: &dx, accumulate: true)
        // Attention: middle = x_in + post(o(attention(rope(norm(q)), rope(norm(k)), v))).
        var dAttention = dx
        if let w = layer.postAttentionNorm { Kernels.rmsNormBackward(b.attentionOutput, rows: t, dim: s.d, weight: w, epsilon: eps, gradient: dx, into: &dAttention) }
        let dAttended = linearBackward(dAttention, rows: t, inner: s.qWidth, weight: rowMajor[index].output, outer: s.d, x: b.attended, adapted: columns([(.o, 0)], lora, layer: index),
                                       lora: lora, block: b, gradient: &gradient)
        var dq = [Float](repeating: 0, count: t * s.qWidth), dk = [Float](repeating: 0, count: t * s.kvWidth), dv = dk
        attention(index, tokens: t).backward(q: b.q, k: b.k, v: b.v, probabilities: b.probabilities, gradient: dAttended, dq: &dq, dk: &dk, dv: &dv)
        Kernels.rope(&dq, rows: t, heads: c.heads, headDim: c.headDim, table: rope, neox: c.ropeNeox, inverse: true)
        Kernels.rope(&dk, rows: t, heads: c.kvHeads, headDim: c.headDim, table: rope, neox: c.ropeNeox, inverse: true)
        if let w = layer.qNorm, let before = b.qBeforeNorm {
            let g = dq
            Kernels.rmsNormBackward(before, rows: t * c.heads, dim: c.headDim, weight: w, epsilon: eps, gradient: g, into: &dq)
        }
        if let w = layer.kNorm, let before = b.kBeforeNorm {
            let g = dk
            Kernels.rmsNormBackward(before, rows: t * c.kvHeads, dim: c.headDim, weight: w, epsilon: eps, gradient: g, into: &dk)
        }
        var dqkv = [Float](repeating: 0, count: t * s.qkvWidth)
        for r in 0..<t {
            for i in 0..<s.qWidth { dqkv[r * s.qkvWidth + i] = dq[r * s.qWidth + i] }
            for i in 0..<s.kvWidth {
                dqkv[r * s.qkvWidth + s.qWidth + i] = dk[r * s.kvWidth + i]
                dqkv[r * s.qkvWidth + s.qWidth + s.kvWidth + i] = dv[r * s.kvWidth + i]
            }
        }
        let dNormed = linearBackward(dqkv, rows: t, inner: s.d, weight: rowMajor[index].qkv, outer: s.qkvWidth, x: b.normed,
                                     adapted: columns([(.q, 0), (.k, s.qWidth), (.v, s.qWidth + s.kvWidth)], lora, layer: index), lora: lora, block: b, gradient: &gradient)
        Kernels.rmsNormBackward(b.input, rows: t, dim: s.d, weight: layer.attentionNorm, epsilon: eps, gradient: dNormed, into: &dx, accumulate: true)
    }

    // MARK: - The sequence

    /// The result of one sequence: its loss (mean over its targets) and, at the last
    /// target, the logits of the answer tokens (the scorer's answer).
    public struct Result: Sendable {
        public var loss: Double
        public var answerLogits: [Float]
    }

    /// Forward and backward over one sequence: the gradient of its loss, times
    /// `weight`, is added to `gradient` (laid out as `lora.values`). With `recompute` only each block's
    /// input is kept and the block is run again during the backward pass (gradient
    /// checkpointing: memory for one block's activations instead of all).
    public func accumulateGradient(_ sequence: TrainingSequence, lora: LoRAWeights, loss kind: LossKind, dropout: Dropout? = nil,
                                   into gradient: inout [Float], weight: Float = 1, recompute: Bool = false) throws -> Result {
        try run(sequence, lora: lora, loss: kind, dropout: dropout, gradient: &gradient, training: true, weight: weight, recompute: recompute)
    }

    /// The loss and answer logits of one sequence, without gradients (validation).
    public func evaluate(_ sequence: TrainingSequence, lora: LoRAWeights, loss kind: LossKind) throws -> Result {
        var none: [Float] = []
        return try run(sequence, lora: lora, loss: kind, dropout: nil, gradient: &none, training: false, weight: 1, recompute: false)
    }

    func run(_ sequence: TrainingSequence, lora: LoRAWeights, loss kind: LossKind, dropout: Dropout?,
             gradient: inout [Float], training: Bool, weight: Float, recompute: Bool) throws -> Result {
        let c = config, t = sequence.tokens.count, d = c.embedding
        guard t > 0, let lastTarget = sequence.targets.last, sequence.targets.allSatisfy({ $0.position < t }) else {
            throw TrainingError("a training sequence needs tokens and targets inside it")
        }
        var x = [Float](repeating: 0, count: t * d)
        let embedding = model.embedding
        for (row, token) in sequence.tokens.enumerated() {
            guard token >= 0, Int(token) < embedding.rowCount else { throw TrainingError("token id \(token) is outside the vocabulary") }
            let values = model.file.dequantizeRow(embedding, Int(token))
            let scale: Float = c.gemma ? Float(d).squareRoot() : 1
            for i in 0..<d { x[row * d + i] = values[i] * scale }
        }
        let ropeGlobal = Kernels.RopeTable(positions: t, ropeDim: c.ropeDim, base: c.ropeBase)
        let ropeLocal = c.ropeBaseLocal == c.ropeBase ? ropeGlobal : Kernels.RopeTable(positions: t, ropeDim: c.ropeDim, base: c.ropeBaseLocal)
        func rope(_ index: Int) -> Kernels.RopeTable { c.isSliding(index) ? ropeLocal : ropeGlobal }
        precondition(!training || gradient.count == lora.values.count)
        var blocks: [Block] = [], inputs: [[Float]] = []
        for index in model.layers.indices {
            if training && recompute { inputs.append(x) }
            let block = blockForward(index, x: &x, rows: t, lora: lora, dropout: training ? dropout : nil, rope: rope(index), keep: training && !recompute)
            if let block { blocks.append(block) }
        }

        // The loss at the targets: final norm, the output rows, cross-entropy.
        let projection = model.output ?? model.embedding
        let full = kind == .full
        let matrix = full ? fullOutputMatrix() : []
        var dx = [Float](repeating: 0, count: training ? t * d : 0)
        var total = 0.0, answerLogits: [Float] = []
        for target in sequence.targets {
            let row = Array(x[target.position * d..<(target.position + 1) * d])
            var hidden = [Float](repeating: 0, count: d)
            Kernels.rmsNorm(row, rows: 1, dim: d, weight: model.outputNorm, epsilon: c.epsilon, into: &hidden)
            let ids: [Int32] = full ? [] : sequence.choices
            guard full || ids.contains(target.token) else {
                throw TrainingError("the target token \(target.token) is not one of the answer tokens \(ids) (--loss choices scores only the answer)")
            }
            // The rows of the softmax: all of the vocabulary, or the answer tokens.
            let rows: [Float] = full ? matrix : ids.flatMap { model.file.dequantizeRow(projection, Int($0)) }
            let count = rows.count / d
            var raw = [Float](repeating: 0, count: count)
            Kernels.matmulTransposed(hidden, rows: 1, inner: d, rows, outer: count, into: &raw)
            let logits = c.finalSoftcap.map { cap in raw.map { cap * tanh($0 / cap) } } ?? raw
            if target.position == lastTarget.position {
                answerLogits = sequence.choices.map { logits[full ? Int($0) : ids.firstIndex(of: $0)!] }
            }
            let index = full ? Int(target.token) : ids.firstIndex(of: target.token)!
            let top = logits.max()!
            var sum = 0.0
            for value in logits { sum += Double(exp(value - top)) }
            total += Double(top) + log(sum) - Double(logits[index])
            guard training else { continue }
            // d loss / d logit = softmax − one-hot, over the targets' mean, times weight.
            let share = weight / Float(sequence.targets.count)
            var dLogits = logits.map { Float(Double(exp($0 - top)) / sum) * share }
            dLogits[index] -= share
            if let cap = c.finalSoftcap { for i in 0..<count { dLogits[i] *= 1 - (logits[i] / cap) * (logits[i] / cap) } }
            var dHidden = [Float](repeating: 0, count: d)
            Kernels.matmul(dLogits, rows: 1, inner: count, rows, cols: d, into: &dHidden)
            dx.withUnsafeMutableBufferPointer { dx in
                Kernels.rmsNormBackward(row, rows: 1, dim: d, weight: model.outputNorm, epsilon: c.epsilon, gradient: dHidden,
                                        into: dx.baseAddress! + target.position * d, accumulate: true)
            }
        }
        let result = Result(loss: total / Double(sequence.targets.count), answerLogits: answerLogits)
        guard training else { return result }

        for index in model.layers.indices.reversed() {
            let block: Block
            if recompute {
                var input = inputs[index]
                block = blockForward(index, x: &input, rows: t, lora: lora, dropout: dropout, rope: rope(index), keep: true)!
            } else {
                block = blocks.removeLast()
            }
            blockBackward(index, block, dx: &dx, rows: t, lora: lora, rope: rope(index), gradient: &gradient)
        }
        return result
    }

    func fullOutputMatrix() -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        if let outputMatrix { return outputMatrix }
        let matrix = model.file.dequantize(model.output ?? model.embedding)
        outputMatrix = matrix
        return matrix
    }
}
