import Exam
import Foundation
import Store
import Synchronization
import TeamClient
import TestSupport
import Workflow
import XCTest

/// The server under the team's load, on loopback and bounded: six members pushing and
/// scoring at once, and a server killed -9 in the middle of pushes.
final class LoadTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-load-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    /// A member's workspace with `count` sets over the real test items, each with random
    /// logits (869 rows: the size of a real upload).
    func memberStore(_ name: String, sets count: Int, test: String) throws -> (Store, [PredictionSetRecord]) {
        let store = try Store(workspace: Workspace(root: root.appendingPathComponent(name)), create: true)
        let items = try ExamSet.load(path: test).items
        let dataset = try store.dataset(file: test)
        var generator = SystemRandomNumberGenerator()
        let sets = try (0..<count).map { index in
            let table = PredictionTable(
                choiceValues: .logits,
                rows: items.map { item in
                    let values = item.choices.indices.map { _ in Double.random(in: -4...4, using: &generator) }
                    return PredictionRow(
                        id: item.id, answer: values.indices.max { values[$0] < values[$1] }! + 1,
                        values: (0..<5).map { $0 < values.count ? values[$0] : nil })
                })
            return try store.addPredictionSet(
                name: "\(name)-run-\(index)", dataset: dataset, table: table, origin: .imported,
                lineage: Lineage(commandLine: "load test", toolVersion: suneungVersion)
            ).set
        }
        return (store, sets)
    }

    func serverWithTokens(_ names: [String]) throws -> (ServerProcess, [String]) {
        let workspace = root.appendingPathComponent("server")
        try SuneungBinary.run(["init", "--workspace", workspace.path])
        let tokens = try names.map { name in
            try SuneungBinary.run(["token", "add", name, "--role", "write", "--workspace", workspace.path]).output.split(separator: "\n")
                .first {
                    $0.hasPrefix("snt_")
                }.map(String.init)!
        }
        let server = ServerProcess(workspace: workspace)
        try server.start()
        return (server, tokens)
    }

    /// After the load: SQLite's integrity check and every set's rows and file are ok.
    func assertServerStoreSound(_ server: ServerProcess, sets expected: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let store = try Store(workspace: Workspace(root: server.workspace))
        let report = try store.fsck(repair: false)
        XCTAssertTrue(report.clean, "fsck: \(report)", file: file, line: line)
        XCTAssertEqual(try store.summaries().count, expected, file: file, line: line)
    }

    func testSixMembersPushAndScoreAtOnce() throws {
        let test = try RealData.path("test.csv", sha256: "a53b58706953dea269f1af7cad71111b6794983de1fd16b665632954058a18f6")
        let members = ["kim", "lee", "park", "choi", "jung", "kang"]
        let (server, tokens) = try serverWithTokens(members)
        let workspaces = try members.map { try memberStore($0, sets: 50, test: test) }
        let latencies = Mutex<[Double]>([])
        let failures = Mutex<[String]>([])
        let start = Date()
        DispatchQueue.concurrentPerform(iterations: members.count) { index in
            let client = RemoteClient(url: server.url, token: tokens[index])
            let (store, sets) = workspaces[index]
            for set in sets {
                do {
                    let pushStart = Date()
                    _ = try client.push([set], from: store)
                    let scoreStart = Date()
                    _ = try client.score(
                        set.ref.description, public: Double.random(in: 0.5...0.9), private: nil, note: "load", simulated: false)
                    let end = Date()
                    latencies.withLock { $0 += [scoreStart.timeIntervalSince(pushStart), end.timeIntervalSince(scoreStart)] }
                } catch {
                    failures.withLock { $0.append("\(set.ref): \(error)") }
                }
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(failures.withLock { $0 }, [], "no request failed (no 5xx, nothing lost)")
        try assertServerStoreSound(server, sets: 300)
        let uploads = try RemoteClient(url: server.url, token: tokens[0]).uploads().uploads.count
        XCTAssertEqual(uploads, 300, "every score recorded once")
        let sorted = latencies.withLock { $0 }.sorted()
        let p50 = sorted[sorted.count / 2], p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
        print(
            String(
                format:
                    "load: 6 clients x (50 pushes of 869 rows with logits + 50 scores) in %.1f s; %d requests' latency p50 %.0f ms, p99 %.0f ms, max %.0f ms",
                elapsed, sorted.count, p50 * 1000, p99 * 1000, sorted.last! * 1000))

        // One push of one 869-row set with logits, and the leaderboard over the sets, timed.
        let (single, singleSets) = try memberStore("solo", sets: 1, test: test)
        let pushStart = Date()
        _ = try RemoteClient(url: server.url, token: tokens[0]).push(singleSets, from: single)
        print(String(format: "load: one push of an 869-row set with logits: %.0f ms", Date().timeIntervalSince(pushStart) * 1000))
        XCTAssertEqual(server.stop(), 0)
    }

    func testKilledServerLosesNothing() throws {
        let test = try RealData.path("test.csv", sha256: "a53b58706953dea269f1af7cad71111b6794983de1fd16b665632954058a18f6")
        let members = ["kim", "lee", "park"]
        let (server, tokens) = try serverWithTokens(members)
        let workspaces = try members.map { try memberStore($0, sets: 20, test: test) }
        let failures = Mutex<[String]>([])
        let finished = Mutex(0)
        let clients = DispatchGroup()
        for index in members.indices {
            DispatchQueue.global().async(group: clients) {
                let client = RemoteClient(url: server.url, token: tokens[index])
                let (store, sets) = workspaces[index]
                for set in sets {
                    // The client's retry: a push cut by the kill is sent again.
                    var attempts = 0
                    while true {
                        do {
                            _ = try client.push([set], from: store)
                            break
                        } catch {
                            attempts += 1
                            if attempts == 5 {
                                failures.withLock { $0.append("\(set.ref): \(error)") }
                                break
                            }
                        }
                    }
                }
                finished.withLock { $0 += 1 }
            }
        }
        // Ten kills -9 while the pushes run, each followed by a restart on the same port.
        var kills = 0
        while kills < 10 && finished.withLock({ $0 }) < members.count {
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.4))
            server.kill()
            kills += 1
            try server.start()
        }
        clients.wait()
        XCTAssertGreaterThanOrEqual(kills, 5, "the pushes ended before the server was killed often enough")
        print("kill -9: \(kills) kills during pushes of 3 x 20 sets")
        XCTAssertEqual(failures.withLock { $0 }, [])
        XCTAssertEqual(server.stop(), 0)
        // No half-stored set: every set is whole, with its file; the journals are settled.
        try assertServerStoreSound(server, sets: 60)
        let store = try Store(workspace: Workspace(root: server.workspace))
        for (memberStore, sets) in workspaces {
            for set in sets {
                let copy = try XCTUnwrap(
                    try store.set(
                        named: set.name, csvSha256: set.csvSha256,
                        datasetContentSha256: try memberStore.dataset(id: set.datasetId).contentSha256!), "\(set.ref) arrived")
                XCTAssertEqual(try store.canonicalCSV(of: copy), try memberStore.canonicalCSV(of: set))
            }
        }
    }
}
