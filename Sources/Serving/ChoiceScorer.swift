import Exam
import Foundation

/// Each choice's log-probability as the next token after a prompt, from a server's
/// completions endpoint: its top log-probabilities at that position, and for a choice
/// outside them the prompt with the choice appended, scored with `echo` (vLLM turns it
/// into `prompt_logprobs`). llama.cpp's servers have no cap on the top-k, so 1,000 are
/// asked for and echo is not needed (llama-cpp-python's echo sorts the vocabulary once
/// per prompt token: a minute an item). A choice is never taken as probability 0 for
/// being absent.
public struct ChoiceScorer: Sendable {
    public let endpoint: Endpoint
    public let offer: Offer

    /// What a server offers, found with one probe item before anything is stored.
    public struct Offer: Sendable, Equatable {
        public var servedModel: String
        /// What /v1/models says of the model: `owned_by` (vllm, llamacpp, …) and vLLM's
        /// `root` (the weights' path) and `max_model_len`.
        public var ownedBy: String?
        public var root: String?
        public var contextLength: Int?
        /// Log-probabilities per position asked for: 1,000 where the server allows it,
        /// else its cap (vLLM's --max-logprobs, 20 by default).
        public var topK: Int
        /// Whether a choice outside them is scored from the prompt with the choice
        /// appended (`echo`; vLLM computes it as prompt_logprobs).
        public var echo: Bool

        /// How the choices are scored, as the lineage says it.
        public var method: String {
            "completions, top \(topK) log-probabilities of the next token; "
                + (echo ? "a choice outside them from the prompt with the choice appended (echo)" : "a choice outside them is an error")
        }
    }

    /// One item's scores: each choice's log-probability, the prompt's tokens as the
    /// server counted them, and how many choices needed the fallback.
    public struct Scores: Sendable {
        public var logProbabilities: [Double]
        public var promptTokens: Int
        public var fallbacks: Int
    }

    static let topK = 20
    static let wideTopK = 1000
    static let digits = (1...5).map(String.init)

    /// Asks the server what it serves and offers, scoring the probe prompt's answer both
    /// ways where it can: echo counts only if it agrees with the top-k on a choice
    /// they both give (else the server tokenises "prompt + digit" otherwise).
    public static func probe(_ endpoint: Endpoint, servedModel: String, prompt: String) throws -> ChoiceScorer {
        let models = try endpoint.get("/v1/models")
        guard let data = models["data"] as? [[String: Any]] else {
            throw EndpointError(
                .reply, "\(endpoint.host)/v1/models did not list models (no \"data\" array): is it an OpenAI-compatible server?")
        }
        let ids = data.compactMap { $0["id"] as? String }
        guard let card = data.first(where: { $0["id"] as? String == servedModel }) else {
            throw EndpointError(
                .usage,
                "\(endpoint.host) does not serve '\(excerpt(servedModel))'; it serves: \(ids.map { excerpt($0) }.joined(separator: ", ")) (--served-model)"
            )
        }
        var offer = Offer(
            servedModel: servedModel, ownedBy: card["owned_by"] as? String, root: card["root"] as? String,
            contextLength: (card["max_model_len"] as? NSNumber)?.intValue, topK: topK, echo: false)
        // The widest top-k the server gives (llama.cpp's servers have no cap, and sort the
        // whole vocabulary whatever k is); vLLM refuses more than its --max-logprobs.
        var top: [String: Double]?
        for k in [wideTopK, topK] {
            do {
                top = try ChoiceScorer(endpoint: endpoint, offer: offer).topLogProbabilities(prompt, k: k).values
                offer.topK = k
                break
            } catch let error as EndpointError where error.kind == .rejected(400) && !error.isContextOverflow {
                // "… greater than max allowed: 5" (vLLM), "Cannot request more than 5 logprobs" (older vLLM).
                guard let allowed = Self.allowedTopK(error.message), allowed >= 1 else { continue }
                top = try ChoiceScorer(endpoint: endpoint, offer: offer).topLogProbabilities(prompt, k: allowed).values
                offer.topK = allowed
                break
            }
        }
        guard let top else {
            throw EndpointError(.reply, "\(endpoint.host) refused /v1/completions with \"logprobs\" \(wideTopK) and \(topK)")
        }
        // Below the wide top-k, a choice outside it is scored with echo, if the server's
        // echo agrees with its top-k on a choice they both give.
        if offer.topK < wideTopK, let digit = digits.first(where: { top[$0] != nil }) {
            let scorer = ChoiceScorer(endpoint: endpoint, offer: offer)
            if let echoed = try? scorer.echoLogProbability(prompt, digit: digit), abs(echoed - top[digit]!) <= 0.05 {
                offer.echo = true
            }
        }
        return ChoiceScorer(endpoint: endpoint, offer: offer)
    }

