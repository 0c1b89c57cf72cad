/// One tensor of a transformer block, as GGUF names it after `blk.N.`, with the shape
/// the config gives it and whether the family needs it: the one table that validation
/// checks and loading reads (ggml's `type_traits` pattern), in validation's order.
package struct BlockTensor: Sendable {
    /// Whether a family's block must have the tensor, may have it, or has it unread
    /// (a pre-norm in a family without pre-norms: checked if present, never loaded).
    package enum Presence: Sendable { case required, optional, unread }

    /// The metadata keys the shape comes from, for messages.
    package enum Sizes: Sendable { case embedding, query, keyValue, feedForward, head }

    /// The name after `blk.N.`.
    package let name: String
    let dimensions: @Sendable (ModelConfig) -> [Int]
    package let sizes: Sizes
    let presence: @Sendable (Family) -> Presence

    /// ggml order: the row length first.
    package func shape(_ config: ModelConfig) -> [Int] { dimensions(config) }
    package func count(_ config: ModelConfig) -> Int { dimensions(config).reduce(1, *) }
    package func presence(in family: Family) -> Presence { presence(family) }

    /// A stacked linear layer's weight: inputs × outputs, as `Model.rows(of:)` places it.
    package static func weight(_ module: LoRAAdapter.Module) -> BlockTensor {
        let sizes: Sizes =
            switch module {
            case .q, .o: .query
            case .k, .v: .keyValue
            case .gate, .up, .down: .feedForward
            }
        return BlockTensor(
            name: module.tensorName + ".weight",
            dimensions: { c in
                let rows = Model.rows(of: module, c)
                return [rows.inputs, rows.count]
            }, sizes: sizes, presence: { _ in .required })
    }

    static func vector(_ name: String, _ sizes: Sizes, _ presence: @escaping @Sendable (Family) -> Presence) -> BlockTensor {
        BlockTensor(
            name: name,
            dimensions: { c in
                switch sizes {
                case .embedding: [c.embedding]
                case .query: [c.queryWidth]
                case .keyValue: [c.keyValueWidth]
                case .feedForward: [c.feedForward]
                case .head: [c.headDim]
                }
            }, sizes: sizes, presence: presence)
    }

    /// Norms before attention and FFN, or (EXAONE 4.0) only after them.
    static func preNorm(_ family: Family) -> Presence { family.preNorms ? .required : .unread }
    static func postNorm(_ family: Family) -> Presence { family.preNorms ? .optional : .required }
    static func optional(_ family: Family) -> Presence { .optional }

    package static let attentionNorm = vector("attn_norm.weight", .embedding, preNorm)
    package static let qBias = vector("attn_q.bias", .query, optional)
    package static let kBias = vector("attn_k.bias", .keyValue, optional)
    package static let vBias = vector("attn_v.bias", .keyValue, optional)
    package static let qNorm = vector("attn_q_norm.weight", .head, optional)
    package static let kNorm = vector("attn_k_norm.weight", .head, optional)
    package static let postAttentionNorm = vector("post_attention_norm.weight", .embedding, postNorm)
    package static let ffnNorm = vector("ffn_norm.weight", .embedding, preNorm)
    package static let postFFNNorm = vector("post_ffw_norm.weight", .embedding, postNorm)

    package static let all: [BlockTensor] =
        [attentionNorm] + [.q, .k, .v, .o].map(weight) + [qBias, kBias, vBias, qNorm, kNorm, postAttentionNorm, ffnNorm]
        + [.gate, .up, .down].map(weight) + [postFFNNorm]
}
