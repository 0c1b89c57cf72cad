import Foundation

/// A PEFT LoRA adapter folder: adapter_config.json and adapter_model.safetensors, with
/// PEFT's tensor names (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight).
/// Each adapted linear layer W (out × in) becomes W + scale·B·A, with A r × in,
/// B out × r and scale alpha/r (alpha/√r with rsLoRA).
public struct LoRAAdapter: Sendable {
    /// The linear layers LoRA may adapt, by PEFT's module names.
    public enum Module: String, Sendable, CaseIterable {
        case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
        case gate = "gate_proj", up = "up_proj", down = "down_proj"
    }

    /// The keys of adapter_config.json that we read; the others (task type, dropout,
    /// PEFT's bookkeeping) do not change the forward pass.
    public struct Config: Decodable, Sendable {
        public var r: Int
        public var loraAlpha: Double
        public var useRslora: Bool?
        public var baseModelNameOrPath: String?
        public var peftType: String?
        public var rankPattern: [String: Int]?
        public var alphaPattern: [String: Double]?
        public var useDora: Bool?
        public var fanInFanOut: Bool?
        public var bias: String?

        enum CodingKeys: String, CodingKey {
            case r, bias
            case loraAlpha = "lora_alpha", useRslora = "use_rslora"
            case baseModelNameOrPath = "base_model_name_or_path", peftType = "peft_type", rankPattern = "rank_pattern"
            case alphaPattern = "alpha_pattern", useDora = "use_dora", fanInFanOut = "fan_in_fan_out"
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

    public let folder: String
    public let config: Config
    public let scale: Float
    public let deltas: [Delta]

    public init(folder: String) throws {
        self.folder = folder
        let configPath = (folder as NSString).appendingPathComponent("adapter_config.json")
        let weightsPath = (folder as NSString).appendingPathComponent("adapter_model.safetensors")
        func problem(_ file: String, _ message: String) -> EngineError { EngineError(message: "\(file): \(message)") }
        // A config is a few KB; a huge (or sparse) file is not read into memory.
        if let size = (try? FileManager.default.attributesOfItem(atPath: configPath))?[.size] as? Int, size > 1 << 24 {
            throw problem(configPath, "is \(size) bytes; an adapter config is a few KB")
        }
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw problem(configPath, "cannot be read (an adapter folder holds adapter_config.json and adapter_model.safetensors)")
        }
        do {
            config = try JSONDecoder().decode(Config.self, from: configData)
        } catch {
            throw problem(configPath, "is not a PEFT LoRA config: \(error)")
        }
        if let type = config.peftType, type != "LORA" { throw problem(configPath, "peft_type is \(type); only LORA adapters are supported") }
        guard config.r > 0 else { throw problem(configPath, "r is \(config.r); the rank must be at least 1") }
        if config.useDora == true { throw problem(configPath, "use_dora is true; DoRA adapters are not supported") }
        if config.fanInFanOut == true { throw problem(configPath, "fan_in_fan_out is true (GPT-2 style Conv1D weights), which no supported family uses") }
        if let bias = config.bias, bias != "none" { throw problem(configPath, "bias is \"\(bias)\"; only adapters without bias terms are supported") }
        if !(config.rankPattern ?? [:]).isEmpty || !(config.alphaPattern ?? [:]).isEmpty {
            throw problem(configPath, "rank_pattern/alpha_pattern (per-module ranks) are not supported")
        }
        scale = Float(PEFT.scale(alpha: config.loraAlpha, rank: config.r, rsLoRA: config.useRslora == true))
        guard scale.isFinite else { throw problem(configPath, "lora_alpha \(config.loraAlpha) over r \(config.r) gives the scale \(scale), not a finite number") }

        let file = try Safetensors(path: weightsPath)
        // Pair each lora_A with its lora_B by the module path before them.
        var pairs: [String: (a: Safetensors.Tensor?, b: Safetensors.Tensor?)] = [:]
        for (name, tensor) in file.tensors {
            let parts = name.split(separator: ".").map(String.init)
            guard parts.count >= 3, parts.last == "weight", ["lora_A", "lora_B"].contains(parts[parts.count - 2]) else {
                throw problem(weightsPath, "tensor \(name) is not a LoRA A or B weight; only LoRA on the attention and FFN projections is supported")
            }
            let key = parts.dropLast(2).joined(separator: ".")
            guard tensor.shape.count == 2 else { throw problem(weightsPath, "tensor \(name) has shape \(tensor.shape), not a matrix") }
            if parts[parts.count - 2] == "lora_A" { pairs[key, default: (nil, nil)].a = tensor } else { pairs[key, default: (nil, nil)].b = tensor }
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
                throw problem(weightsPath, "\(key) has lora_\(pairs[key]!.a == nil ? "B" : "A") but not lora_\(pairs[key]!.a == nil ? "A" : "B")")
            }
            guard a.shape[0] == rank, b.shape[1] == rank else {
                throw problem(weightsPath, "\(key): lora_A is \(a.shape[0])×\(a.shape[1]) and lora_B \(b.shape[0])×\(b.shape[1]), but r is \(rank)")
            }
            return Delta(layer: layer, module: module, rank: rank, a: a.values, b: b.values, inputs: a.shape[1], outputs: b.shape[0])
        }
    }
}