    /// The first N choices' log-probabilities after `prompt`.
    public func score(_ prompt: String, choices: Int) throws -> Scores {
        let first = try topLogProbabilities(prompt, k: offer.topK)
        var values = Self.digits.prefix(choices).map { first.values[$0] }
        var fallbacks = 0
        for index in values.indices where values[index] == nil {
            guard offer.echo else {
                throw EndpointError(
                    .reply,
                    "choice \(index + 1) is not among \(endpoint.host)'s top \(offer.topK) log-probabilities, and the server cannot score a given continuation (no echo)\(offer.topK < Self.wideTopK ? "; start vLLM with --max-logprobs \(Self.wideTopK)" : "")"
                )
            }
            values[index] = try echoLogProbability(prompt, digit: Self.digits[index])
            fallbacks += 1
        }
        return Scores(logProbabilities: values.map { $0! }, promptTokens: first.promptTokens, fallbacks: fallbacks)
    }

    /// The next token's top-k log-probabilities by token text, in the legacy completions
    /// shape (`logprobs.top_logprobs[0]`: vLLM, llama-cpp-python) or the chat-like one
    /// (`logprobs.content[0].top_logprobs`: llama.cpp's server).
    func topLogProbabilities(_ prompt: String, k: Int) throws -> (values: [String: Double], promptTokens: Int) {
        let reply = try endpoint.post(
            "/v1/completions",
            Self.request(offer.servedModel, prompt, ["logprobs": k]))
        let logprobs = try Self.logprobs(of: reply, from: endpoint)
        guard let values = Self.nextTokenTop(logprobs) else {
            throw EndpointError(
                .reply,
                "\(endpoint.host) gave log-probabilities without the next token's top ones (no top_logprobs): \(Self.shape(logprobs))")
        }
        return (values, Self.promptTokens(reply) ?? 0)
    }

    /// The first position's top log-probabilities by token text, from either shape; nil
    /// when the reply has neither.
    static func nextTokenTop(_ logprobs: [String: Any]) -> [String: Double]? {
        var entries: [(String, Any)] = []
        if let top = logprobs["top_logprobs"] as? [Any], let first = top.first as? [String: Any] {
            entries = first.map { ($0.key, $0.value) }
        } else if let content = logprobs["content"] as? [[String: Any]], let top = content.first?["top_logprobs"] as? [[String: Any]] {
            entries = top.compactMap { entry in (entry["token"] as? String).map { ($0, entry["logprob"] ?? NSNull()) } }
        } else {
            return nil
        }
        var values: [String: Double] = [:]
        for (token, value) in entries {
            guard let logprob = logProbability(value) else { continue }
            // Two ids that decode to one text (keys are texts): the likelier stands.
            values[token] = max(values[token] ?? -.infinity, logprob)
        }
        return values
    }

