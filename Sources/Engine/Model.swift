import Foundation
import GGUF
import Tensor

public struct EngineError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A tensor's values, refused if any is NaN or infinite (naming the tensor and the
/// first such value): one makes every output it reaches NaN, or, where q8 quantises the
/// activations it reaches, a code with no trace. Every adapter tensor, and the norms and
/// biases a model reads whole, pass here.
func finite(_ values: [Float], tensor name: String, in file: String) throws -> [Float] {
    guard let index = values.firstIndex(where: { !$0.isFinite }) else { return values }
    throw EngineError(message: "\(file): tensor \(name) holds \(values[index]) (value \(index) of \(values.count)), not a finite number")
}

/// A model's sizes and settings: everything the forward pass needs to know, read from
/// the GGUF metadata and its family's entry in `Family.all`.
public struct ModelConfig: Sendable, Equatable {
    public static var supportedArchitectures: [String] { Family.all.map(\.architecture) }

    public var architecture: String { family.architecture }
    public var family: Family
    public var blocks: Int
    public var embedding: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var feedForward: Int
    public var epsilon: Float
    public var ropeBase: Float
    /// RoPE base of the sliding-window blocks (Gemma 3), else `ropeBase`.
    public var ropeBaseLocal: Float
    public var ropeDim: Int
    /// The sliding window's size, for the family's sliding blocks.
    public var slidingWindow: Int?
    /// Which blocks slide, where the file lists them (attention.sliding_window_pattern,
    /// one bool per block, as llama.cpp's newer converters write it); else the family's
    /// pattern.
    public var slidingBlocks: [Bool]?
    /// Gemma 2's soft caps: cap·tanh(x/cap) on attention scores and on the logits.
    public var attentionSoftcap: Float?
    public var finalSoftcap: Float?
    public var contextLength: Int

    public init(_ file: GGUFFile) throws {
        let metadata = file.metadata
        if metadata["general.type"]?.string == "adapter" {
            throw EngineError(
                message:
                    "\(file.path) is a LoRA adapter (general.type adapter), not a model: pass it with --adapter, and the model it was made for with --model"
            )
        }
        guard let architecture = metadata["general.architecture"]?.string else {
            throw EngineError(message: "\(file.path) names no architecture (general.architecture)")
        }
        guard let family = Family.named(architecture) else {
            throw EngineError(
                message:
                    "\(file.path): architecture '\(architecture)' is not supported (supported: \(ModelConfig.supportedArchitectures.joined(separator: ", ")))"
            )
        }
        func int(_ key: String) throws -> Int {
            guard let value = metadata["\(architecture).\(key)"]?.int else {
                throw EngineError(message: "\(file.path): \(architecture).\(key) is missing")
            }
            return value
        }
        func float(_ key: String, default value: Double) -> Float {
            Float(metadata["\(architecture).\(key)"]?.double ?? value)
        }
        self.family = family
        blocks = try int("block_count")
        embedding = try int("embedding_length")
        heads = try int("attention.head_count")
        kvHeads = (try? int("attention.head_count_kv")) ?? heads
        headDim = (try? int("attention.key_length")) ?? (heads > 0 ? embedding / heads : 0)
        feedForward = try int("feed_forward_length")
        epsilon = float("attention.layer_norm_rms_epsilon", default: 1e-6)
        ropeBase = float("rope.freq_base", default: 10_000)
        ropeDim = (try? int("rope.dimension_count")) ?? headDim
        contextLength = (try? int("context_length")) ?? 4096
        attentionSoftcap = metadata["\(architecture).attn_logit_softcapping"]?.double.map(Float.init)
        finalSoftcap = metadata["\(architecture).final_logit_softcapping"]?.double.map(Float.init)
        slidingWindow = family.slidingPattern == nil ? nil : try? int("attention.sliding_window")
        ropeBaseLocal = family.localRopeBase ?? ropeBase
        slidingBlocks = metadata["\(architecture).attention.sliding_window_pattern"]?.array?.compactMap(\.bool)
        try validate(file)
    }

    public func isSliding(_ block: Int) -> Bool {
        guard slidingWindow != nil, let pattern = family.slidingPattern else { return false }
        if let slidingBlocks { return slidingBlocks[block] }
        return block % pattern < pattern - 1
    }

