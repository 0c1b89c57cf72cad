import Ensemble
import Exam
import Foundation
import Hummingbird
import Store
import Workflow

/// The JSON API under /api/v1: what the command line does to a store, over HTTP.
/// Every handler validates what it takes (names as the CLI does; a dataset by its
/// content digest, never a path) and runs the store's work off the event loop.
struct API {
    let store: Store

    func register(on api: RouterGroup<ServerContext>) {
        api.get("sets") { request, _ in
            let all = request.uri.queryParameters["all"].map { $0 == "1" || $0 == "true" } ?? false
            return try await json { try store.summaries().filter { all || !$0.hidden } }
        }
        api.get("sets/:ref") { _, context in
            let ref = try setRef(context)
            return try await json { try SetDetail(try store.predictionSet(ref), store: store) }
        }
        api.get("sets/:ref/csv") { _, context in
            let ref = try setRef(context)
            let csv = try await blocking { try store.canonicalCSV(of: try store.predictionSet(ref)) }
            return text(csv, type: "text/csv; charset=utf-8")
        }
        api.post("sets") { request, context in try await importSet(request, context: context) }
        api.post("sets/:ref/scores") { request, context in
            let ref = try setRef(context)
            let body = try await decode(ScoreRequest.self, request)
            let author = context.token?.name
            return try await json { () -> [ScoreResult] in
                let set = try store.predictionSet(ref)
                if body.public != nil || body.private != nil, let rows = set.itemCount,
                    rows < (try store.dataset(id: set.datasetId)).itemCount
                {
                    throw StoreError.invalid("\(set.ref) is a subset: it was never uploaded, so it has no leaderboard score")
                }
                // A local score is computed from a gold file where the rows are (score locally, then push).
                let scores = [
                    body.public.map { (ScoreKind.public, $0, body.note) }, body.private.map { (ScoreKind.private, $0, body.note) }
                ].compactMap { $0 }
                guard !scores.isEmpty else { throw StoreError.invalid("give public and/or private") }
                return try store.addScores(to: set, scores, author: author, simulated: body.simulated ?? false).map {
                    ScoreResult(set: set.ref.description, kind: $0.kind, value: $0.value, recorded: $0.recorded)
                }
            }
        }
        api.post("sets/:ref/retract") { _, context in
            let ref = try setRef(context)
            return try await json { () -> [ScoreRecord] in try store.retractLatestScores(of: try store.predictionSet(ref)) }
        }
        api.post("ensembles") { request, context in
            let spec = try await decode(EnsembleSpec.self, request)
            let author = context.token?.name
            let lineage = Lineage(commandLine: "POST /api/v1/ensembles (\(author ?? "?"))", toolVersion: Tool.version)
            return try await json { try buildEnsemble(spec, store: store, lineage: lineage, author: author) }
        }
        api.get("diff") { request, _ in
            let (a, b) = (try query(request, "a"), try query(request, "b"))
            return try await json { try SetDiff(try store.predictionSet(a), try store.predictionSet(b), store: store) }
        }
        api.get("agree") { request, _ in
            let list = request.uri.queryParameters["sets"].map { String($0).split(separator: ",").map(String.init) }
            let top = request.uri.queryParameters["top"].flatMap { Int($0) }
            return try await json { () -> AgreementMatrix in
                let selection = MemberSelection(store: store)
                let sets = try top.map { try selection.top($0, datasetFile: nil).sets } ?? selection.named(list ?? [])
                return try AgreementMatrix(sets, store: store)
            }
        }
        api.get("uploads") { _, _ in try await json { try UploadLog(store: store) } }
        api.get("datasets/:sha") { _, context in
            let sha = try context.parameters.require("sha")
            let bytes = try await blocking { () -> [UInt8] in
                guard let dataset = try store.dataset(digest: sha) else {
                    throw StoreError.notFound("no dataset with sha256 \(excerpt(sha, limit: 20))")
                }
                return try store.datasetFile(dataset)
            }
            return Response(
                status: .ok, headers: [.contentType: "text/csv; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        api.put("datasets/:sha") { request, context in
            let sha = try context.parameters.require("sha")
            let bytes = try await body(request, context: context)
            return try await json { () -> DatasetAnswer in
                let dataset = try store.receiveDataset(bytes: bytes, contentSha256: sha)
                return DatasetAnswer(contentSha256: sha, items: dataset.itemCount)
            }
        }
        api.get("whoami") { _, context in
            try await json { [token = context.token] in WhoAmI(name: token?.name ?? "", role: token?.role ?? .read) }
        }
        api.post("sync/have") { request, _ in
            let asked = try await decode(HaveRequest.self, request)
            guard asked.sets.count <= 100_000, asked.datasets.count <= 10_000 else {
                throw StoreError.invalid("too many entries in one request")
            }
            return try await json {
                let have = try asked.sets.map {
                    try store.set(named: $0.name, csvSha256: $0.csvSha256, datasetContentSha256: $0.dataset) != nil
                }
                // Names that belong to another kind of set here: the push would stop there.
                let conflicts = zip(asked.sets, have).compactMap { entry, present -> String? in
                    guard !present, let origin = entry.origin else { return nil }
                    do { try store.checkNameTakes(entry.name, origin: origin) } catch { return "\(error)" }
                    return nil
                }
                return HaveAnswer(
                    sets: have, datasets: try asked.datasets.map { try store.dataset(contentSha256: $0) != nil }, conflicts: conflicts)
            }
        }
        // Bundles carry their dates in milliseconds, the precision a score is recognised by.
        api.get("sync/bundles") { _, _ in try await json(encoder: SetBundle.encoder) { try store.bundles(withCSV: false) } }
        api.post("sync/bundles") { request, context in
            let bytes = try await body(request, context: context)
            let bundle = try SetBundle.decoder.decode(SetBundle.self, from: Data(bytes))
            if let method = bundle.submission?.method, Ensemble.Method(rawValue: method) == nil {
                throw StoreError.invalid("\(bundle.ref): unknown ensemble method '\(excerpt(method))'")
            }
            let author = context.token?.name
            return try await json { try store.receive(bundle, author: author) }
        }
    }

    /// POST /api/v1/sets?name=N&dataset=CONTENT_SHA256[&invalid=as-wrong][&subset=1][&tag=T...][&note=...]
    /// with the prediction CSV as the body: `import`'s formats and checks.
    func importSet(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try query(request, "name")
        let sha = try query(request, "dataset")
        let parameters = request.uri.queryParameters
        let invalid =
            try parameters["invalid"].map { value in
                guard let rule = InvalidAnswerRule(rawValue: String(value)) else {
                    throw StoreError.invalid("invalid must be refuse or as-wrong")
                }
                return rule
            } ?? .refuse
        let subset = parameters["subset"].map { $0 == "1" || $0 == "true" } ?? false
        let notes = Store.SetNotes(
            author: context.token?.name, tags: parameters[values: "tag"].map(String.init), note: parameters["note"].map(String.init))
        let bytes = try await body(request, context: context)
        let lineage = Lineage(commandLine: "POST /api/v1/sets (\(context.token?.name ?? "?"))", toolVersion: Tool.version)
        return try await json { () -> ImportAnswer in
            guard let dataset = try store.dataset(digest: sha) else { throw SyncError.datasetMissing(sha) }
            let report = try importPredictions(
                [ImportRequest(file: "\(name).csv (uploaded)", name: name, bytes: bytes)], dataset: dataset,
                options: PredictionFileOptions(invalidAnswers: invalid, subset: subset), notes: notes, lineage: lineage, store: store)[0]
            let created: Bool
            if case .created = report.outcome { created = true } else { created = false }
            return ImportAnswer(
                set: report.outcome.set.ref.description, created: created, rows: report.reading.table.rows.count,
                invalidAnswers: report.reading.invalidAnswers,
                ignoredColumns: report.reading.ignoredColumns, sameContent: report.sameContent.map(\.ref.description))
        }
    }
}

struct ScoreRequest: Codable {
    var `public`: Double?
    var `private`: Double?
    var note: String?
    var simulated: Bool?
}

struct ScoreResult: Codable, ResponseEncodable {
    var set: String
    var kind: ScoreKind
    var value: Double
    var recorded: Bool
}

struct DatasetAnswer: Codable {
    var contentSha256: String
    var items: Int
}

struct ImportAnswer: Codable {
    var set: String
    var created: Bool
    var rows: Int
    var invalidAnswers: Int
    var ignoredColumns: [String]
    var sameContent: [String]
}

/// Which of these sets (by name and content) and datasets the server has.
public struct HaveRequest: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var name: String
        public var csvSha256: String
        public var dataset: String
        public var origin: SetOrigin?
    }

