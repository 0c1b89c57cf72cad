/// What sets a model family apart, in one table: a new family is one entry here.
/// (What a family's file may hold — q/k/v biases, QK-norm, soft caps, RoPE frequency
/// factors — is read from its tensors and metadata, not listed.)
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
    /// Sliding-window layers, where the file gives a window: all but every
    /// `slidingPattern`-th (Gemma 2: every other one from the first; Gemma 3: five of
    /// every six; EXAONE 4.0: three of every four); nil where none.
    public let slidingPattern: Int?
    /// The sliding layers' RoPE base where it is fixed (Gemma 3: 10,000), else the
    /// global one.
    public let localRopeBase: Float?
    /// Whether the global layers of a model with sliding layers rotate at all (EXAONE
    /// 4.0's do not: RoPE only where the window is).
    public let ropeOnGlobalLayers: Bool
    /// Norms before attention and FFN (attn_norm, ffn_norm); EXAONE 4.0 has only the
    /// norms after them.
    public let preNorms: Bool

    public var permutesQK: Bool { !ropeNeox }

    init(_ architecture: String, scalesEmbedding: Bool = false, gelu: Bool = false, ropeNeox: Bool = true, slidingPattern: Int? = nil,
         localRopeBase: Float? = nil, ropeOnGlobalLayers: Bool = true, preNorms: Bool = true) {
        self.architecture = architecture
        self.scalesEmbedding = scalesEmbedding
        self.gelu = gelu
        self.ropeNeox = ropeNeox
        self.slidingPattern = slidingPattern
        self.localRopeBase = localRopeBase
        self.ropeOnGlobalLayers = ropeOnGlobalLayers
        self.preNorms = preNorms
    }

    public static let all = [
        Family("llama", ropeNeox: false),
        Family("qwen2"),
        Family("qwen3"),
        Family("gemma2", scalesEmbedding: true, gelu: true, slidingPattern: 2),
        Family("gemma3", scalesEmbedding: true, gelu: true, slidingPattern: 6, localRopeBase: 10_000),
        Family("exaone"),
        Family("exaone4", slidingPattern: 4, ropeOnGlobalLayers: false, preNorms: false),
    ]

    public static func named(_ architecture: String) -> Family? { all.first { $0.architecture == architecture } }
}