    /// Whether a block's q and k rotate (EXAONE 4.0's global blocks do not).
    public func rotates(_ block: Int) -> Bool {
        family.ropeOnGlobalBlocks || slidingWindow == nil || isSliding(block)
    }

    /// A row of q (and of attention's output): every head's values.
    public var queryWidth: Int { heads * headDim }
    /// A row of k or of v: the key-value heads' values.
    public var keyValueWidth: Int { kvHeads * headDim }

    /// How a block's attention runs, one rule for the engine's kernel and the trainer's.
    public struct AttentionSettings: Sendable, Equatable {
        public let heads: Int, kvHeads: Int, headDim: Int
        /// Scores are q·k/√headDim.
        public let scale: Float
        /// cap·tanh(score/cap) before the softmax (Gemma 2).
        public let softcap: Float?
        /// Keys a query sees, itself included, on a sliding block; nil: every earlier one.
        public let window: Int?
    }

    public func attention(block: Int) -> AttentionSettings {
        AttentionSettings(
            heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 1 / Float(headDim).squareRoot(), softcap: attentionSoftcap,
            window: isSliding(block) ? slidingWindow : nil)
    }

    /// A logit after the final soft cap, cap·tanh(x/cap), where the model has one (Gemma 2).
    @inlinable public func cappedLogit(_ raw: Float) -> Float {
        finalSoftcap.map { $0 * tanh(raw / $0) } ?? raw
    }

    /// The capped logit's slope over the raw one (the trainer's), from the capped value:
    /// 1 − (y/cap)², 1 without a cap.
    @inlinable public func cappedLogitSlope(_ capped: Float) -> Float {
        finalSoftcap.map { 1 - (capped / $0) * (capped / $0) } ?? 1
    }
}

/// The keys and values of every block at every position of the last prompt a model
/// ran, for its next prompt to reuse over the tokens both start with (one cache per
/// model: they are that model's keys).
public struct PrefixCache: Sendable {
    var tokens: [Int32] = []
    var keys: [[Float]] = [], values: [[Float]] = []
    /// Positions of the last prompt that were taken from the cache rather than computed.
    public private(set) var reused = 0

    public init() {}

    init(tokens: [Int32], keys: [[Float]], values: [[Float]], reused: Int) {
        self.tokens = tokens
        self.keys = keys
        self.values = values
        self.reused = reused
    }

    func sharedPrefix(with other: [Int32]) -> Int {
        zip(tokens, other).prefix { $0 == $1 }.count
    }
}

/// A loaded model: the config, the blocks' weights in the form the precision keeps
/// (codes, or float32 dequantised once), and the token embedding left quantised in the
/// mapping (rows are dequantised as needed).
public final class Model: Sendable {
    /// One block's weights. q, k and v are stacked into one matrix, as are gate and up:
    /// one product each instead of three and two (the input is packed once, and the
    /// narrow k and v products, 256 columns for Gemma 3, join a wide one).
    package struct BlockWeights: Sendable {
        /// Absent where the family has only norms after attention and FFN.
        package var attentionNorm: [Float]?
        /// (q + 2·kv) × d: the rows of q, then k, then v.
        package var qkv: Linear
        package var output: Linear
        package var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        package var qNorm: [Float]?, kNorm: [Float]?
        package var postAttentionNorm: [Float]?
        package var ffnNorm: [Float]?
        /// 2·ff × d: the rows of gate, then up.
        package var gateUp: Linear
        package var down: Linear
        package var postFFNNorm: [Float]?

        package subscript(stack: Stack) -> Linear {
            switch stack {
            case .qkv: qkv
            case .output: output
            case .gateUp: gateUp
            case .down: down
            }
        }
    }

    /// The four stacked linear layers of a block.
    package enum Stack: CaseIterable, Sendable {
        case qkv, output, gateUp, down
        package var modules: [LoRAAdapter.Module] {
            switch self {
            case .qkv: [.q, .k, .v]
            case .output: [.o]
            case .gateUp: [.gate, .up]
            case .down: [.down]
            }
        }
    }

