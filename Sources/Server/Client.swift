import Exam
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Store
import Synchronization
import Workflow
import Yams

/// The workspace's remotes, `config/remotes.yaml` (NAME: URL); their tokens live in
/// `~/.config/suneung/credentials` (mode 600), by URL, or in $SUNEUNG_TOKEN.
public struct Remotes: Sendable {
    public static let file = "config/remotes.yaml"
    public var entries: [(name: String, url: String)]
    let workspace: Workspace

    public static func load(workspace: Workspace) throws -> Remotes {
        let path = workspace.root.appendingPathComponent(file).path
        var entries: [(String, String)] = []
        if let data = FileManager.default.contents(atPath: path) {
            let loaded: Any?
            do { loaded = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) } catch { throw StoreError.invalid("\(file): not valid YAML: \(error)") }
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
            throw StoreError.notFound("no remote named \(excerpt(name)) (\(entries.isEmpty ? "none yet: `suneung remote add NAME URL --token TOKEN`" : "remotes: " + entries.map(\.name).joined(separator: ", ")))")
        }
        return entry.url
    }

    public func save() throws {
        let text = "# The team servers this workspace talks to (`suneung remote add`); tokens are in ~/.config/suneung/credentials.\n"
            + entries.map { "\($0.name): \"\($0.url)\"\n" }.joined()
        try writeAtomically(text, to: workspace.root.appendingPathComponent(Remotes.file))
    }

    /// A server's address: http(s)://HOST[:PORT], nothing after.
    public static func checkURL(_ text: String) throws -> String {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil, url.path.isEmpty, url.query == nil,
              url.user == nil, url.password == nil, url.fragment == nil, (url.port.map { (1...65535).contains($0) } ?? true) else {
            throw StoreError.invalid("'\(excerpt(text))' is not a server address like http://10.0.0.5:8080 (http or https, host, a port 1-65535; no user, path or query)")
        }
        return trimmed
    }
}

/// Tokens by server URL, in the user's config folder (not the workspace: a workspace
/// is shared, a token is personal; one person has one token for a server, whichever of
/// their workspaces talks to it).
public enum Credentials {
    public static var file: URL {
        let base = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config")
        return base.appendingPathComponent("suneung/credentials")
    }

    static func all() -> [String: String] {
        guard let data = FileManager.default.contents(atPath: file.path),
              let entries = try? JSONDecoder().decode([String: String].self, from: data) else { return [:] }
        return entries
    }

    public static func token(for url: String) -> String? {
        if let token = ProcessInfo.processInfo.environment["SUNEUNG_TOKEN"], !token.isEmpty { return token }
        return all()[url]
    }

    /// Stores a token, the file readable by its owner only.
    public static func store(_ token: String?, for url: String) throws {
        var entries = all()
        entries[url] = token
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let folder = file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // The folder is the owner's alone, so the file is never readable by others, not
        // even as the temporary file of its atomic write.
        guard chmod(folder.path, 0o700) == 0 else { throw StoreError.invalid("cannot make \(folder.path) private (chmod 700)") }
        try writeAtomically(String(decoding: try encoder.encode(entries), as: UTF8.self), to: file)
        guard chmod(file.path, 0o600) == 0 else { throw StoreError.invalid("cannot make \(file.path) private (chmod 600)") }
    }
}

/// `--remote NAME` and push/pull: the server's JSON API over HTTP. Requests that fail to
/// connect are tried again (every write the client makes is idempotent).
public struct RemoteClient: Sendable {
    public let url: String
    let token: String

    public init(remote name: String, workspace: Workspace) throws {
        url = try Remotes.load(workspace: workspace).url(of: name)
        guard let token = Credentials.token(for: url) else {
            throw StoreError.invalid("no token for \(url): `suneung remote add \(name) \(url) --token TOKEN` keeps one, or set SUNEUNG_TOKEN")
        }
        self.token = token
    }

    public init(url: String, token: String) {
        self.url = url
        self.token = token
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

    public func score(_ ref: String, public publicScore: Double?, private privateScore: Double?, note: String?, simulated: Bool) throws -> [(kind: ScoreKind, value: Double, recorded: Bool)] {
        let results: [ScoreResult] = try send("POST", "/api/v1/sets/\(pathValue(ref))/scores", json: ScoreRequest(public: publicScore, private: privateScore, note: note, simulated: simulated))
        return results.map { ($0.kind, $0.value, $0.recorded) }
    }

    public func retract(_ ref: String) throws -> [ScoreRecord] { try send("POST", "/api/v1/sets/\(pathValue(ref))/retract", body: Data(), type: "application/json") }

    // MARK: HTTP

    public struct Failure: Error, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var code: String?
        public var description: String { message }
    }

    func get<T: Decodable>(_ path: String, decoder: JSONDecoder = RemoteClient.decoder) throws -> T {
        try decoder.decode(T.self, from: try request("GET", path, body: nil, type: nil))
    }

    func send<T: Decodable, Body: Encodable>(_ method: String, _ path: String, json: Body, encoder: JSONEncoder = RemoteClient.encoder, decoder: JSONDecoder = RemoteClient.decoder) throws -> T {
        try decoder.decode(T.self, from: try request(method, path, body: try encoder.encode(json), type: "application/json"))
    }

    func send<T: Decodable>(_ method: String, _ path: String, body: Data, type: String, decoder: JSONDecoder = RemoteClient.decoder) throws -> T {
        try decoder.decode(T.self, from: try request(method, path, body: body, type: type))
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
            guard let date = formatter.date(from: text) else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 date: \(text)")) }
            return date
        }
        return decoder
    }()

    /// One request; a refused or dropped connection is tried again after 0.5, 1, 2
    /// and 4 s (a server restarting); an HTTP error is reported with the server's words.
    func request(_ method: String, _ path: String, body: Data?, type: String?) throws -> Data {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = method
        request.timeoutInterval = 120
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let type { request.setValue(type, forHTTPHeaderField: "Content-Type") }
        request.httpBody = body
        var delay = 0.5
        while true {
            let result = RemoteClient.perform(request)
            switch result {
            case .success(let (status, data)):
                guard (200..<300).contains(status) else {
                    let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
                    let message = object?["error"] as? String ?? String(decoding: data.prefix(500), as: UTF8.self)
                    throw Failure(status: status, message: "\(url) answered \(status): \(message)", code: object?["code"] as? String)
                }
                return data
            case .failure(let error):
                guard delay <= 4 else { throw Failure(status: 0, message: "cannot reach \(url): \(error.localizedDescription)") }
                Thread.sleep(forTimeInterval: delay)
                delay *= 2
            }
        }
    }

    static func perform(_ request: URLRequest) -> Result<(Int, Data), any Error> {
        let outcome = Mutex<Result<(Int, Data), any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            let result: Result<(Int, Data), any Error>
            if let error {
                result = .failure(error)
            } else {
                result = .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
            }
            outcome.withLock { $0 = result }
            done.signal()
        }.resume()
        done.wait()
        return outcome.withLock { $0! }
    }

}
