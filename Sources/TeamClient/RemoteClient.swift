import Exam
import Foundation
import Store
import Transport
import Workflow
import Yams

/// The workspace's remotes, `config/remotes.yaml` (NAME: URL); their tokens are kept
/// apart, by URL (`Credentials`).
public struct Remotes: Sendable {
    public static let file = "config/remotes.yaml"
    public var entries: [(name: String, url: String)]
    let workspace: Workspace

    public static func load(workspace: Workspace) throws -> Remotes {
        let path = workspace.root.appendingPathComponent(file).path
        var entries: [(String, String)] = []
        if let data = FileManager.default.contents(atPath: path) {
            let loaded: Any?
            do { loaded = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) } catch {
                throw StoreError.invalid("\(file): not valid YAML: \(error)")
            }
            if let mapping = loaded as? [String: Any] {
                for name in mapping.keys.sorted() { entries.append((name, "\(mapping[name]!)")) }
            } else if loaded != nil {
                throw StoreError.invalid("\(file): expected NAME: URL lines")
            }
        }
        return Remotes(entries: entries, workspace: workspace)
    }

    public func url(of name: String) throws -> String {
        guard let entry = entries.first(where: { $0.name == name }) else {
            throw StoreError.notFound(
                "no remote named \(excerpt(name)) (\(entries.isEmpty ? "none yet: `suneung remote add NAME URL --token TOKEN`" : "remotes: " + entries.map(\.name).joined(separator: ", ")))"
            )
        }
        return entry.url
    }

    public func save() throws {
        let text =
            "# The team servers this workspace talks to (`suneung remote add`); tokens are kept apart (`suneung remote list` says where).\n"
            + entries.map { "\($0.name): \"\($0.url)\"\n" }.joined()
        try writeAtomically(text, to: workspace.root.appendingPathComponent(Remotes.file))
    }

    /// A server's address: http(s)://HOST[:PORT], nothing after.
    public static func checkURL(_ text: String) throws -> String {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
            url.path.isEmpty, url.query == nil,
            url.user == nil, url.password == nil, url.fragment == nil, (url.port.map { (1...65535).contains($0) } ?? true)
        else {
            throw StoreError.invalid(
                "'\(excerpt(text))' is not a server address like http://10.0.0.5:8080 (http or https, host, a port 1-65535; no user, path or query)"
            )
        }
        return trimmed
    }
}

/// Tokens by server URL: the user's file (`$XDG_CONFIG_HOME/suneung/credentials`, else
/// `$HOME/.config/suneung/credentials`: a token is personal, and one person has one
/// token for a server whichever of their workspaces talks to it), or the workspace's
/// `config/credentials` (`remote add --here`: a workspace used under another identity,
/// e.g. a shared machine's account), which comes first. $SUNEUNG_TOKEN overrides both.
/// Both files are JSON, mode 600; one that others can read is refused, as ssh does.
public enum Credentials {
    public static let workspacePath = "config/credentials"