    public var sets: [Entry]
    public var datasets: [String]
}

public struct HaveAnswer: Codable, Sendable {
    public var sets: [Bool]
    public var datasets: [Bool]
    /// Why some sets could not be received (a name of another kind of set there).
    public var conflicts: [String]
}

/// Whose token this is.
public struct WhoAmI: Codable, Sendable {
    public var name: String
    public var role: TokenRole
}

// MARK: - Helpers

/// The API's JSON: sorted keys, ISO 8601 dates, as the CLI's --format json.
let apiEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return encoder
}()

/// Runs `body` off the event loop and answers its value as JSON.
func json<T: Encodable & Sendable>(encoder: JSONEncoder = apiEncoder, _ body: @escaping @Sendable () throws -> T) async throws -> Response {
    let data = try encoder.encode(try await blocking(body))
    return Response(
        status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func text(_ text: String, type: String) -> Response {
    Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// The body, up to 64 MB (413 beyond).
func body(_ request: Request, context: ServerContext) async throws -> [UInt8] {
    var request = request
    let buffer = try await request.collectBody(upTo: context.maxUploadSize)
    return Array(buffer.readableBytesView)
}

func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
    var request = request
    let buffer = try await request.collectBody(upTo: Server.maxBody)
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return try decoder.decode(T.self, from: Data(buffer.readableBytesView))
}

/// A set reference from the path, percent-decoded and checked as the CLI checks it.
func setRef(_ context: ServerContext) throws -> SetRef {
    let raw = try context.parameters.require("ref")
    return try SetRef(parsing: raw.removingPercentEncoding ?? raw)
}

func query(_ request: Request, _ name: String) throws -> String {
    guard let value = request.uri.queryParameters[Substring(name)], !value.isEmpty else {
        throw StoreError.invalid("the query needs \(name)=...")
    }
    return String(value).removingPercentEncoding ?? String(value)
}
