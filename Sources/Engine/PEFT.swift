/// What PEFT's adapters mean and how they name things, in one place: each family's
/// Hugging Face module paths, the scale rule, and the row order of q and k between
/// Hugging Face's llama and llama.cpp's.
public enum PEFT {
    public typealias Module = LoRAAdapter.Module

    /// Where a family's Hugging Face model keeps its blocks and their linear layers.
    public struct Names: Sendable, Equatable {
        /// The path of the list of blocks (model.layers).
        public let layers: String
        /// Each module's path inside a block (self_attn.q_proj).
        public let modules: [Module: String]

        public static let standard = Names(layers: "model.layers", modules: [
            .q: "self_attn.q_proj", .k: "self_attn.k_proj", .v: "self_attn.v_proj", .o: "self_attn.o_proj",
            .gate: "mlp.gate_proj", .up: "mlp.up_proj", .down: "mlp.down_proj",
        ])
        /// EXAONE 3.0 and 3.5 with trust_remote_code (LGAI's modeling_exaone.py, as
        /// llama.cpp's converter maps it): read, never written (transformers 5 loads EXAONE
        /// 3 as llama, with the standard names).
        public static let exaone = Names(layers: "transformer.h", modules: [
            .q: "attn.attention.q_proj", .k: "attn.attention.k_proj", .v: "attn.attention.v_proj", .o: "attn.attention.out_proj",
            .gate: "mlp.c_fc_0", .up: "mlp.c_fc_1", .down: "mlp.c_proj",
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
                guard let last = parts.last, let layer = Int(last), parts.dropLast().joined(separator: ".").hasSuffix(names.layers) else { continue }
                return (layer, module)
            }
        }
        return nil
    }

    /// Every module name a PEFT adapter may use, for error messages.
    public static var knownPaths: String {
        Names.all.map { names in "\(names.layers).N.(\(Module.allCases.map { names.modules[$0]! }.joined(separator: "|")))" }.joined(separator: " or ")
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