    /// One adapter delta placed in its stack: W[first..<first+outputs] += scale·B·A.
    struct PlacedDelta {
        var layer: Int, module: LoRAAdapter.Module, stack: Stack, firstOutput: Int, outputs: Int, inputs: Int, rank: Int
        var a: [Float], b: [Float], scale: Float
        /// The GGUF tensor it adapts (blk.N.attn_q.weight).
        var weightName: String { "blk.\(layer).\(module.tensorName).weight" }
    }

    public let config: ModelConfig
    public let file: GGUFFile
    /// The precision the blocks were loaded in (`auto` resolved for the file).
    public let precision: Precision
    package let blocks: [BlockWeights]
    package let outputNorm: [Float]
    /// RoPE's frequency divisors (rope_freqs: llama 3's and EXAONE 3.5's long-context
    /// scaling), ropeDim/2 of them.
    package let ropeFactors: [Float]?
    package let embedding: GGUFTensorInfo
    /// The output projection when it is not the (tied) embedding.
    package let output: GGUFTensorInfo?

    /// The precision of a model loaded without one: float32, the exact path (not `auto`:
    /// callers that want the file's own class ask for it).
    public static let defaultPrecision = Precision.f32

    /// The model, with the adapter's deltas merged into its float32 weights or beside
    /// its codes.
    public init(file: GGUFFile, adapter: LoRAAdapter? = nil, precision: Precision = defaultPrecision) throws {
        self.file = file
        config = try ModelConfig(file)
        self.precision = precision.resolved(for: file)
        let config = self.config, precision = self.precision
        func tensor(_ name: String) throws -> GGUFTensorInfo {
            guard let tensor = file.tensor(named: name) else { throw EngineError(message: "\(file.path): tensor \(name) is missing") }
            return tensor
        }
        func checked(_ name: String, _ count: Int) throws -> GGUFTensorInfo {
            let t = try tensor(name)
            guard t.elementCount == count else {
                throw EngineError(
                    message: "\(file.path): \(name) has \(t.elementCount) values, \(config.architecture) with these sizes needs \(count)")
            }
            return t
        }
        func weights(_ name: String, _ count: Int) throws -> [Float] {
            try finite(file.dequantize(try checked(name, count)), tensor: name, in: file.path)
        }
        func optional(_ name: String, _ count: Int) throws -> [Float]? {
            file.tensor(named: name) == nil ? nil : try weights(name, count)
        }
        let d = config.embedding
        let placed = try adapter.map { try Self.place($0, config: config, model: file.path) }
        // Block by block, so that at most one block's row-major float copy exists.
        blocks = try (0..<config.blocks).map { i in
            let p = "blk.\(i)."
            let deltas = placed?[i] ?? []
            func linear(_ stack: Stack) throws -> Linear {
                let tensors = try stack.modules.map { module in
                    let weight = BlockTensor.weight(module)
                    return try checked(p + weight.name, weight.count(config))
                }
                let mine = deltas.filter { $0.stack == stack }
                let outer = tensors.reduce(0) { $0 + $1.rowCount }, inner = tensors[0].rowLength
                if precision == .f32 || inner % QuantizedMatrix.blockSize != 0 {
                    var w = tensors.flatMap { file.dequantize($0) }
                    for delta in mine {
                        w.withUnsafeMutableBufferPointer { w in
                            Kernels.addProduct(
                                delta.b, rows: delta.outputs, inner: delta.rank, delta.a, cols: delta.inputs, scale: delta.scale,
                                into: w.baseAddress! + delta.firstOutput * delta.inputs)
                        }
                    }
                    defer { tensors.forEach(file.releasePages) }
                    return Linear(float: PackedMatrix(w, outer: outer, inner: inner))
                }
                defer { tensors.forEach(file.releasePages) }
                return Linear(
                    file: file, stacking: tensors, deltas: mine.map { ($0.firstOutput, $0.outputs, $0.rank, $0.a, $0.b, $0.scale) },
                    activationParts: precision == .q8x2 ? 2 : 1)
            }
            func vector(_ tensor: BlockTensor) throws -> [Float]? {
                switch tensor.presence(in: config.family) {
                case .required: try weights(p + tensor.name, tensor.count(config))
                case .optional: try optional(p + tensor.name, tensor.count(config))
                case .unread: nil
                }
            }
            return BlockWeights(
                attentionNorm: try vector(.attentionNorm), qkv: try linear(.qkv), output: try linear(.output),
                qBias: try vector(.qBias), kBias: try vector(.kBias), vBias: try vector(.vBias),
                qNorm: try vector(.qNorm), kNorm: try vector(.kNorm), postAttentionNorm: try vector(.postAttentionNorm),
                ffnNorm: try vector(.ffnNorm), gateUp: try linear(.gateUp), down: try linear(.down),
                postFFNNorm: try vector(.postFFNNorm))
        }
        outputNorm = try weights("output_norm.weight", d)
        ropeFactors = try optional("rope_freqs.weight", config.ropeDim / 2)
        embedding = try tensor("token_embd.weight")
        output = file.tensor(named: "output.weight")
    }

