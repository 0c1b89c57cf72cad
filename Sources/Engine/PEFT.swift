import Foundation

/// What PEFT's adapters mean and how they name things, in one place: adapter_config.json
/// (read and written), each family's Hugging Face module paths, the scale rule, and the
/// row order of q and k between Hugging Face's llama and llama.cpp's.
public enum PEFT {
    public typealias Module = LoRAAdapter.Module

    /// An adapter folder's two files.
    public static let configFile = "adapter_config.json", weightsFile = "adapter_model.safetensors"

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

        /// Reads an adapter_config.json, refusing what we cannot apply as PEFT would
        /// (other PEFT types, DoRA, Conv1D layouts, bias terms, per-module ranks).
        public init(path: String) throws {
            func problem(_ message: String) -> EngineError { EngineError(message: "\(path): \(message)") }
            // A config is a few KB; a huge (or sparse) file is not read into memory.
            if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > 1 << 24 {
                throw problem("is \(size) bytes; an adapter config is a few KB")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw problem("cannot be read (an adapter folder holds \(configFile) and \(weightsFile))")
            }
            do {
                self = try JSONDecoder().decode(Config.self, from: data)
            } catch {
                throw problem("is not a PEFT LoRA config: \(error)")
            }
            if let type = peftType, type != "LORA" { throw problem("peft_type is \(type); only LORA adapters are supported") }
            guard r > 0 else { throw problem("r is \(r); the rank must be at least 1") }
            if useDora == true { throw problem("use_dora is true; DoRA adapters are not supported") }
            if fanInFanOut == true { throw problem("fan_in_fan_out is true (GPT-2 style Conv1D weights), which no supported family uses") }
            if let bias, bias != "none" { throw problem("bias is \"\(bias)\"; only adapters without bias terms are supported") }
            if !(rankPattern ?? [:]).isEmpty || !(alphaPattern ?? [:]).isEmpty {
                throw problem("rank_pattern/alpha_pattern (per-module ranks) are not supported")
            }
        }
    }

    /// adapter_config.json as PEFT writes it: the keys PEFT needs to rebuild the adapter,
    /// and the ones `Config` checks.
    public static func configJSON(baseModel: String, rank: Int, alpha: Double, rsLoRA: Bool, dropout: Double, modules: [Module]) throws
        -> Data
    {
        let config: [String: Any] = [
            "base_model_name_or_path": baseModel, "peft_type": "LORA", "task_type": "CAUSAL_LM",
            "r": rank, "lora_alpha": alpha, "lora_dropout": dropout, "use_rslora": rsLoRA,
            "target_modules": modules.map(\.rawValue), "bias": "none", "fan_in_fan_out": false,
            "init_lora_weights": true, "inference_mode": true, "use_dora": false,
            "modules_to_save": NSNull(), "rank_pattern": [String: Int](), "alpha_pattern": [String: Double]()
        ]
        return try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
    }

    /// Where a family's Hugging Face model keeps its blocks and their linear layers.
    public struct Names: Sendable, Equatable {
        /// The path of the list of blocks (model.layers).
        public let layers: String
        /// Each module's path inside a block (self_attn.q_proj).
        public let modules: [Module: String]

        public static let standard = Names(
            layers: "model.layers",
            modules: [
                .q: "self_attn.q_proj", .k: "self_attn.k_proj", .v: "self_attn.v_proj", .o: "self_attn.o_proj",
                .gate: "mlp.gate_proj", .up: "mlp.up_proj", .down: "mlp.down_proj"
            ])
        /// EXAONE 3.0 and 3.5 with trust_remote_code (LGAI's modeling_exaone.py, as
        /// llama.cpp's converter maps it): read, never written (transformers 5 loads EXAONE
        /// 3 as llama, with the standard names).
        public static let exaone = Names(
            layers: "transformer.h",
            modules: [
                .q: "attn.attention.q_proj", .k: "attn.attention.k_proj", .v: "attn.attention.v_proj", .o: "attn.attention.out_proj",
                .gate: "mlp.c_fc_0", .up: "mlp.c_fc_1", .down: "mlp.c_proj"
            ])
        static let all = [standard, exaone]

        /// PEFT's name of a layer's module, before .lora_A.weight.
        public func tensorPrefix(layer: Int, module: Module) -> String { "base_model.model.\(layers).\(layer).\(modules[module]!)" }
    }

    /// The layer and module a PEFT tensor prefix names, in any family's naming
    /// (…model.layers.3.self_attn.q_proj, …transformer.h.3.attn.attention.q_proj).
    public static func locate(_ prefix: String) -> (layer: Int, module: Module)? {
        for names in Names.all {
            for (module, path) in names.modules where prefix.hasSuffix("." + path) {
                let parts = prefix.dropLast(path.count + 1).split(separator: ".")
                guard let last = parts.last, let layer = Int(last), parts.dropLast().joined(separator: ".").hasSuffix(names.layers) else {
                    continue
                }
                return (layer, module)
            }
        }
        return nil
    }

    /// Every module name a PEFT adapter may use, for error messages.
    public static var knownPaths: String {
        Names.all.map { names in "\(names.layers).N.(\(Module.allCases.map { names.modules[$0]! }.joined(separator: "|")))" }.joined(
            separator: " or ")
    }

    /// PEFT's scale of B·A: alpha/r, or alpha/√r with rsLoRA.
    public static func scale(alpha: Double, rank: Int, rsLoRA: Bool) -> Double {
        rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }

    /// Rows of each head from Hugging Face's order (first halves, then second halves
    /// of the rotated pairs) to llama.cpp's (pairs adjacent): row h·D + 2i + j comes
    /// from h·D + j·D/2 + i. llama.cpp's converter reorders llama's q and k so; an
    /// adapter's B rows (outputs) for q and k must follow.
    public static func permuteForRope(_ rows: [Float], heads: Int, rowLength: Int) -> [Float] {
        reorder(rows, heads: heads, rowLength: rowLength, toLlamaCpp: true)
    }

    /// The inverse: llama.cpp's order back to Hugging Face's.
    public static func unpermuteForRope(_ rows: [Float], heads: Int, rowLength: Int) -> [Float] {
        reorder(rows, heads: heads, rowLength: rowLength, toLlamaCpp: false)
    }

    static func reorder(_ rows: [Float], heads: Int, rowLength: Int, toLlamaCpp: Bool) -> [Float] {
        let headDim = rows.count / rowLength / heads, half = headDim / 2
        var result = rows
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let llamaCpp = (h * headDim + 2 * i + j) * rowLength, huggingFace = (h * headDim + j * half + i) * rowLength
                    let (to, from) = toLlamaCpp ? (llamaCpp, huggingFace) : (huggingFace, llamaCpp)
                    result[to..<to + rowLength] = rows[from..<from + rowLength]
                }
            }
        }
        return result
    }
}
