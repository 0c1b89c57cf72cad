import Ensemble
import Exam
import Foundation
import Hummingbird
import Store
import TeamClient
import Workflow

/// The JSON API under /api/v1: what the command line does to a store, over HTTP.
/// Every handler validates what it takes (names as the CLI does; a dataset by its
/// content digest, never a path) and runs the store's work off the event loop.
struct API: Sendable {
    let store: Store

    func register(on api: RouterGroup<ServerContext>) {
        api.get("sets", use: listSets)
        api.post("sets", use: importSet)
        api.get("sets/:ref", use: showSet)
        api.get("sets/:ref/csv", use: setCSV)
        api.post("sets/:ref/scores", use: recordScores)
        api.post("sets/:ref/retract", use: retractScores)
        api.post("ensembles", use: buildEnsemble)
        api.get("diff", use: diff)
        api.get("agree", use: agreement)
        api.get("uploads", use: uploads)
        api.get("datasets/:sha", use: dataset)
        api.put("datasets/:sha", use: receiveDataset)
        api.get("whoami", use: whoAmI)
        api.post("sync/have", use: have)
        api.get("sync/bundles", use: bundles)
        api.post("sync/bundles", use: receiveBundle)
    }

    /// GET /api/v1/sets[?all=1]: the sets' summaries, hidden ones only with all.
    @Sendable func listSets(_ request: Request, context: ServerContext) async throws -> Response {
        let all = request.uri.queryParameters["all"].map { $0 == "1" || $0 == "true" } ?? false
        return try await json { try store.summaries().filter { all || !$0.hidden } }
    }

    @Sendable func showSet(_ request: Request, context: ServerContext) async throws -> Response {
        let ref = try setRef(context)
        return try await json { try SetDetail(try store.predictionSet(ref), store: store) }
    }

    @Sendable func setCSV(_ request: Request, context: ServerContext) async throws -> Response {
        let ref = try setRef(context)
        let csv = try await blocking { try store.canonicalCSV(of: try store.predictionSet(ref)) }
        return text(csv, type: "text/csv; charset=utf-8")
    }

    /// POST /api/v1/sets/REF/scores: `score` (public and private; a local score is
    /// computed from a gold file where the rows are: score locally, then push).
    @Sendable func recordScores(_ request: Request, context: ServerContext) async throws -> Response {
        let ref = try setRef(context)
        let body = try await decode(ScoreRequest.self, request)
        let scores = NewScores(
            set: ref.description, publicScore: body.public, privateScore: body.private, note: body.note, author: context.token?.name,
            simulated: body.simulated ?? false)
        return try await json { try Workflow.recordScores(scores, store: store) }
    }

    @Sendable func retractScores(_ request: Request, context: ServerContext) async throws -> Response {
        let ref = try setRef(context)
        return try await json { () -> [ScoreRecord] in try store.retractLatestScores(of: try store.predictionSet(ref)) }
    }

    @Sendable func buildEnsemble(_ request: Request, context: ServerContext) async throws -> Response {
        let spec = try await decode(EnsembleSpec.self, request)
        let author = context.token?.name
        let lineage = Lineage(commandLine: "POST /api/v1/ensembles (\(author ?? "?"))", toolVersion: suneungVersion)
        return try await json { try Workflow.buildEnsemble(spec, store: store, lineage: lineage, author: author) }
    }

    /// GET /api/v1/diff?a=REF&b=REF
    @Sendable func diff(_ request: Request, context: ServerContext) async throws -> Response {
        let (a, b) = (try query(request, "a"), try query(request, "b"))
        return try await json { try SetDiff(try store.predictionSet(a), try store.predictionSet(b), store: store) }
    }

    /// GET /api/v1/agree?sets=A,B,... or ?top=K
    @Sendable func agreement(_ request: Request, context: ServerContext) async throws -> Response {
        let list = request.uri.queryParameters["sets"].map { String($0).split(separator: ",").map(String.init) }
        let top = request.uri.queryParameters["top"].flatMap { Int($0) }
        return try await json { () -> AgreementMatrix in
            let selection = MemberSelection(store: store)
            let sets = try top.map { try selection.top($0, datasetFile: nil).sets } ?? selection.named(list ?? [])
            return try AgreementMatrix(sets, store: store)
        }
    }

    @Sendable func uploads(_ request: Request, context: ServerContext) async throws -> Response {
        try await json { try UploadLog(store: store) }
    }

    /// GET /api/v1/datasets/CONTENT_SHA256: the exam file's bytes.
    @Sendable func dataset(_ request: Request, context: ServerContext) async throws -> Response {
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

    /// PUT /api/v1/datasets/CONTENT_SHA256 with the exam file: checked against the digest.
    @Sendable func receiveDataset(_ request: Request, context: ServerContext) async throws -> Response {
        let sha = try context.parameters.require("sha")
        let bytes = try await body(request, context: context)
        return try await json { () -> DatasetAnswer in
            let dataset = try store.receiveDataset(bytes: bytes, contentSha256: sha)
            return DatasetAnswer(contentSha256: sha, items: dataset.itemCount)
        }
    }

    @Sendable func whoAmI(_ request: Request, context: ServerContext) async throws -> Response {
        try await json { [token = context.token] in WhoAmI(name: token?.name ?? "", role: token?.role ?? .read) }
    }

    /// POST /api/v1/sync/have: which of a pusher's sets and datasets are here already.
    @Sendable func have(_ request: Request, context: ServerContext) async throws -> Response {
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

    /// GET /api/v1/sync/bundles: every set as a bundle, for pull. Bundles carry their
    /// dates in milliseconds, the precision a score is recognised by.
    @Sendable func bundles(_ request: Request, context: ServerContext) async throws -> Response {
        try await json(encoder: SetBundle.encoder) { try store.bundles(withCSV: false) }
    }

    @Sendable func receiveBundle(_ request: Request, context: ServerContext) async throws -> Response {
        let bytes = try await body(request, context: context)
        let bundle = try SetBundle.decoder.decode(SetBundle.self, from: Data(bytes))
        if let method = bundle.submission?.method, Ensemble.Method(rawValue: method) == nil {
            throw StoreError.invalid("\(bundle.ref): unknown ensemble method '\(excerpt(method))'")
        }
        let author = context.token?.name
        return try await json { try store.receive(bundle, author: author) }
    }

    /// POST /api/v1/sets?name=N&dataset=CONTENT_SHA256[&invalid=as-wrong][&subset=1][&tag=T...][&note=...]
    /// with the prediction CSV as the body: `import`'s formats and checks.
    @Sendable func importSet(_ request: Request, context: ServerContext) async throws -> Response {
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
        let lineage = Lineage(commandLine: "POST /api/v1/sets (\(context.token?.name ?? "?"))", toolVersion: suneungVersion)
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
