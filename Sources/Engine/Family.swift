import GGUF
import Tokenizer

/// What sets a model family apart, in one table. A new family is one entry here only
/// when it is made of the features below and GGUF's usual block tensors (its chat
/// template may need a new `ChatTemplate` case too). A new feature (another norm,
/// activation, attention or RoPE variant, another tensor) is a field here and code in
/// the forward pass (`Model.forward(block:)`), the trainer's backward pass
/// (`Network.blockBackward`) and the block's tensor table (`BlockTensor`).
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
    /// Sliding-window blocks, where the file gives a window: all but every
    /// `slidingPattern`-th (Gemma 2: every other one from the first; Gemma 3: five of
    /// every six; EXAONE 4.0: three of every four); nil where none.
    public let slidingPattern: Int?
    /// The sliding blocks' RoPE base where it is fixed (Gemma 3: 10,000), else the
    /// global one.
    public let localRopeBase: Float?
    /// Whether the global blocks of a model with sliding blocks rotate at all (EXAONE
    /// 4.0's do not: RoPE only where the window is).
    public let ropeOnGlobalBlocks: Bool
    /// Norms before attention and FFN (attn_norm, ffn_norm); EXAONE 4.0 has only the
    /// norms after them.
    public let preNorms: Bool
    /// The chat template the family's instruction models use; nil where it varies
    /// (llama: read from the file's template).
    public let chatTemplate: ChatTemplate?

    public var permutesQK: Bool { !ropeNeox }

    init(
        _ architecture: String, scalesEmbedding: Bool = false, gelu: Bool = false, ropeNeox: Bool = true, slidingPattern: Int? = nil,
        localRopeBase: Float? = nil, ropeOnGlobalBlocks: Bool = true, preNorms: Bool = true, chatTemplate: ChatTemplate? = nil
    ) {
        self.architecture = architecture
        self.scalesEmbedding = scalesEmbedding
        self.gelu = gelu
        self.ropeNeox = ropeNeox
        self.slidingPattern = slidingPattern
        self.localRopeBase = localRopeBase
        self.ropeOnGlobalBlocks = ropeOnGlobalBlocks
        self.preNorms = preNorms
        self.chatTemplate = chatTemplate
    }

    public static let all = [
        Family("llama", ropeNeox: false),
        Family("qwen2", chatTemplate: .chatml),
        Family("qwen3", chatTemplate: .chatml),
        Family("gemma2", scalesEmbedding: true, gelu: true, slidingPattern: 2, chatTemplate: .gemma),
        Family("gemma3", scalesEmbedding: true, gelu: true, slidingPattern: 6, localRopeBase: 10_000, chatTemplate: .gemma),
        Family("exaone", chatTemplate: .exaone3),
        Family("exaone4", slidingPattern: 4, ropeOnGlobalBlocks: false, preNorms: false, chatTemplate: .exaone3)
    ]

    public static func named(_ architecture: String) -> Family? { all.first { $0.architecture == architecture } }

    /// The chat template of a model file: its family's, else from the file's markers.
    public static func chatTemplate(of file: GGUFFile) -> ChatTemplate {
        ChatTemplate.detect(file, family: file.metadata["general.architecture"]?.string.flatMap(named)?.chatTemplate)
    }
}
