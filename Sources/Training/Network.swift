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
    /// The float32 linear layers' weights transposed (inner × outer), packed for the input
    /// gradients dx = dy·W = dy·(Wᵀ)ᵀ: the same product as the forward pass's. Layers
    /// kept in codes (the reduced precisions) need no copy: their dx unpacks strips of W.
    let transposed: [[Model.Stack: PackedMatrix]]

    /// Bytes an `f32` base of this file holds: each block matrix in float32 and its
    /// transposed copy, and the output projection's float32 rows (the full-vocabulary
    /// loss). A base in codes holds about the file's size.
    public static func float32Bytes(of file: GGUFFile) -> Int {
        let blocks = file.tensors.filter { $0.name.hasPrefix("blk.") && $0.dimensions.count == 2 }.reduce(0) { $0 + $1.elementCount }
        let output = (file.tensor(named: "output.weight") ?? file.tensor(named: "token_embd.weight"))?.elementCount ?? 0
        return 8 * blocks + 4 * output
    }

    /// The base's precision is the trainer's: loaded in float32 (`f32`), the exact path
    /// (packed float32 weights and their transposed copies for dx); loaded in codes
    /// (`q8`, `q8x2`), it stays in them: forward products with activations in 8 bits or
    /// two 8-bit parts (the engine's integer kernels), dx in float32 over the codes a
    /// strip at a time, no copy.
    public init(model: Model) {
        self.model = model
        func transpose(_ w: PackedMatrix) -> PackedMatrix {
            let rows = w.rows()
            var t = [Float](repeating: 0, count: rows.count)
            // In 32 × 32 tiles, so that the strided writes stay in cache.
            for o0 in stride(from: 0, to: w.outer, by: 32) {
                for i0 in stride(from: 0, to: w.inner, by: 32) {
                    for o in o0..<min(o0 + 32, w.outer) {
                        for i in i0..<min(i0 + 32, w.inner) { t[i * w.outer + o] = rows[o * w.inner + i] }
                    }
                }
            }
            return PackedMatrix(t, outer: w.inner, inner: w.outer)
        }
        transposed = model.blocks.map { weights in
            Dictionary(
                uniqueKeysWithValues: Model.Stack.allCases.compactMap { stack in weights[stack].float.map { (stack, transpose($0)) } })
        }
    }

    /// Dropout of LoRA's inputs: probability and a seed that makes the masks of one
    /// sequence in one step the same in the recomputation and after a resume.
    public struct Dropout: Sendable {
        public var probability: Float
        public var seed: UInt64
    }

    /// What the backward pass of one block needs from its forward pass.
    struct KeptActivations {
        var input: [Float] = []
        /// Each linear layer's input: the normed block input (qkv), attention's output
        /// (o), the normed middle (gate/up), the gated activation (down).
        var normed: [Float] = [], attended: [Float] = [], ffnNormed: [Float] = [], activated: [Float] = []
        var lora: [LoRAAdapter.Module: [Float]] = [:]
        var masks: [LoRAAdapter.Module: [Float]] = [:]
        var qBeforeNorm: [Float]?, kBeforeNorm: [Float]?
        var q: [Float] = [], k: [Float] = [], v: [Float] = []
        var probabilities: [Float] = []
        var attentionOutput: [Float] = []
        var middle: [Float] = []
        var gateUp: [Float] = []
        var ffnOutput: [Float] = []
    }

    /// Floats one block keeps for its backward pass over t tokens (llm.c's
    /// fill_in_activation_sizes): the `KeptActivations` fields above, with a dropout mask per
    /// adapted module when there is dropout. The recompute rule weighs these.
    func keptFloats(tokens t: Int, lora: LoRAWeights, dropout: Bool) -> Int {
        let s = shapes(t), c = config
        let inputs = t * (s.d + s.d + s.qWidth + s.d + s.f) // input, normed, attended, ffnNormed, activated
        let normed = model.blocks[0].qNorm != nil ? s.qWidth + s.kvWidth : 0
        let attention = t * (s.qkvWidth + normed) + c.heads * t * t // q, k, v (and before their norms), probabilities
        let rest = t * (s.d + s.d + 2 * s.f + s.d) // attentionOutput, middle, gateUp, ffnOutput
        let adapted = Model.Stack.allCases.flatMap { stack in columns(stack, lora, block: 0).map { _ in stack } }
        let lowRank = adapted.count * t * lora.rank
        let masks = dropout ? adapted.reduce(0) { $0 + t * model.blocks[0][$1].inner } : 0
        return inputs + attention + rest + lowRank + masks
    }

    struct Shapes {
        let t: Int, d: Int, qWidth: Int, kvWidth: Int, f: Int
        var qkvWidth: Int { qWidth + 2 * kvWidth }
    }

    func shapes(_ t: Int) -> Shapes {
        Shapes(
            t: t, d: config.embedding, qWidth: config.queryWidth, kvWidth: config.keyValueWidth, f: config.feedForward)
    }

    /// The adapted modules of a stacked product, with the first column of each.
    func columns(_ stack: Model.Stack, _ lora: LoRAWeights, block: Int) -> [(LoRAWeights.Slot, Int)] {
        stack.modules.compactMap { module in lora.slot(block: block, module: module).map { ($0, Model.rows(of: module, config).first) } }
    }

    // MARK: - Linear layers with LoRA

    /// The trainer's pass through a block (the block itself is Engine's `Model.forward`):
    /// LoRA's unmerged product beside each frozen one, attention keeping its
    /// probabilities, and, with a `block` to fill, what the backward pass needs.
    struct TrainingPass: BlockPass {
        let network: Network, lora: LoRAWeights, dropout: Dropout?
        var kept: KeptActivations?

        /// y = x·Wᵀ, plus scale·drop(x)·Aᵀ·Bᵀ on the columns of each adapted module;
        /// keeps x, and drop(x)·Aᵀ (T × r) and the dropout mask of each.
        mutating func linear(
            _ stack: Model.Stack, block: Int, _ x: UnsafePointer<Float>, rows: Int, stride: Int, into y: UnsafeMutablePointer<Float>
        ) {
            let weight = network.model.blocks[block][stack], inner = weight.inner, outer = weight.outer
            weight.product(x, rows: rows, stride: stride, into: y)
            let adapted = network.columns(stack, lora, block: block)
            guard !adapted.isEmpty || kept != nil else { return }
            let pointer = x
            var x = [Float](repeating: 0, count: rows * inner)
            Kernels.copyColumns(pointer, rows: rows, stride: stride, first: 0, width: inner, into: &x)
            switch stack {
            case .qkv: kept?.normed = x
            case .output: kept?.attended = x
            case .gateUp: kept?.ffnNormed = x
            case .down: kept?.activated = x
            }
            let r = lora.rank
            for (slot, column) in adapted {
                let mask = dropout.map { Network.mask($0, count: rows * inner, salt: UInt64(LoRAWeights.key(slot.block, slot.module))) }
                let input = mask.map { m in zip(x, m).map { $0 * $1 } } ?? x
                var u = [Float](repeating: 0, count: rows * r)
                lora.values.withUnsafeBufferPointer { w in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(r), Int32(inner), 1, input, Int32(inner),
                        w.baseAddress! + slot.a, Int32(inner), 0, &u, Int32(r))
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(slot.outputs), Int32(r), lora.scale, u, Int32(r),
                        w.baseAddress! + slot.b, Int32(r), 1, y + column, Int32(outer))
                }
                kept?.lora[slot.module] = u
                if let mask { kept?.masks[slot.module] = mask }
            }
        }

        mutating func attend(
            block index: Int, q: [Float], k: [Float], v: [Float], rows: Int, first: Int, into attended: UnsafeMutablePointer<Float>
        ) {
            let qWidth = network.config.queryWidth
            var out = [Float](repeating: 0, count: rows * qWidth)
            let probabilities = network.attention(index, tokens: rows, firstQuery: first).forward(q: q, k: k, v: v, into: &out)
            out.withUnsafeBufferPointer { attended.update(from: $0.baseAddress! + first * qWidth, count: (rows - first) * qWidth) }
            kept?.q = q
            kept?.k = k
            kept?.v = v
            kept?.probabilities = probabilities
        }

        mutating func keep(_ activation: BlockActivation, _ value: () -> [Float]) {
            guard kept != nil else { return }
            switch activation {
            case .input: kept!.input = value()
            case .qBeforeNorm: kept!.qBeforeNorm = value()
            case .kBeforeNorm: kept!.kBeforeNorm = value()
            case .attentionOutput: kept!.attentionOutput = value()
            case .middle: kept!.middle = value()
            case .gateUp: kept!.gateUp = value()
            case .ffnOutput: kept!.ffnOutput = value()
            }
        }
    }

    /// dx = dy·W plus LoRA's part; adds the gradients of each adapted A and B:
    /// g = dy·B, dB += scale·dyᵀ·u, dA += scale·gᵀ·drop(x), dx += scale·(g·A) ⊙ mask.
    func linearBackward(
        _ dy: [Float], rows: Int, block: Int, _ stack: Model.Stack, x: [Float], lora: LoRAWeights, kept: KeptActivations,
        gradient: inout [Float]
    ) -> [Float] {
        let weight = model.blocks[block][stack], inner = weight.inner, outer = weight.outer, adapted = columns(stack, lora, block: block)
        var dx = [Float](repeating: 0, count: rows * inner)
        if let copy = transposed[block][stack] {
            copy.product(dy, rows: rows, into: &dx)
        } else {
            dy.withUnsafeBufferPointer { dy in
                dx.withUnsafeMutableBufferPointer { weight.addTransposedProduct(dy.baseAddress!, rows: rows, into: $0.baseAddress!) }
            }
        }
        let r = lora.rank, scale = lora.scale
        for (slot, column) in adapted {
            let u = kept.lora[slot.module]!, mask = kept.masks[slot.module]
            let input = mask.map { m in zip(x, m).map { $0 * $1 } } ?? x
            var g = [Float](repeating: 0, count: rows * r)
            var dInput = mask == nil ? [] : [Float](repeating: 0, count: rows * inner)
            lora.values.withUnsafeBufferPointer { w in
                let a = w.baseAddress! + slot.a, b = w.baseAddress! + slot.b
                dy.withUnsafeBufferPointer { dy in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(r), Int32(slot.outputs), 1, dy.baseAddress! + column,
                        Int32(outer), b, Int32(r), 0, &g, Int32(r))
                    gradient.withUnsafeMutableBufferPointer { grad in
                        cblas_sgemm(
                            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(slot.outputs), Int32(r), Int32(rows), scale,
                            dy.baseAddress! + column, Int32(outer),
                            u, Int32(r), 1, grad.baseAddress! + slot.b, Int32(r))
                        cblas_sgemm(
                            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(r), Int32(inner), Int32(rows), scale, g, Int32(r),
                            input, Int32(inner), 1, grad.baseAddress! + slot.a, Int32(inner))
                    }
                }
                if mask == nil {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inner), Int32(r), scale, g, Int32(r), a, Int32(inner),
                        1, &dx, Int32(inner))
                } else {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inner), Int32(r), scale, g, Int32(r), a, Int32(inner),
                        0, &dInput, Int32(inner))
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
    /// `keep` is set. With `first` > 0 (the last block: only the rows whose next token
    /// is scored matter) rows before it get keys and values but no output.
    func blockForward(
        _ index: Int, x: inout [Float], rows t: Int, from first: Int = 0, lora: LoRAWeights, dropout: Dropout?, rope: RopeTables,
        keep: Bool
    ) -> KeptActivations? {
        var pass = TrainingPass(network: self, lora: lora, dropout: dropout, kept: keep ? KeptActivations() : nil)
        var buffers = BlockBuffers(config, rows: t)
        model.forward(block: index, x: &x, rows: t, first: first, rope: rope, buffers: &buffers, pass: &pass)
        return pass.kept
    }

    func attention(_ index: Int, tokens: Int, firstQuery: Int) -> Attention {
        let a = config.attention(block: index)
        return Attention(
            tokens: tokens, heads: a.heads, kvHeads: a.kvHeads, headDim: a.headDim, scale: a.scale, softcap: a.softcap, window: a.window,
            firstQuery: firstQuery)
    }

    /// From the gradient of the block's output (dx), the gradient of its input (in
    /// place), adding LoRA's gradients to `gradient`.
    func blockBackward(
        _ index: Int, _ b: KeptActivations, dx: inout [Float], rows t: Int, from first: Int = 0, lora: LoRAWeights, rope: RopeTables,
        gradient: inout [Float]
    ) {
        let weights = model.blocks[index], c = config, s = shapes(t), eps = c.epsilon, m = t - first
        func rowsFromFirst(_ a: [Float]) -> [Float] { first == 0 ? a : Array(a[(first * s.d)...]) }
        // FFN: x_out = middle + post(down(act(gate)·up)), on rows first..<t.
        let dOutput = rowsFromFirst(dx)
        var dFFN = dOutput
        if let w = weights.postFFNNorm {
            Kernels.rmsNormBackward(b.ffnOutput, rows: m, dim: s.d, weight: w, epsilon: eps, gradient: dOutput, into: &dFFN)
        }
        let dActivated = linearBackward(dFFN, rows: m, block: index, .down, x: b.activated, lora: lora, kept: b, gradient: &gradient)
        var dGateUp = [Float](repeating: 0, count: m * 2 * s.f)
        Kernels.gatedActivationBackward(b.gateUp, rows: m, width: s.f, gelu: c.family.gelu, gradient: dActivated, into: &dGateUp)
        let dFFNNormed = linearBackward(dGateUp, rows: m, block: index, .gateUp, x: b.ffnNormed, lora: lora, kept: b, gradient: &gradient)
        dx.withUnsafeMutableBufferPointer { dx in
            preNormBackward(b.middle, rows: m, weight: weights.ffnNorm, gradient: dFFNNormed, into: dx.baseAddress! + first * s.d)
        }
        // Attention: middle = x_in + post(o(attention(rope(norm(q)), rope(norm(k)), v))).
        let dMiddle = rowsFromFirst(dx)
        var dAttention = dMiddle
        if let w = weights.postAttentionNorm {
            Kernels.rmsNormBackward(b.attentionOutput, rows: m, dim: s.d, weight: w, epsilon: eps, gradient: dMiddle, into: &dAttention)
        }
        let dAttendedRows = linearBackward(
            dAttention, rows: m, block: index, .output, x: b.attended, lora: lora, kept: b, gradient: &gradient)
        let dAttended = first == 0 ? dAttendedRows : [Float](repeating: 0, count: first * s.qWidth) + dAttendedRows
        var dq = [Float](repeating: 0, count: t * s.qWidth), dk = [Float](repeating: 0, count: t * s.kvWidth), dv = dk
        attention(index, tokens: t, firstQuery: first).backward(
            q: b.q, k: b.k, v: b.v, probabilities: b.probabilities, gradient: dAttended, dq: &dq, dk: &dk, dv: &dv)
        if c.rotates(index) {
            let table = rope.table(block: index, c)
            Kernels.rope(&dq, rows: t, heads: c.heads, headDim: c.headDim, table: table, neox: c.family.ropeNeox, inverse: true)
            Kernels.rope(&dk, rows: t, heads: c.kvHeads, headDim: c.headDim, table: table, neox: c.family.ropeNeox, inverse: true)
        }
        if let w = weights.qNorm, let before = b.qBeforeNorm {
            let g = dq
            Kernels.rmsNormBackward(before, rows: t * c.heads, dim: c.headDim, weight: w, epsilon: eps, gradient: g, into: &dq)
        }
        if let w = weights.kNorm, let before = b.kBeforeNorm {
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
        let dNormed = linearBackward(dqkv, rows: t, block: index, .qkv, x: b.normed, lora: lora, kept: b, gradient: &gradient)
        dx.withUnsafeMutableBufferPointer { dx in
            preNormBackward(b.input, rows: t, weight: weights.attentionNorm, gradient: dNormed, into: dx.baseAddress!)
        }
    }

    /// Adds the gradient of a pre-norm's input (the gradient itself where there is no norm).
    func preNormBackward(_ x: [Float], rows: Int, weight: [Float]?, gradient: [Float], into dx: UnsafeMutablePointer<Float>) {
        guard let weight else {
            for i in 0..<rows * config.embedding { dx[i] += gradient[i] }
            return
        }
        Kernels.rmsNormBackward(
            x, rows: rows, dim: config.embedding, weight: weight, epsilon: config.epsilon, gradient: gradient, into: dx, accumulate: true)
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
    public func accumulateGradient(
        _ sequence: TrainingSequence, lora: LoRAWeights, loss kind: LossKind, dropout: Dropout? = nil,
        into gradient: inout [Float], weight: Float = 1, recompute: Bool = false
    ) throws -> Result {
        try run(
            sequence, lora: lora, loss: kind, dropout: dropout, gradient: &gradient, training: true, weight: weight, recompute: recompute)
    }

    /// The loss and answer logits of one sequence, without gradients (validation).
    public func evaluate(_ sequence: TrainingSequence, lora: LoRAWeights, loss kind: LossKind) throws -> Result {
        var none: [Float] = []
        return try run(sequence, lora: lora, loss: kind, dropout: nil, gradient: &none, training: false, weight: 1, recompute: false)
    }

    func run(
        _ sequence: TrainingSequence, lora: LoRAWeights, loss kind: LossKind, dropout: Dropout?,
        gradient: inout [Float], training: Bool, weight: Float, recompute: Bool
    ) throws -> Result {
        let c = config, t = sequence.tokens.count, d = c.embedding
        guard t > 0, let lastTarget = sequence.targets.last, sequence.targets.allSatisfy({ $0.position < t }) else {
            throw TrainingError("a training sequence needs tokens and targets inside it")
        }
        var x = try model.embed(sequence.tokens[...])
        let rope = model.ropeTables(positions: t)
        precondition(!training || gradient.count == lora.values.count)
        // The last block computes its output rows from the first target on only.
        let firstTarget = sequence.targets.map(\.position).min()!
        func first(_ index: Int) -> Int { index == model.blocks.count - 1 ? firstTarget : 0 }
        var kept: [KeptActivations] = [], inputs: [[Float]] = []
        for index in model.blocks.indices {
            if training && recompute { inputs.append(x) }
            let activations = blockForward(
                index, x: &x, rows: t, from: first(index), lora: lora, dropout: training ? dropout : nil, rope: rope,
                keep: training && !recompute)
            if let activations { kept.append(activations) }
        }

        // The loss at the targets: final norm, the output rows, cross-entropy.
        let projection = model.output ?? model.embedding
        let full = kind == .full
        let matrix = full ? outputRows() : nil
        var dx = [Float](repeating: 0, count: training ? t * d : 0)
        var total = 0.0, answerLogits: [Float] = []
        for target in sequence.targets {
            let row = Array(x[target.position * d..<(target.position + 1) * d])
            var hidden = [Float](repeating: 0, count: d)
            Kernels.rmsNorm(row, rows: 1, dim: d, weight: model.outputNorm, epsilon: c.epsilon, into: &hidden)
            let ids: [Int32] = full ? [] : sequence.choices
            guard full || ids.contains(target.token) else {
                throw TrainingError(
                    "the target token \(target.token) is not one of the answer tokens \(ids) (--loss choices scores only the answer)")
            }
            // The rows of the softmax: all of the vocabulary, or the answer tokens.
            let rows = matrix ?? .float(ids.flatMap { model.file.dequantizeRow(projection, Int($0)) })
            let index = full ? Int(target.token) : ids.firstIndex(of: target.token)!
            let answers = sequence.choices.map { full ? Int($0) : ids.firstIndex(of: $0)! }
            // d loss / d logit = softmax − one-hot, over the targets' mean, times weight.
            let share = training ? weight / Float(sequence.targets.count) : nil
            let entropy = crossEntropy(hidden, rows: rows, target: index, answers: answers, share: share)
            total += entropy.loss
            if target.position == lastTarget.position { answerLogits = entropy.answerLogits }
            guard let dHidden = entropy.dHidden else { continue }
            dx.withUnsafeMutableBufferPointer { dx in
                Kernels.rmsNormBackward(
                    row, rows: 1, dim: d, weight: model.outputNorm, epsilon: c.epsilon, gradient: dHidden,
                    into: dx.baseAddress! + target.position * d, accumulate: true)
            }
        }
        let result = Result(loss: total / Double(sequence.targets.count), answerLogits: answerLogits)
        guard training else { return result }

        for index in model.blocks.indices.reversed() {
            let activations: KeptActivations
            if recompute {
                var input = inputs[index]
                activations = blockForward(
                    index, x: &input, rows: t, from: first(index), lora: lora, dropout: dropout, rope: rope, keep: true)!
            } else {
                activations = kept.removeLast()
            }
            blockBackward(index, activations, dx: &dx, rows: t, from: first(index), lora: lora, rope: rope, gradient: &gradient)
        }
        return result
    }

    /// The rows of the loss's softmax: float32 rows in memory, or a GGUF tensor's rows
    /// dequantised a chunk at a time where they are read (a base in codes keeps no
    /// float32 copy of a 671 MB-2.2 GB output matrix).
    enum OutputRows {
        case float([Float])
        case file(GGUFFile, GGUFTensorInfo)

        func count(d: Int) -> Int {
            switch self {
            case .float(let rows): rows.count / d
            case .file(_, let tensor): tensor.rowCount
            }
        }

        /// body(rows first..<first+n), made in `buffer` (n × d floats) where they must be.
        func withRows<R>(_ first: Int, _ n: Int, d: Int, buffer: inout [Float], _ body: (UnsafePointer<Float>) -> R) -> R {
            switch self {
            case .float(let rows):
                return rows.withUnsafeBufferPointer { body($0.baseAddress! + first * d) }
            case .file(let file, let tensor):
                if buffer.count < n * d { buffer = [Float](repeating: 0, count: n * d) }
                return buffer.withUnsafeMutableBufferPointer { buffer in
                    tensor.type.dequantize(
                        file.data(of: tensor).baseAddress! + first * tensor.rowBytes, count: n * d, into: buffer.baseAddress!)
                    return body(buffer.baseAddress!)
                }
            }
        }
    }

    /// Cross-entropy of the target row among the rows for a final hidden state, in one
    /// pass over the rows: each chunk's logits and its part of the gradient are computed
    /// while the chunk is in cache, an online softmax rescaling what came before when
    /// the maximum grows (the full vocabulary is read once, not twice). Returns the
    /// loss, the logits at `answers` and, when `share` is set, share · d loss / d hidden.
    func crossEntropy(_ hidden: [Float], rows source: OutputRows, target: Int, answers: [Int], share: Float?)
        -> (loss: Double, answerLogits: [Float], dHidden: [Float]?)
    {
        let d = hidden.count, modelConfig = config
        let count = source.count(d: d)
        func row(_ index: Int) -> [Float] {
            var buffer: [Float] = []
            return source.withRows(index, 1, d: d, buffer: &buffer) { Array(UnsafeBufferPointer(start: $0, count: d)) }
        }
        func logit(_ index: Int) -> Float {
            let raw = cblas_sdot(Int32(d), row(index), 1, hidden, 1)
            return modelConfig.cappedLogit(raw)
        }
        /// One worker's running maximum, Σ exp(z − maximum), Σ exp(z − maximum)·(dz/draw)·row.
        struct Partial { var maximum = -Float.infinity, sum = 0.0, weighted: [Float] }
        let chunk = 128, chunks = (count + chunk - 1) / chunk, workers = min(Parallel.threads, chunks)
        var partials = [Partial](repeating: Partial(weighted: [Float](repeating: 0, count: share == nil ? 0 : d)), count: workers)
        partials.withUnsafeMutableBufferPointer { partials in
            nonisolated(unsafe) let partials = partials
            Parallel.forEach(workers) { worker in
                var p = partials[worker], z = [Float](repeating: 0, count: chunk), slope = [Float](repeating: 1, count: chunk)
                var buffer: [Float] = []
                for c in (chunks * worker / workers)..<(chunks * (worker + 1) / workers) {
                    let first = c * chunk, n = min(chunk, count - first)
                    source.withRows(first, n, d: d, buffer: &buffer) { block in
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(d), 1, block, Int32(d), hidden, 1, 0, &z, 1)
                        if modelConfig.finalSoftcap != nil {
                            for i in 0..<n {
                                z[i] = modelConfig.cappedLogit(z[i])
                                slope[i] = modelConfig.cappedLogitSlope(z[i])
                            }
                        }
                        let top = z[..<n].max()!
                        if top > p.maximum {
                            let rescale = exp(p.maximum - top)
                            p.sum *= Double(rescale)
                            for i in 0..<p.weighted.count { p.weighted[i] *= rescale }
                            p.maximum = top
                        }
                        for i in 0..<n {
                            let e = exp(z[i] - p.maximum)
                            p.sum += Double(e)
                            z[i] = e * slope[i]
                        }
                        if share != nil {
                            p.weighted.withUnsafeMutableBufferPointer { g in
                                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(n), Int32(d), 1, block, Int32(d), z, 1, 1, g.baseAddress!, 1)
                            }
                        }
                    }
                }
                partials[worker] = p
            }
        }
        let maximum = partials.map(\.maximum).max()!
        let sum = partials.reduce(0.0) { $0 + $1.sum * Double(exp($1.maximum - maximum)) }
        let targetLogit = logit(target)
        let loss = Double(maximum) + log(sum) - Double(targetLogit)
        guard let share else { return (loss, answers.map(logit), nil) }
        // share · (Σ softmax·slope·row − slope(target)·row(target)).
        var dHidden = [Float](repeating: 0, count: d)
        for p in partials {
            let factor = Float(Double(exp(p.maximum - maximum)) / sum) * share
            for i in 0..<d { dHidden[i] += factor * p.weighted[i] }
        }
        let targetSlope = modelConfig.cappedLogitSlope(targetLogit)
        let targetRow = row(target)
        for i in 0..<d { dHidden[i] -= share * targetSlope * targetRow[i] }
        return (loss, answers.map(logit), dHidden)
    }

    /// The full vocabulary's rows: a float32 copy made once for a base in float32 (the
    /// exact path), the file's rows where they lie for a base in codes.
    func outputRows() -> OutputRows {
        let projection = model.output ?? model.embedding
        guard model.precision == .f32 else { return .file(model.file, projection) }
        lock.lock()
        defer { lock.unlock() }
        if let outputMatrix { return .float(outputMatrix) }
        let matrix = model.file.dequantize(projection)
        outputMatrix = matrix
        return .float(matrix)
    }
}
