import Foundation
import GGUF
import Tokenizer

/// Multiple-choice scoring: a prompt in the model's chat template, one forward pass,
/// and the logits of the answer tokens "1".."N" at the last position.
public final class Scorer: Sendable {
    public let model: Model
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    /// Prompts longer than this are shortened by cutting the middle of the passage.
    public let maxTokens: Int
    /// The ids of the tokens "1".."5".
    public let answerTokens: [Int32]

    public init(model: Model, template: ChatTemplate? = nil, maxTokens: Int? = nil) throws {
        self.model = model
        let (tokenizer, answerTokens) = try Self.readTokenizer(model.file)
        self.tokenizer = tokenizer
        self.answerTokens = answerTokens
        self.template = template ?? Family.chatTemplate(of: model.file)
        self.maxTokens = maxTokens ?? min(model.config.contextLength, 4096)
    }

    /// Whether the engine can score with a file, without reading its weights: the checks
    /// a scorer's model and then the scorer make, in that order and in their words
    /// (`model info` says what `predict` would).
    public static func check(_ file: GGUFFile) throws {
        _ = try ModelConfig(file)
        _ = try readTokenizer(file)
    }

    /// The file's tokenizer and the ids of "1".."5", each of which must be one token.
    static func readTokenizer(_ file: GGUFFile) throws -> (Tokenizer, answerTokens: [Int32]) {
        let tokenizer = try Tokenizer(gguf: file)
        let answerTokens = try (1...5).map { digit in
            let ids = tokenizer.encode(String(digit), parseSpecial: false)
            guard ids.count == 1 else {
                throw EngineError(
                    message: "\(file.path): \"\(digit)\" is not a single token (\(ids)), so the answer cannot be read from one logit")
            }
            return ids[0]
        }
        return (tokenizer, answerTokens)
    }

    public struct Prompt: Sendable {
        public var tokens: [Int32]
        /// Characters cut from the middle of the passage to fit `maxTokens` (0 if none).
        public var charactersCut: Int
    }

    /// The tokens of a prompt whose passage may be shortened: `render` builds the whole
    /// text in the chat template from a (possibly cut) passage. The cut keeps the
    /// passage's start and end and marks the gap with " … ".
    public func prompt(passage: String, render: (String) -> (system: String, user: String)) throws -> Prompt {
        func tokens(_ text: String) -> [Int32] {
            let parts = render(text)
            return tokenizer.encode(template.render(system: parts.system, user: parts.user))
        }
        let full = tokens(passage)
        guard full.count > maxTokens else { return Prompt(tokens: full, charactersCut: 0) }
        let characters = Array(passage)
        func cut(keeping kept: Int) -> String {
            let head = kept / 2
            return String(characters[..<head]) + " … " + String(characters[(characters.count - (kept - head))...])
        }
        // The longest shortened passage that fits: binary search on characters kept.
        var low = 0, high = characters.count - 1, best: [Int32]?, bestKept = 0
        while low <= high {
            let kept = (low + high) / 2
            let candidate = tokens(cut(keeping: kept))
            if candidate.count <= maxTokens {
                best = candidate
                bestKept = kept
                low = kept + 1
            } else {
                high = kept - 1
            }
        }
        guard let best else {
            throw EngineError(
                message:
                    "the prompt needs \(tokens(cut(keeping: 0)).count) tokens even without its passage, more than --max-tokens \(maxTokens)"
            )
        }
        return Prompt(tokens: best, charactersCut: characters.count - bestKept)
    }

    /// The logits of the answer tokens "1".."choices" after the prompt of `item` (its
    /// id, for the error); the cache carries the keys and values of the tokens it shares
    /// with the previous prompt. A logit that is not a finite number (NaN or infinite
    /// weights in the model or adapter, or an overflow) stops the caller: no answer can
    /// be read from it, and an arg-max over NaN would quietly answer 1.
    public func answerLogits(_ tokens: [Int32], choices: Int, cache: inout PrefixCache, item: String) throws -> [Float] {
        precondition((1...5).contains(choices))
        let logits = model.logits(try model.forwardToFinalHidden(tokens, cache: &cache), tokens: Array(answerTokens.prefix(choices)))
        guard logits.allSatisfy(\.isFinite) else {
            throw EngineError(
                message:
                    "item \(item): the model's answer logits are \(logits.map { "\($0)" }.joined(separator: ", ")), not finite numbers (NaN or infinite weights in \(model.file.path) or its adapter, or an overflow); no prediction set is stored"
            )
        }
        return logits
    }
}
