import Exam
import Foundation
import Hummingbird
import HummingbirdTesting
import Server
import Store
import TeamClient
import TestSupport
import Workflow
import XCTest

/// Every route of the team server, in process (Hummingbird's router test framework),
/// over a small store; and the hostile requests, each leaving the store unchanged.
// Its state is set in setUp, before any request runs.
final class RouteTests: XCTestCase, @unchecked Sendable {
    var root: URL!
    var store: Store!
    var writer = ""
    var reader = ""

    let exam = SampleFiles.exam

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-server-\(UUID())")
        store = try Store(workspace: Workspace(root: root), create: true)
        try exam.write(to: root.appendingPathComponent("test.csv"), atomically: true, encoding: .utf8)
        try SampleFiles.run.write(to: root.appendingPathComponent("run.csv"), atomically: true, encoding: .utf8)
        try SampleFiles.other.write(to: root.appendingPathComponent("other.csv"), atomically: true, encoding: .utf8)
        let lineage = Lineage(commandLine: "test", toolVersion: suneungVersion)
        _ = try importPredictions(
            [
                ImportRequest(file: root.appendingPathComponent("run.csv").path, name: "run"),
                ImportRequest(file: root.appendingPathComponent("other.csv").path, name: "other")
            ],
            datasetFile: root.appendingPathComponent("test.csv").path, options: PredictionFileOptions(),
            notes: Store.SetNotes(author: "kim", tags: ["base"]), lineage: lineage, store: store)
        try store.addScores(to: try store.predictionSet("run"), [(.public, 0.8, "first upload")], author: "kim")
        try store.addScores(to: try store.predictionSet("other"), [(.public, 0.7, nil)], author: "kim")
        writer = try store.addToken(name: "lee", role: .write).token
        reader = try store.addToken(name: "park", role: .read).token
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    var datasetSha: String { get throws { try store.dataset(id: try store.predictionSet("run").datasetId).contentSha256! } }

    func headers(_ token: String?, type: String? = nil) -> HTTPFields {
        var fields = HTTPFields()
        if let token { fields[.authorization] = "Bearer \(token)" }
        if let type { fields[.contentType] = type }
        return fields
    }

