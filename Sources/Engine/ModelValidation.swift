import Foundation
import GGUF

// The checks a model's hyperparameters pass before anything is allocated: each one
// sane on its own, the ones that must agree agreeing, and every tensor the forward
// pass reads present with exactly the shape they give. The tensors' shapes were
// checked against the file's size when it was read, so after this no size the engine
// allocates can exceed a small multiple of the file: a corrupted or hostile file gives
// an error naming the file and the key, never a trap or a 447 GB allocation.

extension ModelConfig {
    /// No real model comes near this in any one size (the largest widths are in the
    /// tens of thousands); below it, products of two sizes cannot overflow.
    static let sizeLimit = 1 << 24

    /// Throws an EngineError naming the file and the key of the first value that is
    /// impossible or disagrees with the tensors.
    public func validate(_ file: GGUFFile) throws {
        let p = architecture + "."
        func fail(_ key: String, _ message: String) -> EngineError {
            EngineError(message: "\(file.path): \(key) \(message)")
        }

        // Optional keys the config read with a default: present but unreadable (a
        // string, a uint64 past Int.max, an array) must not quietly become the default.
        for key in [
            "attention.head_count_kv", "attention.key_length", "attention.value_length", "rope.dimension_count",
            "context_length", "attention.sliding_window"
        ] {
            if let value = file.metadata[p + key], value.int == nil { throw fail(p + key, "is \(Self.kind(value)), not an integer") }
        }
        for key in ["attention.layer_norm_rms_epsilon", "rope.freq_base", "attn_logit_softcapping", "final_logit_softcapping"] {
            if let value = file.metadata[p + key], value.double == nil { throw fail(p + key, "is \(Self.kind(value)), not a number") }
        }

        // Each size alone.
        func size(_ key: String, _ value: Int, from least: Int = 1) throws {
            guard value >= least else { throw fail(p + key, "is \(value); it must be at least \(least)") }
            guard value <= Self.sizeLimit else { throw fail(p + key, "is \(value), more than any model has (at most \(Self.sizeLimit))") }
        }
        try size("block_count", blocks)
        try size("embedding_length", embedding)
        try size("attention.head_count", heads)
        try size("attention.head_count_kv", kvHeads)
        // RoPE rotates pairs of a head's values.
        try size("attention.key_length", headDim, from: 2)
        guard headDim % 2 == 0 else { throw fail(p + "attention.key_length", "is \(headDim); RoPE needs an even head size") }
        try size("feed_forward_length", feedForward)
        try size("rope.dimension_count", ropeDim, from: 2)
        guard ropeDim % 2 == 0, ropeDim <= headDim else {
            throw fail(p + "rope.dimension_count", "is \(ropeDim); it must be even and at most the head size \(headDim)")
        }
        guard contextLength >= 1 else { throw fail(p + "context_length", "is \(contextLength); it must be at least 1") }
        if let window = slidingWindow, window < 1 {
            throw fail(p + "attention.sliding_window", "is \(window); a window holds at least the token itself")
        }
        if let slidingBlocks, slidingBlocks.count != blocks {
            throw fail(
                p + "attention.sliding_window_pattern", "lists \(slidingBlocks.count) layers' flags (bools), not block_count's \(blocks)")
        }
        for (key, value) in [
            ("attention.layer_norm_rms_epsilon", epsilon), ("rope.freq_base", ropeBase),
            ("attn_logit_softcapping", attentionSoftcap), ("final_logit_softcapping", finalSoftcap)
        ] {
            if let value, !(value.isFinite && value > 0) { throw fail(p + key, "is \(value); it must be a positive finite number") }
        }

        // Sizes that must agree.
        guard heads % kvHeads == 0 else {
            throw fail(p + "attention.head_count_kv", "is \(kvHeads), which does not divide attention.head_count \(heads)")
        }
        if let valueLength = file.metadata[p + "attention.value_length"]?.int, valueLength != headDim {
            throw fail(p + "attention.value_length", "is \(valueLength); the engine needs it equal to the key length \(headDim)")
        }
        // Each block has its required tensors (nine): a count past that is no count of these.
        let required = BlockTensor.all.filter { $0.presence(in: family) == .required }.count
        guard blocks <= file.tensors.count / required else {
            throw fail(
                p + "block_count",
                "is \(blocks), but the file's \(file.tensors.count) tensors cannot hold that many layers (each has \(required))")
        }

        // Every tensor the forward pass reads, with the shape the sizes give (ggml
        // order: the row length first). Trailing 1s are no dimension (ggml pads to 4).
        func check(_ name: String, _ expected: [Int], _ keys: String, optional: Bool = false) throws {
            guard let tensor = file.tensor(named: name) else {
                if optional { return }
                throw EngineError(message: "\(file.path): tensor \(name) is missing")
            }
            func trimmed(_ dims: [Int]) -> [Int] { Array(dims.reversed().drop { $0 == 1 }.reversed()) }
            guard trimmed(tensor.dimensions) == trimmed(expected) else {
                throw EngineError(
                    message: "\(file.path): tensor \(name) is \(Self.shape(tensor.dimensions)), not the \(Self.shape(expected)) of \(keys)")
            }
        }
        let d = embedding, f = feedForward
        let dKey = "\(p)embedding_length \(d)", headKey = "\(p)attention.key_length \(headDim)"
        let qKeys = "\(dKey), \(p)attention.head_count \(heads) and \(headKey)"
        let kvKeys = "\(dKey), \(p)attention.head_count_kv \(kvHeads) and \(headKey)"
        let fKeys = "\(dKey) and \(p)feed_forward_length \(f)"
        for i in 0..<blocks {
            for tensor in BlockTensor.all {
                let keys =
                    switch tensor.sizes {
                    case .embedding: dKey
                    case .query: qKeys
                    case .keyValue: kvKeys
                    case .feedForward: fKeys
                    case .head: headKey
                    }
                try check("blk.\(i).\(tensor.name)", tensor.shape(self), keys, optional: tensor.presence(in: family) != .required)
            }
        }
        try check("output_norm.weight", [d], dKey)
        try check("rope_freqs.weight", [ropeDim / 2], "\(p)rope.dimension_count \(ropeDim)", optional: true)

        // The embedding (and the output projection, when untied) need a row for every
        // token the tokenizer can give: the answer tokens' logits read those rows.
        let vocabulary = file.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 1
        for name in ["token_embd.weight", "output.weight"] {
            guard let tensor = file.tensor(named: name) else {
                if name == "output.weight" { continue }
                throw EngineError(message: "\(file.path): tensor \(name) is missing")
            }
            guard tensor.dimensions.count <= 2, tensor.rowLength == d else {
                throw EngineError(
                    message: "\(file.path): tensor \(name) is \(Self.shape(tensor.dimensions)), not rows of \(d) as \(dKey) says")
            }
            guard tensor.rowCount >= vocabulary else {
                throw EngineError(
                    message:
                        "\(file.path): tensor \(name) has \(tensor.rowCount) rows, fewer than the \(vocabulary) tokens of tokenizer.ggml.tokens"
                )
            }
        }
    }

    static func shape(_ dimensions: [Int]) -> String { dimensions.map(String.init).joined(separator: "×") }

    /// A value's type, for messages (not its contents: an array may be megabytes).
    static func kind(_ value: GGUFValue) -> String {
        switch value {
        case .string: "a string"
        case .array: "an array"
        case .bool: "a bool"
        case .uint64(let v): "\(v)"
        default: "\(value)"
        }
    }
}