    /// log P(digit | prompt), as the prompt + digit's own last prompt token, with `echo`.
    /// The entry is found from the end: the tokens are the prompt's then the generated
    /// ones (usage.completion_tokens of them); it must be the digit.
    func echoLogProbability(_ prompt: String, digit: String) throws -> Double {
        let reply = try endpoint.post(
            "/v1/completions",
            Self.request(offer.servedModel, prompt + digit, ["logprobs": 0, "echo": true]))
        let logprobs = try Self.logprobs(of: reply, from: endpoint)
        guard let last = Self.lastPromptToken(reply, logprobs: logprobs) else {
            throw EndpointError(.reply, "\(endpoint.host)'s echo reply has no tokens, token_logprobs and usage: \(Self.shape(logprobs))")
        }
        guard last.token == digit, let value = last.logprob else {
            throw EndpointError(
                .reply,
                "\(endpoint.host)'s echo of the prompt with \"\(digit)\" appended does not end in that token with a log-probability")
        }
        return value
    }

    /// An echoed reply's last prompt token and its log-probability: the tokens are the
    /// prompt's then the generated ones (usage.completion_tokens of them).
    static func lastPromptToken(_ reply: [String: Any], logprobs: [String: Any]) -> (token: String, logprob: Double?)? {
        guard let tokens = logprobs["tokens"] as? [String], let values = logprobs["token_logprobs"] as? [Any],
            tokens.count == values.count, let usage = reply["usage"] as? [String: Any],
            let generated = (usage["completion_tokens"] as? NSNumber)?.intValue
        else { return nil }
        let index = tokens.count - 1 - generated
        guard tokens.indices.contains(index) else { return nil }
        return (tokens[index], logProbability(values[index]))
    }

    /// A completions request for one token. `cache_prompt: false` (llama.cpp's server; the
    /// others ignore it): a prompt evaluated after a cached prefix gets other numbers there
    /// (seen: 0.3 apart on Gemma, its batched kernels round activations otherwise), so each
    /// prompt is evaluated whole and an item's numbers do not depend on what the server
    /// saw before: two servers give one server's, and a resumed run an uninterrupted one's.
    static func request(_ model: String, _ prompt: String, _ fields: [String: Any]) -> [String: Any] {
        ["model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "cache_prompt": false].merging(fields) { $1 }
    }

    static func logprobs(of reply: [String: Any], from endpoint: Endpoint) throws -> [String: Any] {
        guard let choices = reply["choices"] as? [[String: Any]], let choice = choices.first else {
            throw EndpointError(.reply, "\(endpoint.host)'s completion has no choices: \(shape(reply))")
        }
        guard let logprobs = choice["logprobs"] as? [String: Any] else {
            throw EndpointError(
                .reply,
                "\(endpoint.host) returned no log-probabilities (\"logprobs\": \(choice["logprobs"] == nil ? "absent" : "null")); a server that scores must return them for /v1/completions with \"logprobs\" (llama-cpp-python: logits_all; llama.cpp's server: a build from 2025 or later)"
            )
        }
        return logprobs
    }

    /// A log-probability as the engines write one: a finite number ≤ 0. vLLM's chat
    /// shape writes -9999 and llama.cpp the lowest float for "not computed".
    static func logProbability(_ value: Any) -> Double? {
        guard let number = value as? NSNumber else { return nil }
        let double = number.doubleValue
        guard double.isFinite, double <= 1e-6, double > -9999 else { return nil }
        return min(double, 0)
    }

    static func promptTokens(_ reply: [String: Any]) -> Int? {
        ((reply["usage"] as? [String: Any])?["prompt_tokens"] as? NSNumber)?.intValue
    }

    /// vLLM's "… greater than max allowed: 5" and its older "Cannot request more than 5 logprobs".
    static func allowedTopK(_ message: String) -> Int? {
        for marker in ["max allowed: ", "more than "] {
            guard let range = message.range(of: marker, options: .backwards) else { continue }
            return Int(message[range.upperBound...].prefix { $0.isNumber })
        }
        return nil
    }

    /// A reply's keys, to say what came instead of what was expected.
    static func shape(_ object: [String: Any]) -> String {
        "keys " + object.keys.sorted().map { excerpt($0, limit: 40) }.prefix(12).joined(separator: ", ")
    }
}
