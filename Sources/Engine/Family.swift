/// What sets a model family apart, in one table: a new family is one entry here.
/// (What a family's file may hold — q/k/v biases, QK-norm, norms after attention and
/// FFN, soft caps — is read from its tensors and metadata, not listed.)
public struct Family: Sendable, Equatable {
    public let architecture: String
    /// Embeddings times √d (Gemma).
    public let scalesEmbedding: Bool
    /// A GELU (tanh) gate instead of SiLU (Gemma).
    public let gelu: Bool
    /// RoPE on the halves of each head (NeoX order). Where false (llama), llama.cpp's
    /// converter permuted q's and k's rows so that RoPE turns adjacent pairs, and an
    /// adapter's B rows for q and k must be permuted the same way.
    public let ropeNeox: Bool
    /// Sliding-window layers: all but every `slidingPattern`-th (Gemma 2: every other
    /// one from the first; Gemma 3: five of every six); nil where none.
    public let slidingPattern: Int?
    /// The sliding layers' RoPE base where it is fixed (Gemma 3: 10,000), else the
    /// global one.
    public let localRopeBase: Float?

    public var permutesQK: Bool { !ropeNeox }

    public static let all = [
        Family(architecture: "llama", scalesEmbedding: false, gelu: false, ropeNeox: false, slidingPattern: nil, localRopeBase: nil),
        Family(architecture: "qwen2", scalesEmbedding: false, gelu: false, ropeNeox: true, slidingPattern: nil, localRopeBase: nil),
        Family(architecture: "gemma2", scalesEmbedding: true, gelu: true, ropeNeox: true, slidingPattern: 2, localRopeBase: nil),
        Family(architecture: "gemma3", scalesEmbedding: true, gelu: true, ropeNeox: true, slidingPattern: 6, localRopeBase: 10_000),
    ]

    public static func named(_ architecture: String) -> Family? { all.first { $0.architecture == architecture } }
}
