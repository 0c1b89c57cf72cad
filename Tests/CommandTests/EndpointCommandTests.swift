import Exam
import Foundation
import GGUF
import GRDB
import TestSupport
import Tokenizer
import XCTest

/// A server started by a test on a free loopback port, stopped with it.
final class TestServer {
    let process = Process()
    let port: Int
    private let input = Pipe()

    /// The stand-in for vLLM (Tests/ServingFixtures/stub_server.py): it prints its port.
    init(stub arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestServer.fixtures.appendingPathComponent("stub_server.py").path, "--port", "0"] + arguments
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw TestServerError(description: "the stub server stopped before it listened") }
            line += chunk
        }
        port = Int(String(decoding: line, as: UTF8.self).split(separator: " ")[1].prefix { $0.isNumber })!
    }

    /// llama.cpp's own server on the model, started by the test; it answers once loaded.
    /// One slot of 4,096 tokens: a prompt batched with another gets other numbers.
    init(llamaServer binary: String, model: String, alias: String, threads: Int) throws {
        port = try TestServer.freePort()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "-m", model, "--host", "127.0.0.1", "--port", "\(port)", "--alias", alias, "-c", "4096", "-t", "\(threads)", "-np", "1",
            "--no-webui"
        ]
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = ["-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/health"]
            try curl.run()
            curl.waitUntilExit()
            if curl.terminationStatus == 0 { return }
            Thread.sleep(forTimeInterval: 0.3)
        }
        process.terminate()
        throw TestServerError(description: "llama-server did not load \(model) within 60 s")
    }

    var url: String { "http://127.0.0.1:\(port)/v1" }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ServingFixtures")

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(descriptor, $0, length) == 0, getsockname(descriptor, $0, &length) == 0 else {
                    throw TestServerError(description: "no free port")
                }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct TestServerError: Error, CustomStringConvertible { var description: String }

/// `predict --endpoint` against the stand-in for vLLM: the fallback for a choice
/// outside the top 20, faults, several servers, a kill and a resume.
final class EndpointCommandTests: WorkspaceTestCase {
    let model = "Qwen/Qwen2.5-32B-Instruct"

