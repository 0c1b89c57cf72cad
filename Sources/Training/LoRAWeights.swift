import Engine
import Ensemble
import Foundation

/// The trainable weights: LoRA's A (r × in) and B (out × r) for each adapted linear
/// layer, all in one flat buffer (so that the optimiser, gradient clipping and
/// accumulation are loops over one array; `Slot` says where each matrix lies). Rows
/// of B follow the engine's row order (llama.cpp's permuted q and k for llama);
/// PEFT's order is restored when saving.
public struct LoRAWeights: Sendable {
    public typealias Module = LoRAAdapter.Module

    /// Where one adapted layer's A and B are in `values`.
    public struct Slot: Sendable, Equatable {
        public let block: Int
        public let module: Module
        public let inputs: Int, outputs: Int
        public let a: Int, b: Int
    }

    public let rank: Int
    public let alpha: Double
    public let rsLoRA: Bool
    public let modules: [Module]
    public let slots: [Slot]
    public var values: [Float]
    private let slotIndex: [Int: Int]

    /// PEFT's scale: alpha/r, or alpha/√r with rsLoRA.
    public var scale: Float { Float(PEFT.scale(alpha: alpha, rank: rank, rsLoRA: rsLoRA)) }

    /// Zero weights of the right sizes for `modules` on every block of the model.
    public init(config: ModelConfig, modules: [Module], rank: Int, alpha: Double, rsLoRA: Bool) {
        precondition(rank >= 1)
        let q = config.queryWidth, kv = config.keyValueWidth, d = config.embedding, f = config.feedForward
        var slots: [Slot] = [], index: [Int: Int] = [:], offset = 0
        let ordered = Module.allCases.filter(modules.contains)
        for block in 0..<config.blocks {
            for module in ordered {
                let (outputs, inputs) =
                    switch module {
                    case .q: (q, d)
                    case .k, .v: (kv, d)
                    case .o: (d, q)
                    case .gate, .up: (f, d)
                    case .down: (d, f)
                    }
                index[Self.key(block, module)] = slots.count
                slots.append(Slot(block: block, module: module, inputs: inputs, outputs: outputs, a: offset, b: offset + rank * inputs))
                offset += rank * (inputs + outputs)
            }
        }
        self.rank = rank
        self.alpha = alpha
        self.rsLoRA = rsLoRA
        self.modules = ordered
        self.slots = slots
        slotIndex = index
        values = [Float](repeating: 0, count: offset)
    }

    static func key(_ block: Int, _ module: Module) -> Int { block * Module.allCases.count + Module.allCases.firstIndex(of: module)! }

    public func slot(block: Int, module: Module) -> Slot? {
        slotIndex[Self.key(block, module)].map { slots[$0] }
    }

    /// PEFT's default initialisation: A uniform in ±1/√in (kaiming_uniform_ with
    /// a = √5), B zero, so the adapted model starts as the base.
    public mutating func initialize(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for slot in slots {
            let bound = 1 / Float(slot.inputs).squareRoot()
            for i in slot.a..<slot.a + rank * slot.inputs { values[i] = bound * (2 * random.nextUnit() - 1) }
            for i in slot.b..<slot.b + slot.outputs * rank { values[i] = 0 }
        }
    }

    // MARK: - PEFT folders

    /// Whether B's rows are permuted between PEFT's order and the engine's.
    static func permuted(_ slot: Slot, _ config: ModelConfig) -> Bool {
        config.family.permutesQK && (slot.module == .q || slot.module == .k)
    }

    /// The tensors of adapter_model.safetensors, by PEFT's names.
    func peftTensors(config: ModelConfig) -> [(name: String, shape: [Int], values: [Float])] {
        slots.flatMap { slot -> [(name: String, shape: [Int], values: [Float])] in
            let a = Array(values[slot.a..<slot.a + rank * slot.inputs])
            var b = Array(values[slot.b..<slot.b + slot.outputs * rank])
            if Self.permuted(slot, config) {
                b = PEFT.unpermuteForRope(b, heads: slot.module == .q ? config.heads : config.kvHeads, rowLength: rank)
            }
            let name = PEFT.Names.standard.tensorPrefix(layer: slot.block, module: slot.module)
            return [(name + ".lora_A.weight", [rank, slot.inputs], a), (name + ".lora_B.weight", [slot.outputs, rank], b)]
        }
    }

    /// Writes the adapter folder (adapter_config.json, adapter_model.safetensors).
    public func save(to folder: URL, config: ModelConfig, baseModel: String, dropout: Double) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let json = try PEFT.configJSON(baseModel: baseModel, rank: rank, alpha: alpha, rsLoRA: rsLoRA, dropout: dropout, modules: modules)
        try json.write(to: folder.appendingPathComponent(PEFT.configFile))
        try Safetensors.write(peftTensors(config: config), to: folder.appendingPathComponent(PEFT.weightsFile))
    }

    /// The weights of a PEFT adapter folder (ours or PEFT's), for a model of `config`:
    /// every matrix must match this model's sizes.
    public init(adapter: LoRAAdapter, config: ModelConfig) throws {
        let modules = Array(Set(adapter.deltas.map(\.module)))
        self.init(config: config, modules: modules, rank: adapter.rank, alpha: adapter.alpha, rsLoRA: adapter.rsLoRA)
        if let made = adapter.architecture, made != config.architecture {
            throw TrainingError("\(adapter.path): the adapter is for \(made.prefix(80)), the model is \(config.architecture)")
        }
        var seen = Set<Int>()
        for delta in adapter.deltas {
            let name = "layers.\(delta.layer).\(delta.module.rawValue)"
            guard let slot = slot(block: delta.layer, module: delta.module) else {
                throw TrainingError(
                    "\(adapter.path): \(name) is past the model's \(config.blocks) layers: is the adapter for another base model?")
            }
            guard delta.inputs == slot.inputs, delta.outputs == slot.outputs else {
                throw TrainingError(
                    "\(adapter.path): \(name) maps \(delta.inputs) → \(delta.outputs) values, the model's maps \(slot.inputs) → \(slot.outputs): is the adapter for another base model?"
                )
            }
            seen.insert(Self.key(delta.layer, delta.module))
            let b =
                Self.permuted(slot, config) && adapter.qkRowOrder == .huggingFace
                ? PEFT.permuteForRope(delta.b, heads: delta.module == .q ? config.heads : config.kvHeads, rowLength: rank) : delta.b
            values.replaceSubrange(slot.a..<slot.a + rank * slot.inputs, with: delta.a)
            values.replaceSubrange(slot.b..<slot.b + slot.outputs * rank, with: b)
        }
        if let missing = slots.first(where: { !seen.contains(Self.key($0.block, $0.module)) }) {
            throw TrainingError(
                "\(adapter.path): layers.\(missing.block).\(missing.module.rawValue) is missing (the adapter covers \(modules.map(\.rawValue).sorted().joined(separator: ", ")) on some layers only)"
            )
        }
    }
}

extension SplitMix64 {
    /// Uniform in [0, 1), from the top 24 bits.
    mutating func nextUnit() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
