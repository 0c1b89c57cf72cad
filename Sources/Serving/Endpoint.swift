import Exam
import Foundation
import Transport

/// One OpenAI-compatible server (vLLM, llama.cpp's `llama-server`, llama-cpp-python's
/// server, SGLang, Ollama): its address, the bearer key (never said anywhere), and how
/// long a request may take. Requests are retried here; what a reply means is
/// `ChoiceScorer`'s.
public struct Endpoint: Sendable {
    /// The base address, without a trailing `/v1`.
    public let url: String
    /// HOST:PORT, what the lineage and the messages name.
    public let host: String
    let key: String?
    let seconds: Double
    /// Tries of one request before the endpoint counts as failing (backoff 0.5 s, 1 s, 2 s, …).
    let tries: Int

    /// `address`: http(s)://HOST[:PORT][/PREFIX][/v1], as OpenAI's clients take a base URL.
    public init(address: String, key: String?, seconds: Double, tries: Int = 5) throws {
        var text = address
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasSuffix("/v1") { text.removeLast(3) }
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), let host = url.host, !host.isEmpty,
            url.query == nil, url.user == nil, url.password == nil, url.fragment == nil,
            url.port.map({ (1...65535).contains($0) }) ?? true
        else {
            throw EndpointError(
                .usage,
                "--endpoint \(address.contains("@") ? "(not repeated: it holds a user or password)" : "'\(excerpt(address))'") is not a server address like http://127.0.0.1:8000/v1 (http or https, a host, a port; no user, key or query: the key goes in --api-key-env)"
            )
        }
        self.url = text
        self.host = url.port.map { "\(host):\($0)" } ?? host
        self.key = key
        self.seconds = seconds
        self.tries = tries
    }

    /// GET a JSON object.
    func get(_ path: String) throws -> [String: Any] { try exchange("GET", path, body: nil) }

    /// POST a JSON object, answered with one.
    func post(_ path: String, _ body: [String: Any]) throws -> [String: Any] {
        try exchange("POST", path, body: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))
    }

    /// Replies are small (a few log-probabilities); anything near this is not one.
    static let maxReplyBytes = 16 << 20

    /// One request with its retries: a refused or dropped connection, a timeout, a reply
    /// cut short, 5xx and 429 (after its Retry-After, at most a minute) are tried again;
    /// 401/403 and other 4xx are not.
    func exchange(_ method: String, _ path: String, body: Data?) throws -> [String: Any] {
        let request = HTTPAttempt.Request(
            method: method, url: url + path,
            headers: (key.map { [("Authorization", "Bearer \($0)")] } ?? []) + (body == nil ? [] : [("Content-Type", "application/json")]),
            body: body)
        let bounds = HTTPAttempt.Bounds(url: host, maxBytes: Self.maxReplyBytes, seconds: seconds)
        var delay = 0.5, last = ""
        for attempt in 1...tries {
            if attempt > 1 { Thread.sleep(forTimeInterval: delay) }
            delay = min(delay * 2, 8)
            switch HTTPAttempt.perform(request, bounds: bounds, deadline: .now() + seconds) {
            case .answered(let answer):
                switch answer.status {
                case 200..<300:
                    if let object = try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any] { return object }
                    last =
                        "\(host)\(path) answered \(answer.status) with \(answer.body.count) bytes that are not a JSON object (\(excerpt(String(decoding: answer.body.prefix(120), as: UTF8.self))))"
                case 401, 403:
                    throw EndpointError(
                        .refused,
                        "\(host) refused the request (\(answer.status)): \(message(answer.body)); give its key with --api-key-env VAR (the variable's name, not the key)"
                    )
                case 429:
                    last = "\(host)\(path) answered 429 (too many requests): \(message(answer.body))"
                    if let wait = answer.retryAfter.flatMap(Double.init), wait >= 0 { delay = min(wait, 60) }
                case 500..<600:
                    last = "\(host)\(path) answered \(answer.status): \(message(answer.body))"
                    // llama.cpp's server before 2025 said a prompt past its context with a 500: no retry mends that.
                    if EndpointError.saysContextOverflow(last) { throw EndpointError(.rejected(answer.status), last) }
                default:
                    throw EndpointError(.rejected(answer.status), "\(host)\(path) answered \(answer.status): \(message(answer.body))")
                }
            case .unreachable(let reason):
                last = "cannot reach \(host): \(excerpt(reason, limit: 200))"
            case .failed(let failure):
                if failure.kind == .tooLarge { throw EndpointError(.reply, failure.message) }
                last = failure.message
            }
        }
        throw EndpointError(.unavailable, "\(last) (tried \(tries) times)")
    }

    /// The server's words from an error body, in any of the engines' shapes:
    /// `{"error": {"message"}}` (OpenAI, vLLM, llama.cpp), `{"message"}` (vLLM before
    /// 2025), `{"detail"}` (FastAPI, llama-cpp-python's 401), `{"error": "…"}`, or text.
    func message(_ body: Data) -> String {
        let text = Self.message(body)
        // A server that repeats the key in its words does not get it printed.
        guard let key, !key.isEmpty else { return text }
        return text.replacingOccurrences(of: key, with: "(the key)")
    }

    static func message(_ body: Data) -> String {
        let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        let error = object?["error"]
        let text =
            (error as? [String: Any])?["message"] as? String ?? error as? String ?? object?["message"] as? String
            ?? object?["detail"] as? String ?? String(decoding: body.prefix(300), as: UTF8.self)
        return excerpt(text, limit: 300)
    }
}

/// Why a request or a reply failed, and so what the caller does next.
public struct EndpointError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// A bad option: before anything is sent.
        case usage
        /// 401/403: the key is wrong or missing.
        case refused
        /// Any other 4xx, with its status (unsupported field, prompt too long, unknown model).
        case rejected(Int)
        /// Still failing after every try: the endpoint is down or overloaded.
        case unavailable
        /// A reply that cannot be read as the engines write them.
        case reply
    }
    public let kind: Kind
    public let message: String
    public var description: String { message }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Whether the server said the prompt is longer than its context, in any engine's words.
    public var isContextOverflow: Bool {
        guard case .rejected = kind else { return false }
        return Self.saysContextOverflow(message)
    }

    static func saysContextOverflow(_ message: String) -> Bool {
        let text = message.lowercased()
        return ["context length", "context size", "maximum context", "context_length_exceeded", "exceed_context_size"].contains {
            text.contains($0)
        }
    }
}