    public convenience init(path: String, adapter: LoRAAdapter? = nil, precision: Precision = defaultPrecision) throws {
        try self.init(file: try GGUFFile(path: path), adapter: adapter, precision: precision)
    }

    /// Bytes of the blocks' linear layers' weights held in memory (the mapping's
    /// embedding not counted).
    public var layerBytes: Int {
        blocks.reduce(0) { $0 + $1.qkv.byteCount + $1.output.byteCount + $1.gateUp.byteCount + $1.down.byteCount }
    }

    /// The adapter's deltas of each block in their stacks (B's rows in the engine's
    /// order), after checking that the adapter was made for this architecture and a
    /// model of these sizes.
    static func place(_ adapter: LoRAAdapter, config: ModelConfig, model path: String) throws -> [[PlacedDelta]] {
        if let made = adapter.architecture, made != config.architecture {
            throw EngineError(
                message: "\(adapter.path): the adapter is for \(made.prefix(80)), the model \(path) is \(config.architecture)")
        }
        if let delta = adapter.deltas.first(where: { $0.layer >= config.blocks }) {
            throw EngineError(
                message:
                    "\(adapter.path): layers.\(delta.layer).\(delta.module.rawValue) is past the model's \(config.blocks) layers: is the adapter for another base model?"
            )
        }
        return try (0..<config.blocks).map { try place(adapter, block: $0, config: config) }
    }

    /// A module's rows in its stack (the first of them there, how many) and its inputs.
    package static func rows(of module: LoRAAdapter.Module, _ config: ModelConfig) -> (stack: Stack, first: Int, count: Int, inputs: Int) {
        let q = config.queryWidth, kv = config.keyValueWidth, d = config.embedding, f = config.feedForward
        return switch module {
        case .q: (.qkv, 0, q, d)
        case .k: (.qkv, q, kv, d)
        case .v: (.qkv, q + kv, kv, d)
        case .o: (.output, 0, d, q)
        case .gate: (.gateUp, 0, f, d)
        case .up: (.gateUp, f, f, d)
        case .down: (.down, 0, d, f)
        }
    }

    static func place(_ adapter: LoRAAdapter, block index: Int, config: ModelConfig) throws -> [PlacedDelta] {
        try adapter.deltas.filter { $0.layer == index }.map { delta in
            let (stack, firstRow, outputs, inputs) = rows(of: delta.module, config)
            let name = "layers.\(delta.layer).\(delta.module.rawValue)"
            guard delta.outputs == outputs, delta.inputs == inputs else {
                throw EngineError(
                    message:
                        "\(adapter.path): \(name) maps \(delta.inputs) → \(delta.outputs) values, the model's \(delta.module.rawValue) maps \(inputs) → \(outputs): is the adapter for another base model?"
                )
            }
            var b = delta.b
            // llama.cpp's converter reorders the rows of llama's q and k so that RoPE
            // rotates adjacent pairs; B's rows (outputs) must follow the same order.
            if config.family.permutesQK, adapter.qkRowOrder == .huggingFace, delta.module == .q || delta.module == .k {
                b = PEFT.permuteForRope(b, heads: delta.module == .q ? config.heads : config.kvHeads, rowLength: delta.rank)
            }
            return PlacedDelta(
                layer: index, module: delta.module, stack: stack, firstOutput: firstRow, outputs: outputs, inputs: inputs, rank: delta.rank,
                a: delta.a, b: b, scale: adapter.scale)
        }
    }