    /// The user's file, as the XDG base directory spec places it.
    public static var file: URL {
        let environment = ProcessInfo.processInfo.environment
        // The spec: an empty or relative XDG_CONFIG_HOME is ignored.
        if let config = environment["XDG_CONFIG_HOME"], config.hasPrefix("/") {
            return URL(fileURLWithPath: config).appendingPathComponent("suneung/credentials")
        }
        // $HOME first: Foundation's home directory is the password database's, which
        // ignores a HOME set for one command.
        let home =
            environment["HOME"].flatMap { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : nil }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".config/suneung/credentials")
    }

    public static func workspaceFile(_ workspace: Workspace) -> URL { workspace.root.appendingPathComponent(workspacePath) }

    /// Where a remote's token comes from, in the order they are looked at.
    public enum Source: String, Sendable {
        case environment = "$SUNEUNG_TOKEN"
        case workspace
        case user
    }

    static func all(in file: URL) throws -> [String: String] {
        var status = stat()
        guard stat(file.path, &status) == 0 else { return [:] }
        guard status.st_mode & 0o077 == 0 else {
            throw StoreError.invalid(
                "\(file.path) is open to others (mode \(String(status.st_mode & 0o777, radix: 8))): its tokens are not used; `chmod 600 \(file.path)`"
            )
        }
        guard let data = FileManager.default.contents(atPath: file.path),
            let entries = try? JSONDecoder().decode([String: String].self, from: data)
        else {
            throw StoreError.invalid(
                "\(file.path) is not the JSON object of URL: token that suneung writes; remove it and `suneung remote add` again")
        }
        return entries
    }

    public static func token(for url: String, workspace: Workspace) throws -> (token: String, source: Source)? {
        if let token = ProcessInfo.processInfo.environment["SUNEUNG_TOKEN"], !token.isEmpty { return (token, .environment) }
        if let token = try all(in: workspaceFile(workspace))[url] { return (token, .workspace) }
        if let token = try all(in: file)[url] { return (token, .user) }
        return nil
    }

    /// Stores (or with nil deletes) a token in the user's file or the workspace's; the
    /// file readable by its owner only, from its first byte.
    public static func store(_ token: String?, for url: String, in source: Source, workspace: Workspace) throws {
        let target = source == .workspace ? workspaceFile(workspace) : file
        guard token != nil || FileManager.default.fileExists(atPath: target.path) else { return }
        var entries = try all(in: target)
        entries[url] = token
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let folder = target.deletingLastPathComponent()
        if source == .user {
            // The user's folder is theirs alone (the workspace's config/ is shared).
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard chmod(folder.path, 0o700) == 0 else { throw StoreError.invalid("cannot make \(folder.path) private (chmod 700)") }
        }
        // The atomic write's temporary file is created 600 too: never readable by others.
        let mask = umask(0o077)
        defer { umask(mask) }
        try writeAtomically(String(decoding: try encoder.encode(entries), as: UTF8.self), to: target)
        guard chmod(target.path, 0o600) == 0 else { throw StoreError.invalid("cannot make \(target.path) private (chmod 600)") }
    }

    /// A token kept in a file (`remote add --token-file`): its first line, trimmed. An
    /// empty file, or one that others can read, is refused.
    public static func read(tokenFile path: String) throws -> String {
        var status = stat()
        guard stat(path, &status) == 0, let handle = FileHandle(forReadingAtPath: path) else {
            throw StoreError.invalid("cannot read the token file \(path)")
        }
        defer { try? handle.close() }
        // A regular file (a pipe such as <(pass show team) has no readers to worry about).
        if status.st_mode & 0o170000 == 0o100000 && status.st_mode & 0o044 != 0 {
            throw StoreError.invalid(
                "the token file \(path) is readable by others (mode \(String(status.st_mode & 0o777, radix: 8))): `chmod 600 \(path)`")
        }
        // A token is short: the first 4 KB hold its line.
        let head = String(decoding: (try handle.read(upToCount: 4096)) ?? Data(), as: UTF8.self)
        let token = (head.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw StoreError.invalid("the token file \(path) is empty: it holds the token on its first line") }
        return token
    }
}

/// How long a request may take and how large its answer may be: a server that drips
/// its answer or floods the client is cut off, and the error says which bound it hit.
public struct RemoteLimits: Sendable {
    /// For the whole request, its retries included.
    public var seconds: Double
    /// An answer decoded whole as JSON: lists, a set's detail, pull's bundles (no rows;
    /// lineage, scores, tags: kilobytes a set). The bound the server puts on bodies.
    public var jsonBytes: Int
    /// A file: a set's canonical CSV or a dataset's exam file. Real ones are a few MB;
    /// above the server's 64 MB upload bound because a set made on the server never
    /// went through it.
    public var fileBytes: Int

    public init(seconds: Double = 120, jsonBytes: Int = 64 << 20, fileBytes: Int = 256 << 20) {
        self.seconds = seconds
        self.jsonBytes = jsonBytes
        self.fileBytes = fileBytes
    }

    /// The defaults, with $SUNEUNG_REMOTE_TIMEOUT (seconds, > 0) as the deadline when set.
    public static var configured: RemoteLimits {
        var limits = RemoteLimits()
        if let seconds = ProcessInfo.processInfo.environment["SUNEUNG_REMOTE_TIMEOUT"].flatMap(Double.init), seconds > 0 {
            limits.seconds = seconds
        }
        return limits
    }
}

/// `--remote NAME` and push/pull: the server's JSON API over HTTP. Requests that fail to
/// connect are tried again (every write the client makes is idempotent).
public struct RemoteClient: Sendable {
    public let url: String
    let token: String
    let limits: RemoteLimits

    public init(remote name: String, workspace: Workspace) throws {
        url = try Remotes.load(workspace: workspace).url(of: name)
        guard let kept = try Credentials.token(for: url, workspace: workspace) else {
            throw StoreError.invalid(
                "no token for \(url): `suneung remote add \(name) \(url) --token TOKEN` keeps one, or set SUNEUNG_TOKEN")
        }
        token = kept.token
        limits = .configured
    }

    public init(url: String, token: String, limits: RemoteLimits = .configured) {
        self.url = url
        self.token = token
        self.limits = limits
    }

    // MARK: The API

    /// Whose token this is, by the server (401 for an unknown or revoked one).
    public func whoAmI() throws -> WhoAmI { try get("/api/v1/whoami") }

    /// The server's version, from /health (no token needed).
    public func health() throws -> String {
        let answer: [String: String] = try get("/health")
        return answer["version"] ?? "?"
    }