    /// The first N real training items (the stub's numbers do not depend on them, its
    /// shapes and faults do not either; real items keep the prompts real).
    func train() throws -> String {
        let path = RealData.folder.appendingPathComponent("train.csv").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("\(path) is absent: the real items are not beside this checkout")
        }
        return path
    }

    func predict(_ server: TestServer..., name: String, limit: Int = 40, extra: [String] = [], status: Int32? = 0) throws -> Result {
        try run(
            ["predict", "--dataset", try train(), "--limit", "\(limit)", "--name", name, "--served-model", model]
                + server.flatMap { ["--endpoint", $0.url] } + extra, status: status)
    }

    func csv(_ ref: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent("predictions/\(ref).csv"), encoding: .utf8)
    }

    func lineage(_ name: String) throws -> [String: Any] {
        let show = try JSONSerialization.jsonObject(with: Data(try run("show", name, "--format", "json").output.utf8)) as! [String: Any]
        return (show["lineage"] as! [String: Any])["endpoint"] as! [String: Any]
    }

    func runRows() throws -> Int {
        try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path).read {
            try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM predictionRunRow")!
        }
    }

    /// vLLM's cap of 20: choices outside them are scored by echo, and give the numbers
    /// that a server without the cap gives from its top 1,000.
    func testChoicesOutsideTheTop20AreScoredByEchoAsTheWideTopKScoresThem() throws {
        let capped = try TestServer(stub: ["--model", model])
        let wide = try TestServer(stub: ["--model", model, "--max-logprobs", "1000"])
        let output = try predict(capped, name: "capped").output
        XCTAssertTrue(
            output.contains(
                "top 20 log-probabilities of the next token; a choice outside them from the prompt with the choice appended (echo)"), output
        )
        try predict(wide, name: "wide")
        let (cappedLineage, wideLineage) = (try lineage("capped"), try lineage("wide"))
        XCTAssertGreaterThan(cappedLineage["fallbacks"] as! Int, 0)
        XCTAssertEqual(wideLineage["fallbacks"] as! Int, 0)
        XCTAssertTrue((wideLineage["method"] as! String).contains("top 1000"))
        XCTAssertEqual(cappedLineage["ownedBy"] as? String, "vllm")
        XCTAssertEqual(try csv("capped@v1"), try csv("wide@v1"))
        // The same command again finds the finished set.
        XCTAssertTrue(try predict(capped, name: "capped").output.contains("Already scored: capped@v1"))
    }

    /// 500s, 429 with Retry-After, a hang past the timeout, a connection dropped
    /// mid-reply and truncated JSON are tried again: the set equals a clean run's.
    func testFaultsAreTriedAgainAndChangeNothing() throws {
        let clean = try TestServer(stub: ["--model", model])
        let faulty = try TestServer(stub: [
            "--model", model, "--fault", "500:5", "--fault", "429:7", "--fault", "hang:11", "--fault", "drop:13", "--fault", "truncate:17",
            "--hang-seconds", "3"
        ])
        try predict(clean, name: "clean")
        try predict(faulty, name: "faulty", extra: ["--request-timeout", "1"])
        XCTAssertEqual(try csv("clean@v1"), try csv("faulty@v1"))
    }

    /// Two servers share the items; a server that dies midway is dropped and its items
    /// go to the other; the results equal one server's.
    func testSeveralServersShareTheItemsAndADeadOneIsDropped() throws {
        let one = try TestServer(stub: ["--model", model, "--delay", "0.05"])
        let two = try TestServer(stub: ["--model", model, "--delay", "0.05"])
        let dying = try TestServer(stub: ["--model", model, "--die-after", "8"])
        try predict(one, name: "single")
        try predict(one, two, name: "shared")
        let shared = try lineage("shared")["itemsByHost"] as! [String: Int]
        XCTAssertEqual(shared.count, 2)
        XCTAssertEqual(shared.values.reduce(0, +), 40)
        XCTAssertTrue(shared.values.allSatisfy { $0 > 0 }, "\(shared)")
        let output = try predict(dying, two, name: "survivor").output
        XCTAssertTrue(output.contains("Dropped 127.0.0.1:\(dying.port)"), output)
        XCTAssertEqual(try csv("single@v1"), try csv("shared@v1"))
        XCTAssertEqual(try csv("single@v1"), try csv("survivor@v1"))
    }

    /// The pipeline's endpoint keys: its zero-shot set scored on the server, ensembled
    /// with the imports; again, nothing is redone; bad keys are named before any work.
    func testThePipelineScoresItsZeroShotSetOnTheServers() throws {
        let server = try TestServer(stub: ["--model", model])
        let sample = PipelineCommandTests.sample
        func config(_ endpointKeys: String, train: Bool = false) -> String {
            """
            name: served
            \(endpointKeys)
            test: \(sample)/test.csv
            gold: \(sample)/test_gold.csv
            imports: \(sample)/predictions
            top: 3
            methods: [vote]
            \(train ? "train:\n  train: \(sample)/train.csv\n" : "")
            """
        }
        try write("served.yaml", config("endpoint: [\(server.url)]\nserved_model: \(model)\nconcurrency: 2\nrequest_timeout: 30"))
        let first = try run("pipeline", "--config", "served.yaml").output
        for expected in [
            "1. zero-shot predictions of \(model) on the servers", "Stored served-zero-shot@v1",
            "Submission: submissions/served-top3-vote.csv"
        ] {
            XCTAssertTrue(first.contains(expected), "'\(expected)' missing from:\n\(first)")
        }
        let lineage = try lineage("served-zero-shot")
        XCTAssertEqual(lineage["hosts"] as? [String], ["127.0.0.1:\(server.port)"])
        XCTAssertEqual(lineage["concurrency"] as? Int, 2)
        let again = try run("pipeline", "--config", "served.yaml").output
        XCTAssertTrue(again.contains("Already scored: served-zero-shot@v1"), again)

        for (keys, says) in [
            ("endpoint: \(server.url)", "'endpoint' and 'served_model' go together"),
            ("served_model: \(model)", "'endpoint' and 'served_model' go together"),
            ("endpoint: \(server.url)\nserved_model: \(model)\nconcurrency: 0", "'concurrency' must be 1 to 64"),
            ("endpoint: [\(server.url), \(server.url)]\nserved_model: \(model)", "an 'endpoint' is given twice"),
            ("endpoint: {a: 1}\nserved_model: \(model)", "'endpoint' must be a server's address or a list of them"),
            ("endpoint: http://user:secret@127.0.0.1:1/v1\nserved_model: \(model)", "(not repeated: it holds a user or password)"),
            ("concurrency: 2", "'concurrency' goes with 'endpoint'"),
            ("", "'model' (a GGUF file) or 'endpoint' with 'served_model'")
        ] {
            try write("bad.yaml", config(keys))
            try assertRefused("pipeline", "--config", "bad.yaml", says: says)
        }
        try write("bad.yaml", config("endpoint: \(server.url)\nserved_model: \(model)", train: true))
        try assertRefused("pipeline", "--config", "bad.yaml", says: "'train' needs 'model'")
    }

    /// kill -9 midway, then the same command: no item scored twice, none lost, the set
    /// equal to an uninterrupted run's.
    func testAKilledRunResumesToTheUninterruptedSet() throws {
        let server = try TestServer(stub: ["--model", model, "--delay", "0.05"])
        try predict(server, name: "whole", limit: 60)
        let process = SuneungBinary.process(
            [
                "predict", "--dataset", try train(), "--limit", "60", "--name", "killed", "--served-model", model, "--endpoint", server.url,
                "--concurrency", "2"
            ], in: root)
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while try runRows() < 15, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let kept = try runRows()
        XCTAssertGreaterThanOrEqual(kept, 15)
        XCTAssertLessThan(kept, 60, "the run finished before the kill")
        let output = try predict(server, name: "killed", limit: 60).output
        XCTAssertTrue(output.contains("Resuming killed: \(kept) of 60 items were scored before."), output)
        XCTAssertEqual(try csv("whole@v1"), try csv("killed@v1"))
        XCTAssertEqual(try runRows(), 0)
    }

    /// A refused key, an unknown model, an unreachable server, a prompt past the
    /// context: each said clearly, nothing stored, and the key never said.
    func testRefusalsAreSaidAndStoreNothing() throws {
        let locked = try TestServer(stub: ["--model", model, "--key", "sk-right-key"])
        let before = try storeDump()
        var result = try run(
            ["predict", "--dataset", try train(), "--limit", "5", "--name", "x", "--served-model", model, "--endpoint", locked.url],
            status: 1)
        XCTAssertTrue(result.output.contains("refused the request (401)"), result.output)
        let wrong = try SuneungBinary.run(
            [
                "predict", "--dataset", try train(), "--limit", "5", "--name", "x", "--served-model", model, "--endpoint", locked.url,
                "--api-key-env", "STUB_KEY"
            ], in: root, environment: ["STUB_KEY": "sk-wrong-key"], expect: 1)
        XCTAssertTrue(wrong.output.contains("--api-key-env"), wrong.output)
        XCTAssertFalse(wrong.output.contains("sk-wrong-key"), wrong.output)
        let unknown = try SuneungBinary.run(
            [
                "predict", "--dataset", try train(), "--limit", "5", "--name", "x", "--served-model", "Qwen/Qwen3-8B", "--endpoint",
                locked.url,
                "--api-key-env", "STUB_KEY"
            ], in: root, environment: ["STUB_KEY": "sk-right-key"], expect: 1)
        XCTAssertTrue(unknown.output.contains("does not serve 'Qwen/Qwen3-8B'; it serves: \(model)"), unknown.output)
        let unreachable = try run(
            [
                "predict", "--dataset", try train(), "--limit", "5", "--name", "x", "--served-model", model, "--endpoint",
                "http://127.0.0.1:\(try TestServer.freePort())/v1"
            ], status: 1)
        XCTAssertTrue(unreachable.output.contains("cannot reach 127.0.0.1:"), unreachable.output)
        let silent = try TestServer(stub: ["--model", model, "--no-logprobs"])
        let none = try predict(silent, name: "x", limit: 5, status: 1).output
        XCTAssertTrue(none.contains("returned no log-probabilities (\"logprobs\": null)"), none)
        XCTAssertEqual(try storeDump(), before)

        let right = try SuneungBinary.run(
            [
                "predict", "--dataset", try train(), "--limit", "5", "--name", "keyed", "--served-model", model, "--endpoint", locked.url,
                "--api-key-env", "STUB_KEY"
            ], in: root, environment: ["STUB_KEY": "sk-right-key"])
        XCTAssertFalse(right.output.contains("sk-right-key"))
        XCTAssertFalse(try storeDump().contains("sk-right-key"))
        XCTAssertFalse(try run("show", "keyed").output.contains("sk-right-key"))

        // An item past the server's context: its id and the server's words; the items
        // scored before it stay as the run's rows.
        var text = "id,paragraph,problems\n"
        for index in 0..<5 {
            let paragraph = index == 3 ? "CONTEXT-OVERFLOW 지문" : "지문 \(index)"
            text += "c\(index),\"\(paragraph)\",\"{'question': '옳은 것은?', 'choices': ['가', '나', '다', '라'], 'answer': 1}\"\n"
        }
        try write("long.csv", text)
        let open = try TestServer(stub: ["--model", model])
        result = try run(
            ["predict", "--dataset", "long.csv", "--name", "long", "--served-model", model, "--endpoint", open.url, "--concurrency", "1"],
            status: 1)
        XCTAssertTrue(result.output.contains("item c3:"), result.output)
        XCTAssertTrue(result.output.contains("maximum context length"), result.output)
        XCTAssertEqual(try runRows(), 3)
        XCTAssertFalse(try run("list").output.contains("long"))
    }

    func testOptionsThatDoNotGoTogetherAreUsageErrors() throws {
        let dataset = try train()
        for (extra, message) in [
            (["--endpoint", "http://127.0.0.1:1/v1"], "--served-model NAME go together"),
            (["--endpoint", "http://127.0.0.1:1/v1", "--served-model", "m", "--model", "x.gguf"], "--model is for the embedded engine"),
            (["--endpoint", "http://127.0.0.1:1/v1", "--served-model", "m", "--api-key-env", "sk-abc=1"], "not the key itself"),
            (["--endpoint", "http://127.0.0.1:1/v1", "--endpoint", "http://127.0.0.1:1/", "--served-model", "m"], "given twice")
        ] {
            let result = try run(["predict", "--dataset", dataset, "--name", "x"] + extra, status: 64)
            XCTAssertTrue(result.output.contains(message), result.output)
        }
        let result = try run(
            ["predict", "--dataset", dataset, "--name", "x", "--served-model", model, "--endpoint", "http://user:pw@127.0.0.1:1/v1"],
            status: 64)
        XCTAssertTrue(result.output.contains("no user, key or query"), result.output)
        XCTAssertFalse(result.output.contains("pw@"), result.output)
    }
}

