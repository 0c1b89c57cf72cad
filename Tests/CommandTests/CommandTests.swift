import Foundation
import GRDB
import TestSupport
import XCTest

/// Runs the built `suneung` binary as a user would, checking output, exit status, and
/// that a refused command leaves the store exactly as it was.
class WorkspaceTestCase: XCTestCase {
    var root: URL!

    struct Result {
        var status: Int32
        var output: String
    }

    @discardableResult
    func run(_ arguments: String..., status expected: Int32? = 0, file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        try run(arguments, status: expected, file: file, line: line)
    }

    func run(_ arguments: [String], status expected: Int32?, file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let (status, output) = try SuneungBinary.run(arguments, in: root, expect: expected, file: file, line: line)
        return Result(status: status, output: output)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: root.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    let exam = SampleFiles.exam

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-cli-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try write("test.csv", exam)
        try write("run.csv", SampleFiles.run)
        try write("other.csv", SampleFiles.other)
        try run("init")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    /// Every table's rows, as text: what "the store is unchanged" compares.
    func storeDump() throws -> String {
        let queue = try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path)
        return try queue.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map { table in
                table + ":" + (try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map(\.description).joined(separator: "\n"))
            }.joined(separator: "\n")
        }
    }

    /// Every listed set's file is present and matches its sha256, and SQLite says ok.
    func assertConsistent(file: StaticString = #filePath, line: UInt = #line) throws {
        let queue = try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path)
        let (integrity, sets, submissions) = try queue.read { db in
            (
                try String.fetchAll(db, sql: "PRAGMA integrity_check"),
                try Row.fetchAll(db, sql: "SELECT name, version, csvSha256 FROM predictionSet"),
                // A newer version of an ensemble writes the same file: the newest owns it.
                try Row.fetchAll(
                    db, sql: "SELECT path, csvSha256 FROM submission WHERE id IN (SELECT MAX(id) FROM submission GROUP BY path)")
            )
        }
        XCTAssertEqual(integrity, ["ok"], file: file, line: line)
        var owned: Set<String> = []
        for set in sets {
            let name = "\(set[0] as String)@v\(set[1] as Int).csv"
            owned.insert(name)
            let data = FileManager.default.contents(atPath: root.appendingPathComponent("predictions").appendingPathComponent(name).path)
            XCTAssertEqual(data.map { sha256Hex(Array($0)) }, set[2] as String?, "predictions/\(name)", file: file, line: line)
        }
        for submission in submissions {
            let data = FileManager.default.contents(atPath: root.appendingPathComponent(submission[0] as String).path)
            XCTAssertEqual(
                data.map { sha256Hex(Array($0)) }, submission[1] as String?, "submission \(submission[0] as String)", file: file, line: line
            )
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("predictions").path).filter {
            !$0.hasPrefix(".")
        }
        XCTAssertEqual(Set(files), owned, "files in predictions/ that belong to no set", file: file, line: line)
    }

    /// The files in predictions/ and submissions/ with their contents.
    func exportedFiles() throws -> [String: Data] {
        var files: [String: Data] = [:]
        for folder in ["predictions", "submissions"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path) {
                files["\(folder)/\(name)"] = try Data(contentsOf: root.appendingPathComponent(folder).appendingPathComponent(name))
            }
        }
        return files
    }

    /// Starts `suneung ARGUMENTS` in the workspace, polls `until` every 20 ms (for up to
    /// `timeout` seconds), then kills it with SIGKILL.
    func killWhen(_ arguments: [String], timeout: TimeInterval = 180, until condition: () throws -> Bool) throws {
        let process = SuneungBinary.process(arguments, in: root)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition(), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Refused with one clear message, changing nothing; usage errors (a bad flag) exit 64.
    func assertRefused(_ arguments: String..., status: Int32 = 1, says fragment: String, file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        let before = try storeDump()
        let files = try exportedFiles()
        let output = try run(arguments, status: status, file: file, line: line).output
        XCTAssertTrue(output.contains(fragment), "expected '\(fragment)' in:\n\(output)", file: file, line: line)
        XCTAssertEqual(
            output.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count, 1, "one clear message:\n\(output)", file: file,
            line: line)
        XCTAssertEqual(try storeDump(), before, "the store changed", file: file, line: line)
        XCTAssertEqual(try exportedFiles(), files, "predictions/ or submissions/ changed", file: file, line: line)
    }
}

