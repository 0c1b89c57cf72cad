import Foundation
import GGUF

/// A LoRA adapter: a PEFT folder (adapter_config.json and adapter_model.safetensors,
/// tensors named as in base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight)
/// or llama.cpp's adapter GGUF (blk.N.attn_q.weight.lora_a). Each adapted linear layer
/// W (out × in) becomes W + scale·B·A, with A r × in, B out × r and scale alpha/r
/// (alpha/√r with rsLoRA).
public struct LoRAAdapter: Sendable {
    /// The linear layers LoRA may adapt, by PEFT's usual module names.
    public enum Module: String, Sendable, CaseIterable {
        case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
        case gate = "gate_proj", up = "up_proj", down = "down_proj"

        /// The GGUF tensor the module's weight is (blk.N.attn_q.weight).
        public var tensorName: String {
            switch self {
            case .q: "attn_q"
            case .k: "attn_k"
            case .v: "attn_v"
            case .o: "attn_output"
            case .gate: "ffn_gate"
            case .up: "ffn_up"
            case .down: "ffn_down"
            }
        }
    }

    /// The delta of one linear layer.
    public struct Delta: Sendable {
        public var layer: Int
        public var module: Module
        public var rank: Int
        /// r × in and out × r, row-major, as PEFT stores them.
        public var a: [Float], b: [Float]
        public var inputs: Int, outputs: Int
    }

    /// More layers than any model has.
    static let layerLimit = 100_000

    /// The folder or file read.
    public let path: String
    public let rank: Int
    /// As the adapter states it: scale = alpha/r, or alpha/√r with rsLoRA.
    public let alpha: Double, rsLoRA: Bool
    public let scale: Float
    /// The architecture the adapter was made for, where it says (GGUF adapters do).
    public let architecture: String?
    /// The order of B's q and k rows: they differ for llama, whose q and k llama.cpp's
    /// converter permutes (`PEFT.permuteForRope`).
    public enum RowOrder: Sendable { case huggingFace, llamaCpp }
    public let qkRowOrder: RowOrder
    public let deltas: [Delta]