    /// Runs the forward pass over the tokens: the last position's hidden state after the
    /// final norm.
    public func forwardToFinalHidden(_ tokens: [Int32]) throws -> [Float] {
        var cache = PrefixCache()
        return try forwardToFinalHidden(tokens, cache: &cache)
    }

    /// The same, reusing the keys and values of the tokens this prompt shares with the
    /// previous one (items on one passage share everything before the question), and
    /// leaving this prompt's in the cache for the next.
    public func forwardToFinalHidden(_ tokens: [Int32], cache: inout PrefixCache) throws -> [Float] {
        guard !tokens.isEmpty else { throw EngineError(message: "no tokens to run") }
        let t = tokens.count, d = config.embedding
        // Positions before `start` come from the cache; the last one is always computed.
        let start = cache.keys.count == blocks.count ? min(cache.sharedPrefix(with: tokens), t - 1) : 0
        let rows = t - start
        var x = try embed(tokens[start...])
        let rope = ropeTables(positions: t)
        var buffers = BlockBuffers(config, rows: rows)
        var pass = CachedPass(model: self, cache: cache, start: start)
        for index in blocks.indices {
            // After the last block's keys and values only the last position matters.
            forward(
                block: index, x: &x, rows: rows, first: index == blocks.count - 1 ? rows - 1 : 0, firstPosition: start,
                rope: rope, buffers: &buffers, pass: &pass)
        }
        cache = PrefixCache(tokens: tokens, keys: pass.keys, values: pass.values, reused: start)
        var last = [Float](repeating: 0, count: d)
        x.withUnsafeBufferPointer { x in
            Kernels.rmsNorm(x.baseAddress! + (rows - 1) * d, rows: 1, dim: d, weight: outputNorm, epsilon: config.epsilon, into: &last)
        }
        return last
    }

    /// The engine's pass through a block: the products as loaded (an adapter merged or
    /// beside the codes), attention over the cached keys and values of the positions
    /// before `start` and the block's own, which it collects for the next prompt.
    struct CachedPass: BlockPass {
        let model: Model, cache: PrefixCache, start: Int
        var keys: [[Float]] = [], values: [[Float]] = []

        func linear(_ stack: Stack, block: Int, _ x: UnsafePointer<Float>, rows: Int, stride: Int, into y: UnsafeMutablePointer<Float>) {
            model.blocks[block][stack].product(x, rows: rows, stride: stride, into: y)
        }

        mutating func attend(
            block index: Int, q: [Float], k: [Float], v: [Float], rows: Int, first: Int, into attended: UnsafeMutablePointer<Float>
        ) {
            let c = model.config, kvWidth = c.keyValueWidth, qWidth = c.queryWidth, a = c.attention(block: index)
            // This block's keys and values at every position: the cached ones, then these.
            keys.append(Array(start > 0 ? cache.keys[index][..<(start * kvWidth)] : []) + k[..<(rows * kvWidth)])
            values.append(Array(start > 0 ? cache.values[index][..<(start * kvWidth)] : []) + v[..<(rows * kvWidth)])
            q.withUnsafeBufferPointer { q in
                Kernels.attention(
                    q: q.baseAddress! + first * qWidth, k: keys[index], v: values[index], tokens: start + rows, firstQuery: start + first,
                    heads: a.heads, kvHeads: a.kvHeads, headDim: a.headDim, scale: a.scale, softcap: a.softcap, window: a.window,
                    into: attended)
            }
        }

        func keep(_ activation: BlockActivation, _ value: () -> [Float]) {}
    }

    /// Logits of the given tokens for a final hidden state: only those rows of the
    /// output projection are computed (Gemma's has 262,144).
    public func logits(_ hidden: [Float], tokens: [Int32]) -> [Float] {
        let projection = output ?? embedding
        return tokens.map { token in
            let row = file.dequantizeRow(projection, Int(token))
            var sum: Float = 0
            for i in 0..<hidden.count { sum += row[i] * hidden[i] }
            return config.cappedLogit(sum)
        }
    }
}