final class CommandTests: WorkspaceTestCase {
    func testTheStoreWorkflow() throws {
        XCTAssertTrue(
            try run("import", "run.csv", "--name", "run", "--dataset", "test.csv").output.contains("Imported run@v1: 3 items with logits"))
        XCTAssertTrue(
            try run("import", "run.csv", "--name", "run", "--dataset", "test.csv").output.contains(
                "No new version: run.csv has the same content as run@v1"))
        try run("import", "other.csv", "--name", "run", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "base", "--dataset", "test.csv")
        try run("score", "run@v1", "--public", "0.8111", "--private", "0.7793", "--note", "LB")
        XCTAssertTrue(try run("score", "run@v1", "--gold", "test.csv").output.contains("local 1.0000 (gold test.csv: 3/3)"))
        try run("score", "run", "--public", "0.7")

        let list = try run("list", "--sort", "public").output
        let lines = list.split(separator: "\n")
        XCTAssertTrue(lines[0].hasPrefix("set "), list)
        XCTAssertTrue(
            lines[2].hasPrefix("run@v1 ") && lines[2].contains("logits") && lines[2].contains("0.8111") && lines[2].contains("0.7793")
                && lines[2].contains("1.0000"), list)
        XCTAssertTrue(lines[3].hasPrefix("run@v2 ") && lines[3].contains("0.7000"), list)
        XCTAssertTrue(lines[4].hasPrefix("base@v1 "), list)
        let columns = lines.map { $0.range(of: "imported")?.lowerBound.utf16Offset(in: $0) }
        XCTAssertEqual(Set(columns.dropFirst(2).compactMap { $0 }).count, 1, "columns line up:\n\(list)")
        XCTAssertTrue(
            lines[2].contains(" best ") && lines[3].contains(" ~ "), "the best and those within one standard error are marked:\n\(list)")

        let json = try JSONSerialization.jsonObject(with: Data(try run("list", "--format", "json").output.utf8)) as? [[String: Any]]
        XCTAssertEqual(json?.map { $0["ref"] as? String }, ["base@v1", "run@v1", "run@v2"])
        XCTAssertTrue(
            try run("list", "--format", "csv").output.hasPrefix(
                "set,origin,dataset,items,rows,values,public,private,local,author,tags,hidden,invalid_answers,biased,note,created,file\nbase@v1,imported,"
            ))

        let show = try run("show", "run@v1").output
        XCTAssertTrue(show.contains("\"sourceFile\" : \"run.csv\""), show)
        XCTAssertTrue(show.contains("public   0.8111"), show)
        XCTAssertTrue(show.contains("       5      1  33.3%"), show)

        let diff = try run("diff", "run@v1", "base").output
        XCTAssertTrue(diff.contains("item  run@v1  base@v1\n----  ------  -------\nq1         2        1\n"), diff)
        XCTAssertTrue(diff.contains("agree on 2 of 3 shared items (66.7%); 1 differ"), diff)

        try run("export", "run@v1", "--out", "exported.csv")
        let exported = try Data(contentsOf: root.appendingPathComponent("exported.csv"))
        XCTAssertEqual(exported, try Data(contentsOf: root.appendingPathComponent("predictions/run@v1.csv")))
        XCTAssertEqual(
            String(decoding: exported, as: UTF8.self),
            "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,2,0.1,2.5,0.0,-1.0,\nq2,5,0.0,0.0,0.0,1.0,3.0\nq3,1,1.0,0.0,0.0,0.0,\n")
    }

