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

    /// The JSON API, one entry per route: what the router serves and what
    /// /api/v1/openapi.json says (`OpenAPI`), so the two cannot differ.
    static let routes: [APIRoute] = [
        APIRoute(.get, "whoami", "The token's holder and role", handler: { $0.whoAmI }),
        APIRoute(.get, "sets", "Every set's summary, as `list --format json`", query: ["all"], handler: { $0.listSets }),
        APIRoute(
            .post, "sets", "Store a prediction CSV as a set (import's formats and checks): the body, or a form's file",
            query: ["name", "dataset", "invalid", "subset", "tag", "note"], body: ["text/csv", "multipart/form-data"],
            handler: { $0.importSet }),
        APIRoute(.get, "sets/:ref", "A set, as `show --format json`", handler: { $0.showSet }),
        APIRoute(.get, "sets/:ref/csv", "A set's canonical CSV", answers: "text/csv", handler: { $0.setCSV }),
        APIRoute(
            .post, "sets/:ref/scores", "Record leaderboard scores: {public, private, note, simulated}", body: ["application/json"],
            handler: { $0.recordScores }),
        APIRoute(.post, "sets/:ref/retract", "Retract the latest recorded scores", handler: { $0.retractScores }),
        APIRoute(
            .post, "ensembles", "Build and record an ensemble: {name, members or top, method, weights, ...}", body: ["application/json"],
            handler: { $0.buildEnsemble }),
        APIRoute(.get, "diff", "Two sets' differences and transition matrix", query: ["a", "b"], handler: { $0.diff }),
        APIRoute(.get, "agree", "Pairwise agreement and kappa", query: ["sets", "top"], handler: { $0.agreement }),
        APIRoute(.get, "uploads", "The upload log and today's remaining uploads", handler: { $0.uploads }),
        APIRoute(
            .post, "datasets", "Register an exam file (the body, or a form's file); answers its digest",
            body: ["text/csv", "multipart/form-data"], handler: { $0.registerDataset }),
        APIRoute(.get, "datasets/:sha", "A dataset's exam file", answers: "text/csv", handler: { $0.dataset }),
        APIRoute(
            .put, "datasets/:sha", "Register an exam file whose parsed content has this digest", body: ["text/csv"],
            handler: { $0.receiveDataset }),
        APIRoute(
            .post, "sync/have", "Which of a pusher's sets and datasets are here (push)", body: ["application/json"], handler: { $0.have }),
        APIRoute(.get, "sync/bundles", "Every set as a bundle, without rows (pull)", handler: { $0.bundles }),
        APIRoute(.post, "sync/bundles", "Receive a set's bundle (push)", body: ["application/json"], handler: { $0.receiveBundle }),
        APIRoute(.get, "openapi.json", "This document", handler: { _ in { _, _ in text(OpenAPI.document, type: "application/json") } })
    ]

    func register(on api: RouterGroup<ServerContext>) {
        for route in Self.routes { api.on(RouterPath(route.path), method: route.method, use: route.handler(self)) }
    }

    /// GET /api/v1/sets[?all=1]: the sets' summaries, hidden ones only with all.
    @Sendable func listSets(_ request: Request, context: ServerContext) async throws -> Response {
        let all = try FormValues(query: request).flag("all")
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
        let query = try FormValues(query: request)
        let (a, b) = (try query.required("a"), try query.required("b"))
        return try await json { try SetDiff(try store.predictionSet(a), try store.predictionSet(b), store: store) }
    }

    /// GET /api/v1/agree?sets=A,B,... or ?top=K
    @Sendable func agreement(_ request: Request, context: ServerContext) async throws -> Response {
        let query = try FormValues(query: request)
        let list = query["sets"].map { $0.split(separator: ",").map(String.init) }
        let top = query["top"].flatMap { Int($0) }
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

    /// POST /api/v1/datasets with an exam file (the body, or a multipart form's file):
    /// registered as `import --dataset` registers one; answers its digest, the one that
    /// POST /sets takes.
    @Sendable func registerDataset(_ request: Request, context: ServerContext) async throws -> Response {
        let upload = try await Upload(request, context: context)
        return try await json { () -> DatasetAnswer in
            let dataset = try store.registerDataset(bytes: upload.bytes, file: upload.fileName ?? "the uploaded exam file")
            return DatasetAnswer(contentSha256: dataset.contentSha256!, items: dataset.itemCount)
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

    /// POST /api/v1/sets?name=N&dataset=SHA256[&invalid=as-wrong][&subset=1][&tag=T...][&note=...]
    /// with the prediction CSV as the body, or the same fields and the file as a
    /// multipart form (what `requests.post(files=...)` sends): `import`'s formats and checks.
    @Sendable func importSet(_ request: Request, context: ServerContext) async throws -> Response {
        let upload = try await Upload(request, context: context)
        let form = upload.fields
        let name = try form.required("name")
        let sha = try form.required("dataset")
        let invalid =
            try form["invalid"].map { value in
                guard let rule = InvalidAnswerRule(rawValue: value) else { throw StoreError.invalid("invalid must be refuse or as-wrong") }
                return rule
            } ?? .refuse
        let subset = try form.flag("subset")
        let notes = Store.SetNotes(author: context.token?.name, tags: form.all("tag"), note: form["note"])
        let bytes = upload.bytes
        let lineage = Lineage(commandLine: "POST /api/v1/sets (\(context.token?.name ?? "?"))", toolVersion: suneungVersion)
        return try await json { () -> ImportAnswer in
            guard let dataset = try store.dataset(digest: sha) else { throw SyncError.datasetMissing(sha) }
            let report = try importPredictions(
                [ImportRequest(file: "\(upload.fileName ?? "\(name).csv") (uploaded)", name: name, bytes: bytes)], dataset: dataset,
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

/// What an upload carries: its fields (the query's, then a multipart form's) and its
/// file (the body itself, or the form's one file).
struct Upload: Sendable {
    var fields: FormValues
    var bytes: [UInt8]
    var fileName: String?

    init(_ request: Request, context: ServerContext) async throws {
        let bytes = try await body(request, context: context)
        fields = try FormValues(query: request)
        if let form = try MultipartForm(contentType: request.headers[.contentType], body: bytes) {
            guard let file = form.file else { throw StoreError.invalid("the form has no file: send the CSV as a file part") }
            fields = fields.merging(form.fields)
            (self.bytes, fileName) = (file.bytes, excerpt(file.name, limit: 120))
        } else {
            self.bytes = bytes
        }
    }
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