    /// The adapter at `path`: a PEFT folder, or an adapter GGUF file.
    public init(path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw EngineError(message: "\(path): no such adapter (a PEFT folder, or llama.cpp's adapter .gguf)")
        }
        if isFolder.boolValue { try self.init(folder: path) } else { try self.init(ggufFile: path) }
    }

    public init(folder: String) throws {
        self.path = folder
        architecture = nil
        qkRowOrder = .huggingFace
        let configPath = (folder as NSString).appendingPathComponent(PEFT.configFile)
        let weightsPath = (folder as NSString).appendingPathComponent(PEFT.weightsFile)
        func problem(_ file: String, _ message: String) -> EngineError { EngineError(message: "\(file): \(message)") }
        let config = try PEFT.Config(path: configPath)
        rank = config.r
        alpha = config.loraAlpha
        rsLoRA = config.useRslora == true
        scale = Float(PEFT.scale(alpha: alpha, rank: rank, rsLoRA: rsLoRA))
        guard scale.isFinite else {
            throw problem(configPath, "lora_alpha \(config.loraAlpha) over r \(config.r) gives the scale \(scale), not a finite number")
        }

        let file = try Safetensors(path: weightsPath)
        // Pair each lora_A with its lora_B by the module path before them.
        var pairs: [String: (a: Safetensors.Tensor?, b: Safetensors.Tensor?)] = [:]
        for (name, tensor) in file.tensors {
            let parts = name.split(separator: ".").map(String.init)
            guard parts.count >= 3, parts.last == "weight", ["lora_A", "lora_B"].contains(parts[parts.count - 2]) else {
                throw problem(
                    weightsPath, "tensor \(name) is not a LoRA A or B weight; only LoRA on the attention and FFN projections is supported")
            }
            let key = parts.dropLast(2).joined(separator: ".")
            guard tensor.shape.count == 2 else { throw problem(weightsPath, "tensor \(name) has shape \(tensor.shape), not a matrix") }
            if parts[parts.count - 2] == "lora_A" {
                pairs[key, default: (nil, nil)].a = tensor
            } else {
                pairs[key, default: (nil, nil)].b = tensor
            }
        }
        guard !pairs.isEmpty else { throw problem(weightsPath, "holds no LoRA tensors") }
        let rank = config.r
        var adapted: Set<String> = []
        deltas = try pairs.keys.sorted().map { key in
            // A layer number past any model's (or negative) is no layer: it would
            // overflow the slot arithmetic of the trainer's weights.
            guard let (layer, module) = PEFT.locate(key), (0..<Self.layerLimit).contains(layer) else {
                throw problem(weightsPath, "\(key) is not a supported layer (expected …\(PEFT.knownPaths), N below \(Self.layerLimit))")
            }
            guard adapted.insert("\(layer).\(module.rawValue)").inserted else {
                throw problem(weightsPath, "two tensors adapt layers.\(layer).\(module.rawValue)")
            }
            guard let a = pairs[key]!.a, let b = pairs[key]!.b else {
                throw problem(
                    weightsPath, "\(key) has lora_\(pairs[key]!.a == nil ? "B" : "A") but not lora_\(pairs[key]!.a == nil ? "A" : "B")")
            }
            guard a.shape[0] == rank, b.shape[1] == rank else {
                throw problem(
                    weightsPath, "\(key): lora_A is \(a.shape[0])×\(a.shape[1]) and lora_B \(b.shape[0])×\(b.shape[1]), but r is \(rank)")
            }
            return Delta(
                layer: layer, module: module, rank: rank, a: try finite(a.values, tensor: key + ".lora_A.weight", in: weightsPath),
                b: try finite(b.values, tensor: key + ".lora_B.weight", in: weightsPath), inputs: a.shape[1], outputs: b.shape[0])
        }
    }

    /// llama.cpp's adapter GGUF (general.type adapter, adapter.type lora): tensors
    /// blk.N.attn_q.weight.lora_a (ggml [in, r], so r × in as PEFT's A) and .lora_b
    /// ([r, out]); scale adapter.lora.alpha / r, or 1 where alpha is 0 (llama.cpp's
    /// rule). For llama, B's q and k rows are in llama.cpp's order.
    public init(ggufFile path: String) throws {
        self.path = path
        func problem(_ message: String) -> EngineError { EngineError(message: "\(path): \(message)") }
        let file = try GGUFFile(path: path)
        let metadata = file.metadata
        guard metadata["general.type"]?.string == "adapter" else {
            throw problem(
                "is not an adapter (general.type is \(metadata["general.type"]?.string.map { "'\(excerpt($0))'" } ?? "missing")); a model is passed with --model"
            )
        }
        guard metadata["adapter.type"]?.string == "lora" else {
            throw problem(
                "adapter.type is \(metadata["adapter.type"]?.string.map { "'\(excerpt($0))'" } ?? "missing"); only LoRA adapters are supported"
            )
        }
        guard let architecture = metadata["general.architecture"]?.string else {
            throw problem("names no architecture (general.architecture)")
        }
        self.architecture = architecture
        qkRowOrder = .llamaCpp
        let statedAlpha = metadata["adapter.lora.alpha"]?.double ?? 0
        guard statedAlpha.isFinite, statedAlpha >= 0 else { throw problem("adapter.lora.alpha is \(statedAlpha), not a finite number ≥ 0") }
        let modules = Dictionary(uniqueKeysWithValues: Module.allCases.map { ($0.tensorName, $0) })
        var pairs: [String: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        for tensor in file.tensors {
            let name = tensor.name
            guard name.hasSuffix(".weight.lora_a") || name.hasSuffix(".weight.lora_b") else {
                throw problem("tensor \(excerpt(name)) is not a LoRA A or B weight (NAME.weight.lora_a or .lora_b)")
            }
            guard tensor.dimensions.count == 2 else {
                throw problem("tensor \(excerpt(name)) has \(tensor.dimensions.count) dimensions, not a matrix's 2")
            }
            let key = String(name.dropLast(".weight.lora_a".count))
            if name.hasSuffix("_a") { pairs[key, default: (nil, nil)].a = tensor } else { pairs[key, default: (nil, nil)].b = tensor }
        }
        guard let firstKey = pairs.keys.min(), let first = pairs[firstKey]!.a ?? pairs[firstKey]!.b else {
            throw problem("holds no LoRA tensors")
        }
        // ggml order: A is [in, r], B is [r, out].
        let rank = first.name.hasSuffix("_a") ? first.dimensions[1] : first.dimensions[0]
        guard rank >= 1 else { throw problem("\(excerpt(first.name)) has rank \(rank); the rank must be at least 1") }
        deltas = try pairs.keys.sorted().map { key in
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), (0..<Self.layerLimit).contains(layer),
                let module = modules[String(parts[2])]
            else {
                throw problem(
                    "\(excerpt(key)) is not a supported layer (expected blk.N.(\(Module.allCases.map(\.tensorName).joined(separator: "|"))), N below \(Self.layerLimit))"
                )
            }
            guard let a = pairs[key]!.a, let b = pairs[key]!.b else {
                throw problem("\(key) has lora_\(pairs[key]!.a == nil ? "b" : "a") but not lora_\(pairs[key]!.a == nil ? "a" : "b")")
            }
            guard a.dimensions[1] == rank, b.dimensions[0] == rank else {
                throw problem(
                    "\(key): lora_a is [\(a.dimensions[0]), \(a.dimensions[1])] and lora_b [\(b.dimensions[0]), \(b.dimensions[1])]; every pair needs the rank \(rank)"
                )
            }
            let outputs = b.dimensions[1], inputs = a.dimensions[0]
            return Delta(
                layer: layer, module: module, rank: rank, a: try finite(file.dequantize(a), tensor: excerpt(a.name), in: path),
                b: try finite(file.dequantize(b), tensor: excerpt(b.name), in: path), inputs: inputs, outputs: outputs)
        }
        self.rank = rank
        // llama.cpp scales by alpha/r, or by 1 where alpha is 0: kept as PEFT's alpha/r.
        alpha = statedAlpha == 0 ? Double(rank) : statedAlpha
        rsLoRA = false
        scale = Float(alpha / Double(rank))
    }
}