    public func sets(all: Bool = false) throws -> [Store.SetSummary] { try get("/api/v1/sets" + (all ? "?all=1" : "")) }
    public func set(_ ref: String) throws -> SetDetail { try get("/api/v1/sets/\(pathValue(ref))") }
    public func uploads() throws -> UploadLog { try get("/api/v1/uploads") }
    public func buildEnsemble(_ spec: EnsembleSpec) throws -> BuiltEnsemble { try send("POST", "/api/v1/ensembles", json: spec) }

    public func score(_ ref: String, public publicScore: Double?, private privateScore: Double?, note: String?, simulated: Bool) throws
        -> [(kind: ScoreKind, value: Double, recorded: Bool)]
    {
        let results: [RecordedScore] = try send(
            "POST", "/api/v1/sets/\(pathValue(ref))/scores",
            json: ScoreRequest(public: publicScore, private: privateScore, note: note, simulated: simulated))
        return results.map { ($0.kind, $0.value, $0.recorded) }
    }

    public func retract(_ ref: String) throws -> [ScoreRecord] {
        try send("POST", "/api/v1/sets/\(pathValue(ref))/retract", body: Data(), type: "application/json")
    }

    // MARK: HTTP

    public struct Failure: Error, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var code: String?
        /// No answer began: the server is down or unreachable (`remote add` keeps a token unchecked then).
        public var unreachable = false
        public var description: String { message }
    }

    func get<T: Decodable>(_ path: String, decoder: JSONDecoder = RemoteClient.decoder) throws -> T {
        try decode(try request("GET", path, body: nil, type: nil, maxBytes: limits.jsonBytes), with: decoder)
    }

    func send<T: Decodable, Body: Encodable>(
        _ method: String, _ path: String, json: Body, encoder: JSONEncoder = RemoteClient.encoder,
        decoder: JSONDecoder = RemoteClient.decoder
    ) throws -> T {
        try decode(
            try request(method, path, body: try encoder.encode(json), type: "application/json", maxBytes: limits.jsonBytes), with: decoder)
    }

    func send<T: Decodable>(_ method: String, _ path: String, body: Data, type: String, decoder: JSONDecoder = RemoteClient.decoder) throws
        -> T
    {
        try decode(try request(method, path, body: body, type: type, maxBytes: limits.jsonBytes), with: decoder)
    }

    /// An answer that is not what this version expects is said so, the decoder's words
    /// escaped (they can quote the answer's keys).
    func decode<T: Decodable>(_ data: Data, with decoder: JSONDecoder) throws -> T {
        do {
            return try decoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Failure(
                status: 0,
                message: "the answer from \(url) is not what suneung \(suneungVersion) expects: \(excerpt("\(error)", limit: 300))"
            )
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            let formatter = ISO8601DateFormatter()
            if let date = formatter.date(from: text) { return date }
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = formatter.date(from: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 date: \(text)"))
            }
            return date
        }
        return decoder
    }()

    /// One request, within the limits' deadline; an answer is at most `maxBytes` (by
    /// default a file's bound: the JSON answers pass theirs). A refused or dropped
    /// connection is tried again after 0.5, 1, 2 and 4 s (a server restarting); a
    /// redirect is refused (the token would go with it); an HTTP error is reported with
    /// the server's words, escaped like any text quoted from outside.
    func request(_ method: String, _ path: String, body: Data?, type: String?, maxBytes: Int? = nil) throws -> Data {
        let request = HTTPAttempt.Request(
            method: method, url: url + path,
            headers: [("Authorization", "Bearer \(token)")] + (type.map { [("Content-Type", $0)] } ?? []), body: body)
        let deadline = DispatchTime.now() + limits.seconds
        let bounds = HTTPAttempt.Bounds(url: url, maxBytes: maxBytes ?? limits.fileBytes, seconds: limits.seconds)
        var delay = 0.5
        while true {
            switch HTTPAttempt.perform(request, bounds: bounds, deadline: deadline) {
            case .answered(let answer):
                let (status, location, data) = (answer.status, answer.location, answer.body)
                if (300..<400).contains(status), let location {
                    throw Failure(
                        status: status,
                        message:
                            "the server at \(url) answered \(status) (redirect to \(excerpt(location, limit: 200))); suneung does not follow redirects: give the final URL"
                    )
                }
                guard (200..<300).contains(status) else {
                    let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
                    let message = object?["error"] as? String ?? String(decoding: data.prefix(500), as: UTF8.self)
                    throw Failure(
                        status: status, message: "\(url) answered \(status): \(excerpt(message, limit: 500))",
                        code: (object?["code"] as? String).map { excerpt($0) })
                }
                return data
            case .unreachable(let reason):
                guard delay <= 4, DispatchTime.now() + delay < deadline else {
                    throw Failure(status: 0, message: "cannot reach \(url): \(excerpt(reason, limit: 200))", unreachable: true)
                }
                Thread.sleep(forTimeInterval: delay)
                delay *= 2
            case .failed(let failure):
                throw Failure(status: 0, message: failure.message)
            }
        }
    }
}