    func withApp(_ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: Server.router(store: store))
        try await app.test(.router, test)
    }

    /// The store as rows: what no refused request may change.
    func dump() throws -> String {
        let sets = try store.summaries().map { "\($0.ref) \($0.csvSha256) \($0.public ?? -1) \($0.tags) \($0.note ?? "") \($0.hidden)" }
        let scores = try store.summaries().flatMap { s in
            try store.scores(of: try store.predictionSet(id: s.id)).map { "\(s.ref) \($0.kind) \($0.value) \($0.retractedAt == nil)" }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("predictions").path).sorted()
        return (sets + scores + files + [try store.tokens().map { "\($0.name) \($0.revokedAt == nil)" }.joined(separator: ",")]).joined(
            separator: "\n")
    }

    func testReadRoutes() async throws {
        let (reader, sha) = (reader, try datasetSha)
        try await withApp { client in
            try await client.execute(uri: "/health", method: .get) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/api/v1/sets", method: .get, headers: self.headers(reader)) { response in
                XCTAssertEqual(response.status, .ok)
                let sets = try JSONDecoder.iso.decode([Store.SetSummary].self, from: Data(buffer: response.body))
                XCTAssertEqual(sets.map(\.ref), ["other@v1", "run@v1"])
                XCTAssertEqual(sets.first { $0.ref == "run@v1" }?.public, 0.8)
            }
            try await client.execute(uri: "/api/v1/sets/run", method: .get, headers: self.headers(reader)) { response in
                let detail = try JSONDecoder.iso.decode(SetDetail.self, from: Data(buffer: response.body))
                XCTAssertEqual(detail.ref, "run@v1")
                XCTAssertEqual(detail.tags, ["base"])
                XCTAssertEqual(detail.scores.map(\.value), [0.8])
                XCTAssertEqual(detail.answers, ["1": 1, "2": 1, "5": 1])
            }
            try await client.execute(uri: "/api/v1/sets/run@v1/csv", method: .get, headers: self.headers(reader)) { response in
                XCTAssertEqual(sha256Hex(Array(Data(buffer: response.body))), try self.store.predictionSet("run").csvSha256)
            }
            try await client.execute(uri: "/api/v1/sets/nope", method: .get, headers: self.headers(reader)) {
                XCTAssertEqual($0.status, .notFound)
            }
            try await client.execute(uri: "/api/v1/diff?a=run&b=other", method: .get, headers: self.headers(reader)) { response in
                let diff = try JSONDecoder.iso.decode(SetDiff.self, from: Data(buffer: response.body))
                XCTAssertEqual(diff.differing.map(\.item), ["q1"])
                XCTAssertEqual(diff.transitions[2][1], 1)
            }
            try await client.execute(uri: "/api/v1/agree?sets=run,other", method: .get, headers: self.headers(reader)) { response in
                let matrix = try JSONDecoder.iso.decode(AgreementMatrix.self, from: Data(buffer: response.body))
                XCTAssertEqual(matrix.agreement[0][1], 2.0 / 3, accuracy: 1e-12)
            }
            try await client.execute(uri: "/api/v1/uploads", method: .get, headers: self.headers(reader)) { response in
                let log = try JSONDecoder.iso.decode(UploadLog.self, from: Data(buffer: response.body))
                XCTAssertEqual(log.uploads.count, 2)
                XCTAssertEqual(log.remainingToday, log.dailySubmissions - 2)
            }
            try await client.execute(uri: "/api/v1/datasets/\(sha)", method: .get, headers: self.headers(reader)) { response in
                XCTAssertEqual(String(buffer: response.body), self.exam)
            }
            // The file's sha256, as `list` shows it, names the dataset too.
            let fileSha = try self.store.summaries()[0].datasetSha256
            try await client.execute(uri: "/api/v1/datasets/\(fileSha)", method: .get, headers: self.headers(reader)) {
                XCTAssertEqual($0.status, .ok)
            }
            try await client.execute(uri: "/api/v1/whoami", method: .get, headers: self.headers(reader)) { response in
                XCTAssertEqual(try JSONDecoder().decode(WhoAmI.self, from: Data(buffer: response.body)).name, "park")
            }
            try await client.execute(uri: "/api/v1/sync/bundles", method: .get, headers: self.headers(reader)) { response in
                let bundles = try SetBundle.decoder.decode([SetBundle].self, from: Data(buffer: response.body))
                XCTAssertEqual(bundles.map(\.name), ["run", "other"])
                XCTAssertNil(bundles[0].csv)
                XCTAssertEqual(bundles[0].scores.map(\.value), [0.8])
            }
            // The dashboard's pages.
            for (page, says) in [
                ("/", "run@v1"), ("/sets/run", "first upload"), ("/compare?a=run&b=other", "agree on 2 of 3"),
                ("/agreement?top=2", "Agreement of the top 2"),
                ("/uploads", "2 of 10 uploads used"), ("/reports", "No pipeline")
            ] {
                try await client.execute(uri: page, method: .get, headers: self.headers(reader)) { response in
                    XCTAssertEqual(response.status, .ok, page)
                    XCTAssertTrue(String(buffer: response.body).contains(says), "\(page) should say \(says)")
                }
            }
            try await client.execute(uri: "/reports/nope", method: .get, headers: self.headers(reader)) {
                XCTAssertEqual($0.status, .notFound)
            }
            // A pipeline's report, rebuilt from the store as `suneung report` writes it.
            let pipeline = PipelineRecord(
                name: "pipe", config: "", trainingRun: nil, members: ["run@v1", "other@v1"], chosen: ["run@v1", "other@v1"], ensembles: [],
                gold: nil, updatedAt: Date())
            try self.store.savePipeline(pipeline)
            _ = try PipelineReport.write(store: self.store, pipeline: pipeline)
            try await client.execute(uri: "/reports", method: .get, headers: self.headers(reader)) {
                XCTAssertTrue(String(buffer: $0.body).contains("/reports/pipe"))
            }
            try await client.execute(uri: "/reports/pipe", method: .get, headers: self.headers(reader)) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertTrue(String(buffer: response.body).contains("Suneung: pipe"))
            }
            try await client.execute(uri: "/api/v1/agree?top=2", method: .get, headers: self.headers(reader)) { response in
                XCTAssertEqual(
                    try JSONDecoder.iso.decode(AgreementMatrix.self, from: Data(buffer: response.body)).sets, ["run@v1", "other@v1"])
            }
        }
    }

    func testWriteRoutes() async throws {
        let (writer, sha) = (writer, try datasetSha)
        try await withApp { client in
            // An upload: import's formats (tab-separated, odd header case) and checks.
            try await client.execute(
                uri: "/api/v1/sets?name=third&dataset=\(sha)&tag=gpu&note=from%20the%20A100", method: .post,
                headers: self.headers(writer, type: "text/csv"),
                body: ByteBuffer(string: "ID\tAnswer\nq1\t3\nq2\t1\nq3\t2\n")
            ) { response in
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
            }
            let third = try self.store.predictionSet("third")
            XCTAssertEqual(third.author, "lee", "the token's name is the author")
            XCTAssertEqual(third.note, "from the A100")
            XCTAssertEqual(try self.store.tags(of: third), ["gpu"])
            // The same as a form (curl -F, requests' files=): the fields beside the file, a
            // note's `+` and `%2B` read as browsers send them, a filename with `;` and `=`.
            let form = [
                ("name", "fourth"), ("dataset", sha), ("tag", "a"), ("tag", "b"), ("note", "r=16; lr 2e-4")
            ].map { "--XyZ\r\nContent-Disposition: form-data; name=\"\($0.0)\"\r\n\r\n\($0.1)\r\n" }.joined()
            try await client.execute(
                uri: "/api/v1/sets?subset=0", method: .post, headers: self.headers(writer, type: "multipart/form-data; boundary=\"XyZ\""),
                body: ByteBuffer(
                    string: form
                        + "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"run;a=b.csv\"\r\nContent-Type: text/csv\r\n\r\nid,answer\r\nq1,2\r\nq2,2\r\nq3,2\r\n\r\n--XyZ--\r\n"
                )
            ) { response in
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
            }
            let fourth = try self.store.predictionSet("fourth")
            XCTAssertEqual(fourth.note, "r=16; lr 2e-4")
            XCTAssertEqual(fourth.lineage.sourceFile, "run;a=b.csv (uploaded)")
            XCTAssertEqual(try self.store.tags(of: fourth), ["a", "b"])
            XCTAssertEqual(try self.store.table(of: fourth).rows.map(\.answer), [2, 2, 2])
            try await client.execute(
                uri: "/api/v1/sets?name=fifth&dataset=\(sha)&note=two+words%2Bone", method: .post, headers: self.headers(writer),
                body: ByteBuffer(string: "id,answer\nq1,1\nq2,1\nq3,3\n")
            ) { XCTAssertEqual($0.status, .ok, String(buffer: $0.body)) }
            XCTAssertEqual(try self.store.predictionSet("fifth").note, "two words+one")
            // A dataset registered by upload answers its digest (a BOM and CRLF change nothing).
            try await client.execute(
                uri: "/api/v1/datasets", method: .post, headers: self.headers(writer),
                body: ByteBuffer(bytes: [0xEF, 0xBB, 0xBF] + Array(self.exam.replacingOccurrences(of: "\n", with: "\r\n").utf8))
            ) { response in
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
                XCTAssertTrue(String(buffer: response.body).contains("\"contentSha256\":\"\(sha)\""), String(buffer: response.body))
            }
            try await client.execute(
                uri: "/api/v1/sets/third/scores", method: .post, headers: self.headers(writer, type: "application/json"),
                body: ByteBuffer(string: #"{"public": 0.75, "note": "upload 3"}"#)
            ) { XCTAssertEqual($0.status, .ok) }
            XCTAssertEqual(try self.store.latestScore(of: third, .public), 0.75)
            try await client.execute(uri: "/api/v1/sets/third/retract", method: .post, headers: self.headers(writer)) {
                XCTAssertEqual($0.status, .ok)
            }
            XCTAssertNil(try self.store.latestScore(of: third, .public))
            try await client.execute(
                uri: "/api/v1/ensembles", method: .post, headers: self.headers(writer, type: "application/json"),
                body: ByteBuffer(string: #"{"name": "pair", "members": ["run", "other"], "method": "average", "weights": "uniform"}"#)
            ) { response in
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
                let built = try JSONDecoder.iso.decode(BuiltEnsemble.self, from: Data(buffer: response.body))
                XCTAssertEqual(built.recorded, "pair@v1")
            }
            XCTAssertNotNil(try self.store.submission(of: try self.store.predictionSet("pair")))
            try await client.execute(uri: "/sets/pair", method: .get, headers: self.headers(writer)) { response in
                XCTAssertTrue(String(buffer: response.body).contains("Method average"))
            }
            // A dataset by its content digest: the wrong digest is refused.
            try await client.execute(
                uri: "/api/v1/datasets/\(String(repeating: "0", count: 64))", method: .put, headers: self.headers(writer),
                body: ByteBuffer(string: self.exam)
            ) {
                XCTAssertEqual($0.status, .unprocessableContent)
            }
            try await client.execute(
                uri: "/api/v1/sync/have", method: .post, headers: self.headers(writer, type: "application/json"),
                body: ByteBuffer(
                    string:
                        #"{"sets": [{"name": "run", "csvSha256": "\#(third.csvSha256)", "dataset": "\#(sha)"}, {"name": "third", "csvSha256": "\#(third.csvSha256)", "dataset": "\#(sha)"}], "datasets": ["\#(sha)"]}"#
                )
            ) { response in
                let have = try JSONDecoder().decode(HaveAnswer.self, from: Data(buffer: response.body))
                XCTAssertEqual(have.sets, [false, true])
                XCTAssertEqual(have.datasets, [true])
            }
            // A bundle under a known name with other content: a new version.
            var bundle = try self.store.bundle(of: third, withCSV: true)
            bundle.name = "run"
            try await client.execute(
                uri: "/api/v1/sync/bundles", method: .post, headers: self.headers(writer, type: "application/json"),
                body: ByteBuffer(bytes: try SetBundle.encoder.encode(bundle))
            ) { response in
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
            }
            XCTAssertEqual(try self.store.predictionSet("run").version, 2)
            // The same again: nothing new.
            try await client.execute(
                uri: "/api/v1/sync/bundles", method: .post, headers: self.headers(writer, type: "application/json"),
                body: ByteBuffer(bytes: try SetBundle.encoder.encode(bundle))
            ) { response in
                let outcome = try JSONDecoder().decode(ReceiveOutcome.self, from: Data(buffer: response.body))
                XCTAssertFalse(outcome.created)
                XCTAssertEqual(outcome.scoresAdded, 0)
            }
            // A browser signs in once; the cookie then opens the pages.
            try await client.execute(uri: "/login?token=\(writer)", method: .get) { response in
                XCTAssertEqual(response.status, .seeOther)
                XCTAssertTrue(response.headers[.setCookie]?.contains("HttpOnly") == true)
            }
            var cookie = HTTPFields()
            cookie[.cookie] = "suneung_token=\(writer)"
            try await client.execute(uri: "/", method: .get, headers: cookie) { XCTAssertEqual($0.status, .ok) }
        }
    }

    func testHostileRequestsChangeNothing() async throws {
        let (writer, reader, sha) = (writer, reader, try datasetSha)
        let revoked = try store.addToken(name: "choi", role: .write).token
        _ = try store.revokeTokens(name: "choi")
        try store.setNote("<script>alert(1)</script>", of: try store.predictionSet("run"))
        // Bundles that this store could not keep, or would keep wrongly.
        func bundle(_ change: (inout SetBundle) -> Void) throws -> String {
            var bundle = try store.bundle(of: try store.predictionSet("run"), withCSV: true)
            bundle.name = "pushed"
            change(&bundle)
            return String(decoding: try SetBundle.encoder.encode(bundle), as: UTF8.self)
        }
        let otherBundle = try store.bundle(of: try store.predictionSet("other"), withCSV: false)
        let ensembleOf = { (members: [SetBundle.Member], method: String) in
            SetBundle.Submission(
                method: method, weightScheme: "uniform", tieRule: "lower choice number", csvSha256: String(repeating: "0", count: 64),
                members: members)
        }
        let member = SetBundle.Member(name: "other", csvSha256: otherBundle.csvSha256, weight: 1, publicScore: 0.7)
        let hostileBundles = [
            try bundle { $0.createdAt = Date(timeIntervalSince1970: 1e17) },
            try bundle { $0.createdAt = Date(timeIntervalSince1970: -1e12) },
            try bundle { $0.scores[0].createdAt = Date(timeIntervalSince1970: 1e17) },
            try bundle { $0.tags = (0..<5000).map { "t\($0)" } },
            try bundle { $0.note = "a\u{0}b" },
            // One limit for every note, however it comes (the red team's long notes).
            try bundle { $0.note = String(repeating: "n", count: 10_001) },
            try bundle { $0.scores[0].note = String(repeating: "n", count: 30_000) },
            try bundle { $0.uploads[0].author = "kim\u{1B}[2J" },
            try bundle { b in
                b.uploads = (0..<1_001).map { key in
                    var upload = b.uploads[0]
                    upload.key = Int64(key)
                    return upload
                }
            },
            try bundle { $0.lineage.commandLine = String(repeating: "x", count: 300_000) },
            try bundle {
                $0.origin = .ensemble
                $0.submission = ensembleOf([], "vote")
            },
            try bundle {
                $0.origin = .ensemble
                $0.submission = ensembleOf([member], "bogus")
            },
            try bundle {
                $0.origin = .ensemble
                $0.submission = nil
            },
            try bundle {
                $0.origin = .ensemble
                $0.submission = ensembleOf(
                    [SetBundle.Member(name: "other", csvSha256: otherBundle.csvSha256, weight: -1, publicScore: 7)], "vote")
            }
        ]
        let before = try dump()
        let csv = "id,answer\nq1,1\nq2,5\nq3,1\n"
        // One limit for every note, however it comes (the red team's long notes).
        let long10k = String(repeating: "n", count: 10_001), long50k = String(repeating: "n", count: 50_000)
        let longNotes: [(String, HTTPRequest.Method, String?, String, HTTPResponse.Status)] = [
            ("/api/v1/sets/run/scores", .post, writer, "{\"public\": 0.9, \"note\": \"\(long10k)\"}", .unprocessableContent),
            (
                "/api/v1/ensembles", .post, writer,
                "{\"name\": \"e\", \"members\": [\"run\", \"other\"], \"method\": \"vote\", \"note\": \"\(long50k)\"}",
                .unprocessableContent
            ),
            (
                "/api/v1/ensembles", .post, writer,
                "{\"name\": \"e\", \"members\": [\"run\", \"other\"], \"method\": \"vote\", \"note\": \"a\\u0000b\"}", .unprocessableContent
            ),
            ("/api/v1/sets?name=x&dataset=\(sha)&note=\(long10k)", .post, writer, csv, .unprocessableContent)
        ]
        // (uri, method, token, body, expected status)
        let cases: [(String, HTTPRequest.Method, String?, String, HTTPResponse.Status)] =
            [
                ("/api/v1/sets", .get, nil, "", .unauthorized),
                ("/api/v1/sets", .get, "snt_" + String(repeating: "a", count: 64), "", .unauthorized),
                ("/api/v1/sets", .get, revoked, "", .unauthorized),
                ("/api/v1/sets?name=x&dataset=\(sha)", .post, reader, csv, .forbidden),
                ("/api/v1/sets/run/scores", .post, reader, #"{"public": 0.9}"#, .forbidden),
                ("/api/v1/sets?name=x&dataset=\(sha)", .post, revoked, csv, .unauthorized),
                ("/api/v1/sets?name=%3Cscript%3E&dataset=\(sha)", .post, writer, csv, .unprocessableContent),
                ("/api/v1/sets?name=..%2F..%2Fetc&dataset=\(sha)", .post, writer, csv, .unprocessableContent),
                ("/api/v1/sets?name=\(String(repeating: "a", count: 300))&dataset=\(sha)", .post, writer, csv, .unprocessableContent),
                ("/api/v1/sets?name=x&dataset=\(sha)", .post, writer, "id,answer\nq1,9\nq2,5\n", .unprocessableContent),
                ("/api/v1/sets?name=x&dataset=../../etc/passwd", .post, writer, csv, .unprocessableContent),
                ("/api/v1/sets/..%2F..%2Fsuneung.sqlite/csv", .get, writer, "", .unprocessableContent),
                ("/api/v1/sets/run/scores", .post, writer, #"{"public": "#, .badRequest),
                ("/api/v1/sets/run/scores", .post, writer, #"{"public": 80}"#, .unprocessableContent),
                ("/api/v1/ensembles", .post, writer, #"{"name": "e", "members": [["deep"]], "method": "vote"}"#, .badRequest),
                (
                    "/api/v1/ensembles", .post, writer, #"{"name": "../e", "members": ["run", "other"], "method": "vote"}"#,
                    .unprocessableContent
                ),
                ("/api/v1/sync/bundles", .post, writer, "{" + String(repeating: "[", count: 100_000), .badRequest),
                ("/api/v1/datasets/..%2F..%2Fx", .put, writer, "id\n", .unprocessableContent),
                ("/api/v1/datasets/\(sha)", .put, writer, "", .unprocessableContent),
                ("/api/v1/sets/run@v+1", .get, reader, "", .unprocessableContent),
                ("/api/v1/sets/run@v01", .get, reader, "", .unprocessableContent),
                ("/api/v1/sets/run/scores", .post, writer, #"{"local": 0.9}"#, .unprocessableContent),
                ("/api/v1/sets/run/scores", .post, writer, #"{"public": 0.9, "note": "a\u0000b"}"#, .unprocessableContent),
                ("/api/v1/sets?name=x&dataset=zzzz", .post, writer, csv, .unprocessableContent)
            ] + longNotes + hostileBundles.map { ("/api/v1/sync/bundles", .post, writer, $0, .unprocessableContent) }
        try await withApp { client in
            for (uri, method, token, body, expected) in cases {
                try await client.execute(uri: uri, method: method, headers: self.headers(token), body: ByteBuffer(string: body)) {
                    response in
                    XCTAssertEqual(response.status, expected, "\(method) \(uri.prefix(80)): \(String(buffer: response.body).prefix(300))")
                }
            }
            // Forms that cannot be an upload: each said, none stored.
            func part(_ disposition: String, _ body: String) -> String {
                "--b0\r\nContent-Disposition: \(disposition)\r\n\r\n\(body)\r\n"
            }
            let name = part("form-data; name=\"name\"", "x") + part("form-data; name=\"dataset\"", sha)
            let file = part("form-data; name=\"file\"; filename=\"x.csv\"", csv)
            let forms: [(String, String, String)] = [
                ("multipart/form-data", name + file + "--b0--\r\n", "needs its boundary"),
                ("multipart/form-data; boundary=b0", name + "--b0--\r\n", "the form has no file"),
                ("multipart/form-data; boundary=b0", name + file + file + "--b0--\r\n", "more than one file"),
                ("multipart/form-data; boundary=b0", name + part("form-data", "1") + file + "--b0--\r\n", "has no name"),
                ("multipart/form-data; boundary=b0", name + String(file.prefix(40)), "the form has no file"),
                ("multipart/form-data; boundary=b0", part("form-data; name=\"name\"", "../x") + file + "--b0--\r\n", "needs dataset"),
                (
                    "multipart/form-data; boundary=b0",
                    part("form-data; name=\"name\"", "../x") + part("form-data; name=\"dataset\"", sha) + file + "--b0--\r\n",
                    "name '../x' must be"
                ),
                ("multipart/form-data; boundary=\"\(String(repeating: "b", count: 300))\"", name + file, "needs its boundary")
            ]
            for (type, body, says) in forms {
                try await client.execute(
                    uri: "/api/v1/sets", method: .post, headers: self.headers(writer, type: type), body: ByteBuffer(string: body)
                ) { response in
                    XCTAssertEqual(response.status, .unprocessableContent, "\(type): \(body.prefix(100))")
                    XCTAssertTrue(String(buffer: response.body).contains(says), "\(says): \(String(buffer: response.body))")
                }
            }
            // A query that is not percent-encoded UTF-8; a dataset that is not an exam file.
            for (uri, body, says) in [
                ("/api/v1/sets?name=x%ZZ&dataset=\(sha)", csv, "not percent-encoded UTF-8"),
                ("/api/v1/sets?name=x%C3%28&dataset=\(sha)", csv, "not percent-encoded UTF-8"),
                ("/api/v1/datasets", "", "header"), ("/api/v1/datasets", "id,answer\nq1,1\n", "header")
            ] {
                try await client.execute(uri: uri, method: .post, headers: self.headers(writer), body: ByteBuffer(string: body)) {
                    XCTAssertEqual($0.status, .unprocessableContent, uri)
                    XCTAssertTrue(String(buffer: $0.body).contains(says), "\(says): \(String(buffer: $0.body))")
                }
            }
            try await client.execute(
                uri: "/api/v1/datasets", method: .post, headers: self.headers(reader), body: ByteBuffer(string: self.exam)
            ) {
                XCTAssertEqual($0.status, .forbidden)
            }
            // More than 64 MB: 413 before the store sees it, said in JSON.
            try await client.execute(
                uri: "/api/v1/sets?name=big&dataset=\(sha)", method: .post, headers: self.headers(writer),
                body: ByteBuffer(repeating: UInt8(ascii: "1"), count: 100 * 1024 * 1024)
            ) { response in
                XCTAssertEqual(response.status, .contentTooLarge)
                XCTAssertTrue(String(buffer: response.body).contains("larger than 64 MB"))
            }
            // The dashboard's cookie reads; it never writes (no cross-site writes).
            var cookie = HTTPFields()
            cookie[.cookie] = "suneung_token=\(writer)"
            try await client.execute(
                uri: "/api/v1/sets/run/scores", method: .post, headers: cookie, body: ByteBuffer(string: #"{"public": 0.9}"#)
            ) { XCTAssertEqual($0.status, .unauthorized) }
            // A page's refusal is a page.
            try await client.execute(uri: "/sets/nope", method: .get, headers: self.headers(reader)) { response in
                XCTAssertEqual(response.status, .notFound)
                XCTAssertEqual(response.headers[.contentType], "text/html; charset=utf-8")
            }
            // A note holding a script is shown as text, never as markup.
            try await client.execute(uri: "/sets/run", method: .get, headers: self.headers(reader)) { response in
                let html = String(buffer: response.body)
                XCTAssertFalse(html.contains("<script>alert(1)"), "the note's script must be escaped")
                XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            }
            // Without a token a browser gets the sign-in page, not the data.
            try await client.execute(uri: "/", method: .get) { response in
                XCTAssertEqual(response.status, .unauthorized)
                XCTAssertFalse(String(buffer: response.body).contains("run@v1"))
            }
        }
        XCTAssertEqual(try dump(), before, "a refused request changed the store")
    }

    /// /api/v1/openapi.json (no token needed) names every route the server has under
    /// /api/v1 and /health, and no other.
    func testTheOpenAPIDocumentNamesEveryRouteAndNoOther() async throws {
        let served = Set(
            Server.router(store: store).routes.map { route in
                "\(route.method.rawValue.lowercased()) /"
                    + "\(route.path)".split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(
                        separator: "/")
            }.filter { $0.contains(" /api/v1/") || $0.hasSuffix(" /health") })
        XCTAssertGreaterThan(served.count, 15)
        try await withApp { client in
            try await client.execute(uri: "/api/v1/openapi.json", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                XCTAssertEqual(document["openapi"] as? String, "3.1.0")
                let paths = try XCTUnwrap(document["paths"] as? [String: [String: Any]])
                let described = Set(paths.flatMap { path, methods in methods.keys.map { "\($0) \(path)" } })
                XCTAssertEqual(described, served)
            }
        }
    }

    /// The leaderboard over 1,000 sets: every row there; the server-side time printed
    /// (BENCHMARKS.md records it).
    func testLeaderboardOverAThousandSets() async throws {
        let dataset = try store.dataset(file: root.appendingPathComponent("test.csv").path)
        let none = [Double?](repeating: nil, count: PredictionRow.maxChoices)
        for index in 0..<998 {
            let table = PredictionTable(
                choiceValues: nil,
                rows: [
                    PredictionRow(id: "q1", answer: 1 + index % 4, values: none),
                    PredictionRow(id: "q2", answer: 1 + index % 5, values: none),
                    PredictionRow(id: "q3", answer: 1 + index / 4 % 4, values: none)
                ])
            let set = try store.addPredictionSet(
                name: "bulk-\(index)", dataset: dataset, table: table, origin: .imported,
                lineage: Lineage(commandLine: "bulk", toolVersion: suneungVersion)
            ).set
            if index % 3 == 0 { try store.addScores(to: set, [(.public, Double(index % 100) / 100, nil)]) }
        }
        let reader = reader
        try await withApp { client in
            var times: [Double] = []
            for _ in 0..<5 {
                let start = Date()
                try await client.execute(uri: "/?sort=public", method: .get, headers: self.headers(reader)) { response in
                    times.append(Date().timeIntervalSince(start))
                    XCTAssertEqual(String(buffer: response.body).matches(of: /data-set="/).count, 1000)
                }
            }
            print(String(format: "leaderboard: 1,000 sets rendered server-side in %.0f ms (median of 5)", times.sorted()[2] * 1000))
        }
    }
}

extension JSONDecoder {
    static let iso: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