extension LoRAAdapter {
    /// llama.cpp's adapter GGUF of this adapter for a model of `config` (checked as
    /// `Model` checks it): tensors blk.N.attn_q.weight.lora_a (ggml [in, r]) and .lora_b
    /// ([r, out]) in float32, B's rows in llama.cpp's order (permuted for llama's q and
    /// k), and adapter.lora.alpha = scale·r, as llama.cpp scales by alpha/r (so an
    /// rsLoRA adapter keeps its scale). `base` names the model and its sha256.
    public func ggufWriter(config: ModelConfig, base: (name: String, sha256: String)) throws -> GGUFWriter {
        let placed = try Model.place(self, config: config, model: base.name).joined()
        var writer = GGUFWriter()
        writer.set("general.architecture", .string(config.architecture))
        writer.set("general.type", .string("adapter"))
        writer.set("adapter.type", .string("lora"))
        writer.set("adapter.lora.alpha", .float32(scale * Float(rank)))
        writer.set("general.base_model.count", .uint32(1))
        writer.set("general.base_model.0.name", .string(base.name))
        writer.set("suneung.base_model.sha256", .string(base.sha256))
        writer.tensors = placed.flatMap { delta in
            [
                GGUFWriter.Tensor(name: delta.weightName + ".lora_a", dimensions: [delta.inputs, delta.rank], values: delta.a),
                GGUFWriter.Tensor(name: delta.weightName + ".lora_b", dimensions: [delta.rank, delta.outputs], values: delta.b)
            ]
        }
        return writer
    }
}

/// A name from a file, shortened for an error message.
private func excerpt(_ text: String) -> String { text.count > 80 ? text.prefix(77) + "…" : text }
