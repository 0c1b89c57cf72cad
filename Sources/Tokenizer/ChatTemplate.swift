import GGUF

/// The chat formats of the model families we support, each rendering one system and
/// one user message with the generation prompt appended (DESIGN.md's prompt).
public enum ChatTemplate: String, Sendable, CaseIterable {
    /// Gemma has no system role: the system text opens the first user turn.
    case gemma
    /// ChatML: Qwen2, SmolLM2.
    case chatml
    case llama3
    case exaone3
    /// No template: the system text, a blank line, the user text.
    case plain

    public func render(system: String, user: String) -> String {
        switch self {
        case .gemma:
            "<bos><start_of_turn>user\n\(system)\n\n\(user)<end_of_turn>\n<start_of_turn>model\n"
        case .chatml:
            "<|im_start|>system\n\(system)<|im_end|>\n<|im_start|>user\n\(user)<|im_end|>\n<|im_start|>assistant\n"
        case .llama3:
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\(system)<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n\(user)<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        case .exaone3:
            "[|system|]\(system)[|endofturn|]\n[|user|]\(user)\n[|assistant|]"
        case .plain:
            "\(system)\n\n\(user)"
        }
    }

    /// The prompt as text for a server's completions endpoint: without the leading
    /// beginning-of-text marker, which servers add themselves to a text prompt.
    public func renderForServer(system: String, user: String) -> String {
        let text = render(system: system, user: user)
        for marker in ["<bos>", "<|begin_of_text|>"] where text.hasPrefix(marker) { return String(text.dropFirst(marker.count)) }
        return text
    }

    /// The template a served model's name points to (`gemma-3-27b-it` → gemma,
    /// `Qwen/Qwen2.5-32B-Instruct` → chatml), if it names a family.
    public init?(servedModel: String) {
        let name = servedModel.lowercased()
        let hints: [(String, ChatTemplate)] = [
            ("gemma", .gemma), ("qwen", .chatml), ("smollm", .chatml), ("llama-3", .llama3), ("llama3", .llama3), ("exaone", .exaone3)
        ]
        guard let hint = hints.first(where: { name.contains($0.0) }) else { return nil }
        self = hint.1
    }

    /// The marker that ends the assistant's turn (the seed's completion also trained
    /// it after the answer); none without a template.
    public var endOfTurn: String? {
        switch self {
        case .gemma: "<end_of_turn>"
        case .chatml: "<|im_end|>"
        case .llama3: "<|eot_id|>"
        case .exaone3: "[|endofturn|]"
        case .plain: nil
        }
    }

    /// The template for a model: its family's (Engine's `Family.chatTemplate(of:)` passes
    /// it), else from the markers of its `tokenizer.chat_template`, else plain.
    public static func detect(_ file: GGUFFile, family: ChatTemplate? = nil) -> ChatTemplate {
        if let family { return family }
        let template = file.metadata["tokenizer.chat_template"]?.string ?? ""
        if template.contains("<|im_start|>") { return .chatml }
        if template.contains("<|start_header_id|>") { return .llama3 }
        if template.contains("[|system|]") { return .exaone3 }
        if template.contains("<start_of_turn>") { return .gemma }
        return .plain
    }
}