    func testWorkspaceIsFoundFromASubfolder() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        let sub = root
        root = root.appendingPathComponent("predictions")
        defer { root = sub }
        XCTAssertTrue(try run("list").output.contains("run@v1"))
    }

    func testBadExamFilesAreRefused() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        let header = "id,paragraph,problems,question_plus\n"
        let cases: [(String, String)] = [
            ("id,paragraph,question_plus\nq1,p,\n", "missing column problems"),
            (header + "q1,p,\"{'question': 'q', 'choices': ['a', 'b']}\n", "unterminated quoted field"),
            (
                header + "q1,p,\"{'question': 'q', 'choices': ['a', 'b']}\",\nq1,p,\"{'question': 'q', 'choices': ['a', 'b']}\",\n",
                "bad.csv:3 [id]: duplicate id q1"
            ),
            (header + "q1,p,{question},\n", "bad.csv:2 [problems]: not a Python literal"),
            (header + "q1,p,\"{'question': 'q', 'choices': ['1','2','3','4','5','6']}\",\n", "6 choices"),
            (header + "q1,p,\"{'question': 'q', 'choices': ['1','2','3','4'], 'answer': 0}\",\n", "answer 0 is outside 1...4")
        ]
        for (text, message) in cases {
            try write("bad.csv", text)
            try assertRefused("import", "run.csv", "--name", "next", "--dataset", "bad.csv", says: message)
            let check = try run("data", "check", "bad.csv", status: 1)
            XCTAssertTrue(check.output.contains(message), check.output)
        }
        XCTAssertTrue(try run("data", "check", "test.csv").output.contains("problems         none"))
    }

    func testBadPredictionFilesAreRefused() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        let header = "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\n"
        let cases: [(String, String)] = [
            (header + "q1,2,0,1,0,0,\nq3,1,1,0,0,0,\n", "1 of the dataset's 3 items have no row (q2)"),
            (header + "q1,2,0,1,0,0,\nq2,5,0,0,0,0,1\nq3,1,1,0,0,0,\nq4,1,1,0,0,0,\n", "p.csv:5 [id]: q4 is not an item of the dataset"),
            (header + "q1,5,0,1,0,0,\nq2,5,0,0,0,0,1\nq3,1,1,0,0,0,\n", "p.csv:2 [answer]: answer 5 is outside 1...4 for item q1"),
            (header + "q1,2,0,one,0,0,\nq2,5,0,0,0,0,1\nq3,1,1,0,0,0,\n", "p.csv:2 [logit_2]: 'one' is not a number"),
            (header + "q1,2,0,NaN,0,0,\nq2,5,0,0,0,0,1\nq3,1,1,0,0,0,\n", "p.csv:2 [logit_2]: NaN is not a finite number")
        ]
        for (text, message) in cases {
            try write("p.csv", text)
            try assertRefused("import", "p.csv", "--name", "run", "--dataset", "test.csv", says: message)
        }
    }

    func testBadScoresAndReferencesAreRefused() throws {
        try run("import", "run.csv", "--name", "qwen_ep2", "--dataset", "test.csv")
        try assertRefused("score", "qwen_ep2", "--public", "1.7", says: "public score 1.7 is not an accuracy in [0, 1]")
        try assertRefused("score", "qwen_ep2", "--public=-0.1", says: "public score -0.1 is not an accuracy")
        try assertRefused("score", "qwen_ep2", "--public", "0.8", "--private", "81.5", says: "that would be 0.815")
        try assertRefused(
            "score", "qwen_ep3", "--public", "0.8", says: "no prediction set or submission named qwen_ep3 (did you mean qwen_ep2?)")
        try assertRefused("show", "qwen_ep2@v4", says: "qwen_ep2 has no version 4 (the latest is qwen_ep2@v1)")
        try write("other-exam.csv", "id,paragraph,problems\nz1,p,\"{'question': 'q', 'choices': ['a', 'b'], 'answer': 1}\"\n")
        try assertRefused("score", "qwen_ep2", "--gold", "other-exam.csv", says: "labels none of the items qwen_ep2@v1 predicts")
    }

    func testNewerStoreIsRefused() throws {
        let queue = try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path)
        try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99 from the future')") }
        try assertRefused("list", says: "written by a newer suneung")
        try assertRefused("import", "run.csv", "--name", "run", "--dataset", "test.csv", says: "written by a newer suneung")
    }
}

