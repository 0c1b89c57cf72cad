import Exam
import Foundation
import GRDB
import Store
import TestSupport
import XCTest

/// The team's workflow through real processes: one member serves, two push from their
/// own workspaces, a third pulls; everything arrives byte for byte with its authors.
final class TeamTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-team-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    /// `suneung ARGS --workspace MEMBER`, with the member's own config folder (tokens).
    @discardableResult
    func member(_ name: String, _ arguments: String..., expect: Int32? = 0, file: StaticString = #filePath, line: UInt = #line) throws
        -> String
    {
        try SuneungBinary.run(
            arguments + ["--workspace", root.appendingPathComponent(name).path],
            environment: ["XDG_CONFIG_HOME": root.appendingPathComponent("config-\(name)").path],
            expect: expect, file: file, line: line
        ).output
    }

    func listed(_ name: String) throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: Data(try member(name, "list", "--all", "--format", "json").utf8)) as! [[String: Any]]
    }

    func testTwoMembersPushAThirdPulls() throws {
        let test = try RealData.path("test.csv", sha256: "a53b58706953dea269f1af7cad71111b6794983de1fd16b665632954058a18f6")
        let peers = RealData.folder.appendingPathComponent("peer-predictions/test-systems")
        for name in ["server", "kim", "lee", "park"] { try member(name, "init") }
        let kimToken = try member("server", "token", "add", "kim", "--role", "write").split(separator: "\n").first { $0.hasPrefix("snt_") }
            .map(String.init)!
        let leeToken = try member("server", "token", "add", "lee", "--role", "write").split(separator: "\n").first { $0.hasPrefix("snt_") }
            .map(String.init)!
        let parkToken = try member("server", "token", "add", "park", "--role", "read").split(separator: "\n").first { $0.hasPrefix("snt_") }
            .map(String.init)!
        let server = ServerProcess(workspace: root.appendingPathComponent("server"))
        try server.start()

        // kim: two imports (one with invalid answers kept), scores, an ensemble, a tag.
        try member("kim", "import", peers.appendingPathComponent("gemma_ckpt2944.csv").path, "--name", "gemma", "--dataset", test)
        try member(
            "kim", "import", peers.appendingPathComponent("zeroshot_NCSOFT_output_logical.csv").path, "--name", "ncsoft", "--dataset", test,
            "--invalid", "as-wrong")
        try member("kim", "score", "gemma", "--public", "0.8111")
        try member("kim", "score", "ncsoft", "--public", "0.62", "--private", "0.6")
        try member("kim", "ensemble", "--members", "gemma,ncsoft", "--name", "pair")
        try member("kim", "tag", "gemma", "best")
        try member("kim", "remote", "add", "team", server.url, "--token", kimToken)
        // The token is the member's alone: the file 600 in a folder 700.
        let credentials = root.appendingPathComponent("config-kim/suneung/credentials")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: credentials.path)[.posixPermissions] as? Int, 0o600)
        XCTAssertEqual(
            try FileManager.default.attributesOfItem(atPath: credentials.deletingLastPathComponent().path)[.posixPermissions] as? Int, 0o700
        )
        let pushed = try member("kim", "push", "pair")
        XCTAssertTrue(pushed.contains("Pushed 3 sets (3 new"), "the ensemble's members go first:\n\(pushed)")

        // lee: logits, the same gemma content (not sent twice), then other gemma content.
        let items = try ExamSet.load(path: test).items
        var generator = SystemRandomNumberGenerator()
        let logits =
            "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\n"
            + items.map { item in
                let values = item.choices.indices.map { _ in Double.random(in: -4...4, using: &generator) }
                let fields = values.map { "\($0)" } + Array(repeating: "", count: 5 - values.count)
                return "\(item.id),\(values.indices.max { values[$0] < values[$1] }! + 1)," + fields.joined(separator: ",")
            }.joined(separator: "\n") + "\n"
        try logits.write(to: root.appendingPathComponent("logits.csv"), atomically: true, encoding: .utf8)
        try member("lee", "import", root.appendingPathComponent("logits.csv").path, "--name", "qwen-logits", "--dataset", test)
        try member("lee", "import", peers.appendingPathComponent("gemma_ckpt2944.csv").path, "--name", "gemma", "--dataset", test)
        try member("lee", "score", "qwen-logits", "--public", "0.55")
        try member("lee", "remote", "add", "team", server.url, "--token", leeToken)
        let second = try member("lee", "push", "--all")
        XCTAssertTrue(second.contains("1 already there"), "gemma's content was on the server:\n\(second)")
        try member("lee", "import", peers.appendingPathComponent("gemma_ckpt2944_2nd.csv").path, "--name", "gemma", "--dataset", test)
        try member("lee", "push", "gemma@v2")

        // park (a read token) pulls everything, twice: the second adds nothing.
        try member("park", "remote", "add", "team", server.url, "--token", parkToken)
        XCTAssertTrue(try member("park", "pull").contains("Pulled 5 sets (5 new"))
        XCTAssertTrue(try member("park", "pull").contains("(0 new, 5 already there), 0 new scores"))

        // Byte for byte, with authors and scores: the server's sets are park's.
        func key(_ set: [String: Any]) -> String {
            ["ref", "csvSha256", "author", "public", "private", "origin", "tags"].map { "\(set[$0] ?? "nil")" }.joined(separator: " ")
        }
        let onServer = try listed("server").map(key).sorted()
        XCTAssertEqual(try listed("park").map(key).sorted(), onServer)
        XCTAssertEqual(onServer.count, 5)
        let serverSets = try listed("server")
        XCTAssertEqual(
            Set(
                serverSets.filter { ($0["name"] as! String) != "qwen-logits" && ($0["ref"] as! String) != "gemma@v2" }.map {
                    $0["author"] as! String
                }), ["kim"])
        XCTAssertEqual(serverSets.first { ($0["ref"] as! String) == "gemma@v2" }?["author"] as? String, "lee")
        for set in try listed("kim") {
            XCTAssertTrue(
                serverSets.contains {
                    $0["name"] as! String == set["name"] as! String && $0["csvSha256"] as! String == set["csvSha256"] as! String
                }, "\(set["ref"]!) arrived")
        }
        let parkFsck = try member("park", "fsck", "--check")
        XCTAssertTrue(parkFsck.contains("ok"), parkFsck)
        XCTAssertTrue(try member("park", "show", "pair").contains("Submission  vote"), "the ensemble arrived with its members")

        // --remote: list, show, score, ensemble, uploads run on the server.
        XCTAssertTrue(try member("kim", "list", "--remote", "team").contains("qwen-logits@v1"))
        XCTAssertTrue(try member("kim", "show", "qwen-logits", "--remote", "team").contains("by lee"))
        try member("kim", "score", "qwen-logits", "--public", "0.56", "--remote", "team")
        XCTAssertTrue(
            try member(
                "kim", "ensemble", "--members", "gemma@v1,qwen-logits", "--method", "average", "--weights", "uniform", "--name", "team-avg",
                "--remote", "team"
            ).contains("recorded team-avg@v1"))
        let uploads = try member("kim", "uploads", "--remote", "team")
        XCTAssertTrue(uploads.contains("qwen-logits@v1") && uploads.contains("uploads used"), uploads)
        // A read token cannot write; the store says why.
        XCTAssertTrue(try member("park", "score", "gemma", "--public", "0.9", "--remote", "team", expect: 1).contains("read-only"))
        // A local name of another kind stops a pull before anything arrives.
        try member("choi", "init")
        try member("choi", "import", peers.appendingPathComponent("gemma_ckpt2944.csv").path, "--name", "pair", "--dataset", test)
        try member("choi", "remote", "add", "team", server.url, "--token", parkToken)
        XCTAssertTrue(try member("choi", "pull", expect: 1).contains("nothing was pulled: pair@v1 on"))
        XCTAssertEqual(try listed("choi").count, 1)
        // A token the server refuses is not kept.
        XCTAssertTrue(
            try member("choi", "remote", "add", "other", server.url, "--token", "snt_nope", expect: 1).contains("refuses this token"))
        XCTAssertEqual(server.stop(), 0, "SIGTERM stops the server gracefully")
    }

    /// A set the other side refuses (a note longer than any side keeps, as an older
    /// suneung let in) stops neither a push nor a pull: the rest goes, the refusal is
    /// said, and the exit status is 1.
    func testPushAndPullGoOnPastARefusedSet() throws {
        for name in ["server", "kim", "park"] { try member(name, "init") }
        let token = try member("server", "token", "add", "kim", "--role", "write").split(separator: "\n").first { $0.hasPrefix("snt_") }
            .map(String.init)!
        let server = ServerProcess(workspace: root.appendingPathComponent("server"))
        try server.start()
        defer { _ = server.stop() }
        try SampleFiles.exam.write(to: root.appendingPathComponent("test.csv"), atomically: true, encoding: .utf8)
        try SampleFiles.run.write(to: root.appendingPathComponent("run.csv"), atomically: true, encoding: .utf8)
        try SampleFiles.other.write(to: root.appendingPathComponent("other.csv"), atomically: true, encoding: .utf8)
        for (file, name) in [("run.csv", "first"), ("other.csv", "long"), ("run.csv", "last")] {
            try member(
                "kim", "import", root.appendingPathComponent(file).path, "--name", name, "--dataset",
                root.appendingPathComponent("test.csv").path)
        }
        func plantLongNote(_ workspace: String, on name: String) throws {
            let queue = try DatabaseQueue(path: root.appendingPathComponent("\(workspace)/suneung.sqlite").path)
            try queue.write {
                try $0.execute(
                    sql: "UPDATE predictionSet SET note = ? WHERE name = ?", arguments: [String(repeating: "n", count: 12_000), name])
            }
        }
        try plantLongNote("kim", on: "long")
        try member("kim", "remote", "add", "team", server.url, "--token", token)
        let pushed = try member("kim", "push", "--all", expect: 1)
        XCTAssertTrue(pushed.contains("refused  long@v1: the set's note has 12000 characters (at most 10000)"), pushed)
        XCTAssertTrue(pushed.contains("Pushed 2 sets (2 new") && pushed.contains("1 set was refused"), pushed)

        // The server holds a set with a long note (planted the same way): a pull takes the rest.
        try member(
            "server", "import", root.appendingPathComponent("other.csv").path, "--name", "server-long", "--dataset",
            root.appendingPathComponent("test.csv").path)
        try plantLongNote("server", on: "server-long")
        try member("park", "remote", "add", "team", server.url, "--token", token)
        let pulled = try member("park", "pull", expect: 1)
        XCTAssertTrue(pulled.contains("refused  server-long@v1: the set's note has 12000 characters"), pulled)
        XCTAssertTrue(pulled.contains("Pulled 2 sets (2 new"), pulled)
        XCTAssertEqual(Set(try listed("park").map { $0["name"] as! String }), ["first", "last"])
    }
}