/// `predict --endpoint` against llama.cpp's own server (scripts/llama-server.sh builds it
/// from the llama.cpp that llama-cpp-python 0.3.36 vendors; `make test` passes its path
/// in SUNEUNG_LLAMA_SERVER), on the default Gemma and 100 real training items, against
/// the embedded engine in f32. llama.cpp quantises activations to 8 bits in its products
/// (EnginePeerTests: its answer logits move by up to 0.69 on Gemma, a shift common to
/// the five that the differences between choices cancel).
final class LlamaServerEndpointTests: WorkspaceTestCase {
    func llamaServer() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["SUNEUNG_LLAMA_SERVER"], FileManager.default.isExecutableFile(atPath: path)
        else {
            let why = "SUNEUNG_LLAMA_SERVER does not name llama-server (scripts/llama-server.sh builds it; make test sets it)"
            if ProcessInfo.processInfo.environment["SUNEUNG_REQUIRE_MODELS"] == "1" { throw TestServerError(description: why) }
            throw XCTSkip(why)
        }
        return path
    }

    /// Per item: the answer and each choice's value minus the first's.
    func differences(_ ref: String) throws -> [String: (answer: Int, differences: [Double])] {
        let csv = try String(contentsOf: root.appendingPathComponent("predictions/\(ref).csv"), encoding: .utf8)
        var result: [String: (Int, [Double])] = [:]
        for line in csv.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let values = fields[2...].compactMap { Double($0) }
            result[fields[0]] = (Int(fields[1])!, values.map { $0 - values[0] })
        }
        return result
    }

    /// The prompt sent as text (rendered here, without the leading `<bos>`) becomes on
    /// the server the very tokens the engine scores: llama-server's /tokenize, with the
    /// special tokens added and parsed as its completions endpoint does, on 100 real items.
    func assertTheServerTokenizesAsTheEngine(_ server: TestServer, model: String, items file: String) throws {
        let tokenizer = try Tokenizer(gguf: try GGUFFile(path: model))
        let items = try ExamSet.load(path: file).items.prefix(100)
        var lengths: [Int] = []
        for item in items {
            let prompt = Prompt.baseline(item)
            let engine = tokenizer.encode(ChatTemplate.gemma.render(system: prompt.system, user: prompt.user))
            let body = try JSONSerialization.data(withJSONObject: [
                "content": ChatTemplate.gemma.renderForServer(system: prompt.system, user: prompt.user), "add_special": true,
                "parse_special": true
            ])
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = [
                "-sf", "-H", "Content-Type: application/json", "--data-binary", "@-", "http://127.0.0.1:\(server.port)/tokenize"
            ]
            let (input, output) = (Pipe(), Pipe())
            curl.standardInput = input
            curl.standardOutput = output
            try curl.run()
            input.fileHandleForWriting.write(body)
            try input.fileHandleForWriting.close()
            let reply = output.fileHandleForReading.readDataToEndOfFile()
            curl.waitUntilExit()
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: reply) as? [String: Any], item.id)
            let served = try XCTUnwrap(object["tokens"] as? [Int], item.id).map(Int32.init)
            XCTAssertEqual(served, engine, "\(item.id): the server's tokens differ from the engine's")
            lengths.append(engine.count)
        }
        print("llama-server's /tokenize gives the engine's tokens on \(items.count) items (\(lengths.min()!)-\(lengths.max()!) tokens)")
    }

    func testLlamaServerScoresAsTheEmbeddedEngineAndTwoServersAsOne() throws {
        let binary = try llamaServer()
        let gemma = try DefaultModels.path(DefaultModels.gemma)
        let train = RealData.folder.appendingPathComponent("train.csv").path
        guard FileManager.default.fileExists(atPath: train) else {
            throw XCTSkip("\(train) is absent: the real items are not beside this checkout")
        }
        let common = ["predict", "--dataset", train, "--limit", "100"]

        let server = try TestServer(llamaServer: binary, model: gemma, alias: "gemma-3-270m", threads: 2)
        try assertTheServerTokenizesAsTheEngine(server, model: gemma, items: train)
        let served = try run(common + ["--name", "served", "--endpoint", server.url, "--served-model", "gemma-3-270m"], status: 0).output
        XCTAssertTrue(served.contains("top 1000 log-probabilities"), served)
        server.stop()
        try run(common + ["--name", "embedded", "--model", gemma, "--precision", "f32"], status: 0)

        let (endpoint, embedded) = (try differences("served@v1"), try differences("embedded@v1"))
        XCTAssertEqual(endpoint.count, 100)
        var same = 0, gaps: [Double] = []
        for (id, row) in endpoint {
            let other = try XCTUnwrap(embedded[id])
            if row.answer == other.answer { same += 1 }
            gaps += zip(row.differences, other.differences).map { abs($0 - $1) }
        }
        gaps.sort()
        print(
            "llama-server against the engine in f32, 100 items: same answer on \(same); choice-minus-first differences apart by median \(gaps[gaps.count / 2]), largest \(gaps.last!)"
        )
        XCTAssertGreaterThanOrEqual(same, 98)
        XCTAssertLessThan(gaps.last!, 1.0)

        // Two servers at once, one thread each, on the first 30: the items split, the
        // same numbers.
        let first = try TestServer(llamaServer: binary, model: gemma, alias: "gemma-3-270m", threads: 1)
        let second = try TestServer(llamaServer: binary, model: gemma, alias: "gemma-3-270m", threads: 1)
        try run(
            [
                "predict", "--dataset", train, "--limit", "30", "--name", "two", "--endpoint", first.url, "--endpoint", second.url,
                "--served-model", "gemma-3-270m"
            ], status: 0)
        let show = try JSONSerialization.jsonObject(with: Data(try run("show", "two", "--format", "json").output.utf8)) as! [String: Any]
        let byHost = ((show["lineage"] as! [String: Any])["endpoint"] as! [String: Any])["itemsByHost"] as! [String: Int]
        XCTAssertEqual(byHost.count, 2, "\(byHost)")
        let two = try differences("two@v1")
        XCTAssertEqual(two.count, 30)
        for (id, row) in two {
            let one = try XCTUnwrap(endpoint[id])
            XCTAssertEqual(row.answer, one.answer, id)
            for (a, b) in zip(row.differences, one.differences) { XCTAssertEqual(a, b, accuracy: 1e-4, id) }
        }
    }
}