final class KillTests: WorkspaceTestCase {
    /// `suneung import` killed with SIGKILL at several moments: each time the store holds
    /// either the whole version or none of it, and the next import still works.
    func testKilledImportLeavesNoPartialVersion() throws {
        let count = 20_000
        var exam = "id,paragraph,problems\n", predictions = "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\n"
        for i in 0..<count {
            exam += "k\(i),p,\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd', 'e']}\"\n"
            predictions += "k\(i),\(i % 5 + 1),0.\(i),1.5,-2.25,3.125,0.0\n"
        }
        try write("big.csv", exam)
        try write("big-run.csv", predictions)
        try run("import", "big-run.csv", "--name", "warmup", "--dataset", "big.csv") // registers the dataset
        for (attempt, delay) in [0.02, 0.05, 0.1, 0.2, 0.4].enumerated() {
            try write("big-run.csv", predictions.replacingOccurrences(of: ",1.5,", with: ",1.\(attempt + 6),"))
            let process = SuneungBinary.process(["import", "big-run.csv", "--name", "killed", "--dataset", "big.csv"], in: root)
            try process.run()
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let queue = try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path)
            let partial = try queue.read { db in
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM predictionSet s WHERE (SELECT COUNT(*) FROM predictionRow r WHERE r.setId = s.id) != ?",
                    arguments: [count])!
            }
            XCTAssertEqual(partial, 0, "a version with a partial set of rows after a kill at \(delay) s")
        }
        try run("import", "big-run.csv", "--name", "killed", "--dataset", "big.csv")
        XCTAssertTrue(try run("list").output.contains("killed@v"))
    }

    /// `suneung predict` killed with SIGKILL once some items are committed: no prediction
    /// set is visible, and the same command resumes from them and gives, byte for byte,
    /// what an uninterrupted run gives (the reused keys and values included).
    func testKilledPredictResumes() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        // Six passages of two questions each, the second question of each passage at the end.
        var exam = "id,paragraph,problems\n"
        for (n, question) in ["윗글의 중심 내용은?", "윗글과 일치하지 않는 것은?"].enumerated() {
            for p in 0..<6 {
                let passage = String(repeating: "제\(p)지문에서 조선 후기 상업과 도시의 변화를 설명한다. ", count: 4 + p)
                exam += "q\(p)-\(n),\(passage),\"{'question': '\(question)', 'choices': ['가', '나', '다', '라']}\"\n"
            }
        }
        try write("passages.csv", exam)
        let sample = "passages.csv"
        try run("predict", "--model", smol, "--dataset", sample, "--name", "clean")
        let queue = try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path)
        func count(_ sql: String) throws -> Int { try queue.read { try Int.fetchOne($0, sql: sql)! } }
        try killWhen(["predict", "--model", smol, "--dataset", sample, "--name", "killed"], timeout: 60) {
            try count("SELECT COUNT(*) FROM predictionRunRow") >= 3
        }
        XCTAssertEqual(try count("SELECT COUNT(*) FROM predictionSet WHERE name = 'killed'"), 0, "a set is visible after the kill")
        let scored = try count("SELECT COUNT(*) FROM predictionRunRow")
        XCTAssertGreaterThanOrEqual(scored, 3)
        XCTAssertLessThan(scored, 12, "the run finished before the kill: nothing was tested")
        let resumed = try run("predict", "--model", smol, "--dataset", sample, "--name", "killed").output
        XCTAssertTrue(resumed.contains("Resuming killed: \(scored) of 12 items were scored before."), resumed)
        XCTAssertEqual(
            try Data(contentsOf: root.appendingPathComponent("predictions/killed@v1.csv")),
            try Data(contentsOf: root.appendingPathComponent("predictions/clean@v1.csv")))
    }
}
