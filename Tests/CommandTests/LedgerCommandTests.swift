import Crypto
import Foundation
import GRDB
import TestSupport
import XCTest

/// The ledger a team can trust (issue 12): each test is a case that went wrong on the
/// earlier main, run through the built binary.
final class LedgerCommandTests: WorkspaceTestCase {
    func json(_ arguments: String...) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(try run(arguments, status: 0).output.utf8))
    }

    func listed() throws -> [[String: Any]] {
        try json("list", "--all", "--format", "json") as! [[String: Any]]
    }

    // 1. A name belongs to one origin.
    func testNoNameTakeover() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "base", "--dataset", "test.csv")
        try run("ensemble", "--members", "run,base", "--name", "top5-vote")
        let exported = root.appendingPathComponent("e1.csv")
        try run("export", "top5-vote", "--out", exported.path)
        try assertRefused(
            "import", "other.csv", "--name", "top5-vote", "--dataset", "test.csv",
            says: "top5-vote is the name of ensemble sets; imported sets cannot be added under it")
        try assertRefused("score", "top5-vote", "--public", "2", says: "not an accuracy")
        try assertRefused(
            "ensemble", "--members", "run,base", "--method", "average", "--weights", "uniform", "--name", "run",
            says: "run is the name of imported sets; ensemble sets cannot be added under it")
        try run("export", "top5-vote", "--out", root.appendingPathComponent("e2.csv").path)
        XCTAssertEqual(
            try Data(contentsOf: exported), try Data(contentsOf: root.appendingPathComponent("e2.csv")), "export NAME never changes origin")
    }

    // 2. Content identity across names.
    func testTheSameFileUnderTwoNamesCountsOnce() throws {
        try write("third.csv", "id,answer\nq1,3\nq2,1\nq3,2\n")
        try run("import", "run.csv", "--name", "gemma-2944", "--dataset", "test.csv")
        let again = try run("import", "run.csv", "--name", "gemma-2944-copy", "--dataset", "test.csv").output
        XCTAssertTrue(again.contains("Same answers and values as gemma-2944@v1"), again)
        try run("import", "other.csv", "--name", "other", "--dataset", "test.csv")
        try run("import", "third.csv", "--name", "third", "--dataset", "test.csv")
        try run("score", "gemma-2944", "--public", "0.8")
        try run("score", "gemma-2944-copy", "--public", "0.81")
        try run("score", "other", "--public", "0.7")
        try run("score", "third", "--public", "0.6")
        let ensemble = try run("ensemble", "--top", "3", "--name", "top3").output
        XCTAssertTrue(ensemble.contains("Skipped gemma-2944@v1: the same answers and values as gemma-2944-copy@v1."), ensemble)
        XCTAssertTrue(ensemble.contains("third@v1"), "three distinct systems:\n\(ensemble)")
        let agree = try run("agree", "--top", "3").output
        XCTAssertTrue(agree.contains("Skipped gemma-2944@v1"), agree)
        let select = try run("select", "--gold", "test.csv", "--rounds", "2").output
        XCTAssertTrue(select.contains("Skipped gemma-2944@v1"), select)
        // An ensemble whose answers are an uploaded one's is said to be.
        try run("score", "top3", "--public", "0.9")
        let repeated = try run("ensemble", "--top", "3", "--method", "average", "--weights", "uniform", "--name", "top3-avg").output
        XCTAssertTrue(repeated.contains("answers identical to"), repeated)
        let export = try run("export", "other", "--out", "o.csv").output
        XCTAssertTrue(export.contains("Note: answers identical to") == false || export.contains("other"), export)
    }

    // 3. Nothing half-recorded: a failed write leaves neither rows nor files.
    func testAFailedWriteLeavesNothing() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        let predictions = root.appendingPathComponent("predictions")
        try FileManager.default.moveItem(at: predictions, to: root.appendingPathComponent("predictions.away"))
        try write("predictions", "not a folder")
        let before = try storeDump()
        XCTAssertTrue(try run("import", "other.csv", "--name", "second", "--dataset", "test.csv", status: 1).output.contains("predictions"))
        XCTAssertTrue(try run("ensemble", "--members", "run", "--name", "solo", status: 1).output.contains("predictions"))
        XCTAssertEqual(try storeDump(), before, "a failed write leaves no row")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("submissions").path), [],
            "nor a submission file")
        try FileManager.default.removeItem(at: predictions)
        try FileManager.default.moveItem(at: root.appendingPathComponent("predictions.away"), to: predictions)
        try assertRefused(
            "import", "other.csv", "--name", String(repeating: "n", count: 300), "--dataset", "test.csv", says: "longer than 100 characters"
        )
        // A file removed by hand: reported, rebuilt by fsck, and by the same import again.
        try FileManager.default.removeItem(at: predictions.appendingPathComponent("run@v1.csv"))
        XCTAssertTrue(try run("list").output.contains("run@v1 (file missing)"))
        XCTAssertTrue(try run("fsck", "--check", status: 1).output.contains("would rebuild predictions/run@v1.csv"))
        XCTAssertTrue(try run("fsck").output.contains("rebuilt predictions/run@v1.csv"))
        try assertConsistent()
        try FileManager.default.removeItem(at: predictions.appendingPathComponent("run@v1.csv"))
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try assertConsistent()
        try write("predictions/stray@v1.csv", "id,answer\n")
        XCTAssertTrue(try run("fsck").output.contains("quarantined predictions/stray@v1.csv -> quarantine/stray@v1.csv"))
        XCTAssertTrue(try run("fsck").output.contains("Everything is in order."))
    }

    /// A copied workspace still works: paths are kept relative to it.
    func testACopiedWorkspaceWorks() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("ensemble", "--members", "run", "--name", "solo")
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-copy-\(UUID())")
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.copyItem(at: root, to: copy)
        try FileManager.default.removeItem(at: root.appendingPathComponent("test.csv"))
        let original = root!
        root = copy
        defer { root = original }
        let show = try run("show", "solo").output
        XCTAssertTrue(show.contains("test.csv") && !show.contains(original.path), show)
        try assertRefused("export", "run", "--out", "test.csv", says: "is the exam file of dataset")
        XCTAssertTrue(try run("fsck").output.contains("Everything is in order."))
    }

    // 4. --out never destroys what the store manages.
    func testOutNeverOverwritesTheStore() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "other", "--dataset", "test.csv")
        try run("ensemble", "--members", "run,other", "--name", "vote")
        for target in [
            "suneung.sqlite", "suneung.sqlite-wal", "suneung.sqlite-shm", "predictions/other@v1.csv", "./predictions/../suneung.sqlite",
            "test.csv", "submissions/vote.csv"
        ] {
            let says =
                target.hasPrefix("predictions/")
                ? "predictions/, which suneung manages"
                : target == "test.csv"
                    ? "exam file" : target.hasPrefix("submissions") ? "is the submission of vote@v1" : "is not a .csv file"
            try assertRefused("export", "run", "--out", target, says: says)
            try assertRefused(
                "ensemble", "--members", "run,other", "--method", "average", "--weights", "uniform", "--name", "avg", "--out", target,
                says: says)
        }
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("link.csv").path, withDestinationPath: root.appendingPathComponent("suneung.sqlite").path)
        try assertRefused("export", "run", "--out", "link.csv", says: "is an SQLite database")
        // Another workspace's store and managed files are refused too.
        try run("init", "--workspace", "other")
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv", "--workspace", "other")
        try FileManager.default.copyItem(
            atPath: root.appendingPathComponent("other/suneung.sqlite").path,
            toPath: root.appendingPathComponent("other/store-copy.csv").path)
        try assertRefused("export", "run", "--out", "other/store-copy.csv", says: "is an SQLite database")
        try assertRefused("export", "run", "--out", "other/predictions/run@v1.csv", says: "which suneung manages")
        try assertRefused("export", "run", "--out", "no/such/folder/x.csv", says: "does not exist")
        try assertRefused("export", "run", "--out", "config/competition.yaml", says: "is not a .csv file")
        try run("export", "vote", "--out", "submissions/vote.csv") // its own submission: fine
        // vote@v2 writes submissions/vote.csv
        try run("ensemble", "--members", "run,other", "--method", "average", "--weights", "uniform", "--name", "vote")
        XCTAssertTrue(try run("fsck", "--check").output.contains("Everything is in order."), "the file belongs to the newest version")
        XCTAssertTrue(try run("list").output.contains("vote@v1"), "the store still opens")
        try assertConsistent()
    }

    // 5. A dataset is its parsed content: CRLF and a byte-order mark are the same dataset.
    func testCRLFAndBOMCopiesAreTheSameDataset() throws {
        try write("test-crlf.csv", "\u{FEFF}" + exam.replacingOccurrences(of: "\n", with: "\r\n"))
        let first = try run("import", "run.csv", "--name", "a", "--dataset", "test.csv").output
        let second = try run("import", "other.csv", "--name", "b", "--dataset", "test-crlf.csv").output
        let hash = { (text: String) in text.components(separatedBy: "dataset ").last!.prefix(8) }
        XCTAssertEqual(hash(first), hash(second), first + second)
        try run("ensemble", "--members", "a,b", "--name", "ab")
        try write("test-changed.csv", exam.replacingOccurrences(of: "지문 둘", with: "지문 둘!"))
        XCTAssertNotEqual(
            hash(try run("import", "other.csv", "--name", "c", "--dataset", "test-changed.csv").output), hash(first),
            "changed text is another dataset")
    }

    // 6. Input the validators accepted no longer crashes anything.
    func testHostileInputs() throws {
        let deep = String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000)
        try write("deep.csv", "id,paragraph,problems\nq1,p,\"{'question': 'q', 'choices': \(deep)}\"\n")
        XCTAssertTrue(try run("data", "check", "deep.csv", status: 1).output.contains("nested too deeply"))
        try assertRefused("import", "run.csv", "--name", "x", "--dataset", "deep.csv", says: "nested too deeply")
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "other", "--dataset", "test.csv")
        try run("ensemble", "--members", "run,other", "--method", "average", "--weights", "run=1e308,other=1e308", "--name", "huge")
        try write("both.csv", "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5,prob_1,prob_2,prob_3,prob_4,prob_5\n")
        try assertRefused("import", "both.csv", "--name", "b", "--dataset", "test.csv", says: "both logit and probability columns")
        let huge = String(repeating: "z", count: 2_000_000)
        try write("huge.csv", "id,answer\n\(huge),1\nq1,1\nq2,1\nq3,1\n")
        let started = Date()
        let refused = try run("import", "huge.csv", "--name", "h", "--dataset", "test.csv", status: 1).output
        XCTAssertLessThan(refused.count, 2_000, "a 2 MB id is quoted, not echoed")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        // A note is text: an escape sequence is refused (TextLimits); a line break is
        // kept and shown escaped in one-line places.
        try assertRefused("note", "run", "line\u{1B}[2Jcleared\nsecond", says: "a control character (U+001B)")
        try run("note", "run", "line\tcleared\nsecond")
        let show = try run("show", "run").output
        XCTAssertTrue(show.contains("line\\tcleared\\nsecond"), show)
    }

    /// Two `init` at once on a new folder: both succeed.
    func testConcurrentInit() throws {
        for attempt in 0..<8 {
            let folder = root.appendingPathComponent("new-\(attempt)")
            let processes = (0..<3).map { _ in SuneungBinary.process(["init", "--workspace", folder.path]) }
            for process in processes { try process.run() }
            for process in processes {
                process.waitUntilExit()
                XCTAssertEqual(process.terminationStatus, 0, "init \(attempt)")
            }
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("config/competition.yaml").path))
        }
    }

    /// Read commands work in a workspace the user cannot write.
    func testReadOnlyWorkspace() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("score", "run", "--public", "0.5")
        let user: [String]
        if getuid() == 0 {
            // root writes anywhere: read as nobody, for whom the workspace is read-only.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.path)
            for name in try FileManager.default.contentsOfDirectory(atPath: root.path) {
                try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.appendingPathComponent(name).path)
            }
            user = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
            guard FileManager.default.isExecutableFile(atPath: user[0]) else {
                throw XCTSkip("setpriv is not installed: cannot read as another user")
            }
            var folder = SuneungBinary.url.deletingLastPathComponent()
            while folder.path != "/" {
                guard let mode = (try? FileManager.default.attributesOfItem(atPath: folder.path))?[.posixPermissions] as? Int,
                    mode & 0o001 != 0
                else {
                    throw XCTSkip("the build folder \(folder.path) is not readable by other users: cannot run the binary as nobody")
                }
                folder.deleteLastPathComponent()
            }
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: root.path)
            user = []
        }
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.path) }
        func asReader(_ arguments: [String]) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: user.first ?? SuneungBinary.url.path)
            process.arguments =
                Array(user.dropFirst()) + (user.isEmpty ? [] : [SuneungBinary.url.path]) + arguments + ["--workspace", root.path]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        for command in [
            ["list", "--all"], ["show", "run"], ["uploads"], ["diff", "run", "run", "--summary"], ["list", "--format", "json"], ["fsck"]
        ] {
            let (status, output) = try asReader(command)
            XCTAssertEqual(status, 0, "\(command): \(output)")
        }
        let (status, output) = try asReader(["score", "run", "--public", "0.6"])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("read-only"), output)
    }

    // What a team needs from real files: the eleven real submissions.
    func testTheElevenRealSubmissionFiles() throws {
        let test = URL(
            fileURLWithPath: try RealData.path("test.csv", sha256: "a53b58706953dea269f1af7cad71111b6794983de1fd16b665632954058a18f6"))
        let folder = test.deletingLastPathComponent().appendingPathComponent("peer-predictions/test-systems")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".csv") }.sorted().map {
            folder.appendingPathComponent($0).path
        }
        XCTAssertEqual(files.count, 11)
        let refused = try run(["import"] + files + ["--dataset", test.path], status: 1).output
        XCTAssertTrue(refused.contains("Nothing was imported (5 of 11 files refused)."), refused)
        try run(["import"] + files + ["--dataset", test.path, "--invalid", "as-wrong", "--author", "peer", "--tag", "real"], status: 0)
        let invalid = Dictionary(uniqueKeysWithValues: try listed().map { ($0["name"] as! String, $0["invalidAnswers"] as! Int) })
        XCTAssertEqual(
            invalid,
            [
                "gemma_ckpt2944": 0, "gemma_ckpt2944_2nd": 0, "gpt4o": 6, "zeroshot_NCSOFT_output_logical": 12, "zeroshot_output": 0,
                "zeroshot_output_change_system_m": 0, "zeroshot_output_ex": 1, "zeroshot_output_infront_answer": 96,
                "zeroshot_output_logical": 1, "zeroshot_output_logical2": 0, "zeroshot_output_please": 0
            ])
        // Stored exactly as uploaded: the export is the file, byte for byte.
        for name in ["zeroshot_output_infront_answer", "zeroshot_output_ex", "gpt4o"] {
            try run("export", name, "--out", "\(name).csv")
            XCTAssertEqual(
                try Data(contentsOf: root.appendingPathComponent("\(name).csv")),
                try Data(contentsOf: folder.appendingPathComponent("\(name).csv")), name)
        }
        // Invalid answers abstain in votes: every member that has an answer there votes.
        for (index, name) in invalid.keys.sorted().enumerated() { try run("score", name, "--public", "0.\(50 + index)") }
        try run("ensemble", "--top", "11", "--name", "all-vote")
        XCTAssertTrue(try run("check", "submissions/all-vote.csv", "--dataset", test.path).output.contains("a valid submission"))
        let check = try run("check", folder.appendingPathComponent("zeroshot_output_logical.csv").path, "--dataset", test.path, status: 1)
            .output
        XCTAssertTrue(check.contains("answer '[D' is not within 1...5"), check)
        // The peer team's train-set probabilities: a subset, scored against the gold.
        let train = test.deletingLastPathComponent().appendingPathComponent("train.csv").path
        let probabilities = test.deletingLastPathComponent().appendingPathComponent("peer-predictions/one-model-train-probs.csv").path
        XCTAssertTrue(
            try run("import", probabilities, "--name", "one-model", "--dataset", train, "--subset").output.contains(
                "1589 of 1614 items (subset) with probabilities"))
        XCTAssertTrue(try run("score", "one-model", "--gold", train).output.contains("local 0.6444 (gold \(train): 1024/1589)"))
        try assertConsistent()
        // A workspace that only imports still gets its report.
        let report = try run("report").output
        XCTAssertTrue(report.contains("reports/workspace.html"), report)
        let page = try String(contentsOf: root.appendingPathComponent("reports/workspace.html"), encoding: .utf8)
        XCTAssertTrue(page.contains("all-vote@v1") && page.contains("gemma_ckpt2944@v1"), "the report names the sets")
    }

    // --subset: stored, scored and selected, never a submission.
    func testSubsets() throws {
        try write("part.csv", "id,answer\nq3,1\nq1,2\n")
        let imported = try run("import", "part.csv", "--name", "valid-preds", "--dataset", "test.csv", "--subset").output
        XCTAssertTrue(imported.contains("2 of 3 items (subset)"), imported)
        try assertRefused("import", "part.csv", "--name", "again", "--dataset", "test.csv", says: "--subset")
        XCTAssertTrue(try run("score", "valid-preds", "--gold", "test.csv").output.contains("local 1.0000 (gold test.csv: 2/2)"))
        try assertRefused("export", "valid-preds", "--out", "x.csv", says: "a subset is never exported as a submission")
        try run("import", "other.csv", "--name", "full", "--dataset", "test.csv")
        try assertRefused("ensemble", "--members", "valid-preds,full", "--name", "e", says: "a subset cannot be a member of a submission")
        XCTAssertTrue(try run("diff", "valid-preds", "full").output.contains("agree on 1 of 2 shared items"))
        XCTAssertTrue(try run("agree", "valid-preds", "full").output.contains("2 of its 3 items, covered by all"))
        XCTAssertTrue(try run("select", "--gold", "test.csv", "--rounds", "1").output.contains("on 2 labelled items"))
        XCTAssertTrue(try run("list").output.contains("2/3"))
    }

    // The management verbs.
    func testManagingSets() throws {
        try run(
            "import", "run.csv", "--name", "run", "--dataset", "test.csv", "--author", "minji", "--tag", "qwen", "--tag", "ep2", "--note",
            "lr 2e-5")
        try run("import", "other.csv", "--name", "other", "--dataset", "test.csv", "--author", "jun")
        try run("ensemble", "--members", "run,other", "--name", "mix")
        try run("tag", "other", "qwen")
        XCTAssertEqual(try run("list", "--tag", "qwen", "--format", "csv").output.split(separator: "\n").count, 3)
        XCTAssertTrue(try run("list", "--author", "minji").output.contains("run@v1"))
        XCTAssertFalse(try run("list", "--author", "minji").output.contains("other@v1"))
        XCTAssertTrue(try run("tag", "other", "qwen", "--remove").output.contains("no tags"))
        let renamed = try run("rename", "run", "qwen-ep2").output
        XCTAssertTrue(renamed.contains("Renamed run to qwen-ep2: qwen-ep2@v1."), renamed)
        XCTAssertTrue(try run("show", "mix").output.contains("qwen-ep2@v1"), "the ensemble keeps its member")
        try assertRefused("rename", "qwen-ep2", "other", says: "other already exists")
        try assertConsistent()
        try run("hide", "other")
        XCTAssertFalse(try run("list").output.contains("other@v1"))
        XCTAssertTrue(try run("list", "--all").output.contains("other@v1 (hidden)"))
        try run("unhide", "other")
        XCTAssertTrue(try run("list").output.contains("other@v1"))
        // Retracting keeps the history and restores the previous score.
        try run("score", "other", "--public", "0.70", "--author", "jun")
        try run("score", "other", "--public", "0.75", "--private", "0.71")
        XCTAssertTrue(try run("score", "other", "--retract").output.contains("retracted public 0.7500"))
        let listed = try listed().first { $0["ref"] as? String == "other@v1" }!
        XCTAssertEqual(listed["public"] as? Double, 0.70)
        XCTAssertTrue(listed["private"] is NSNull, "null where missing")
        XCTAssertTrue(try run("show", "other").output.contains("public (retracted)"))
        let show = try json("show", "qwen-ep2", "--format", "json") as! [String: Any]
        XCTAssertEqual(show["author"] as? String, "minji")
        XCTAssertEqual(show["tags"] as? [String], ["ep2", "qwen"])
        XCTAssertEqual(show["note"] as? String, "lr 2e-5")
        XCTAssertTrue(try run("diff", "qwen-ep2", "other", "--summary").output.contains("qwen-ep2@v1 \\ other@v1"))
    }

    /// The upload log and today's remaining uploads, under config/competition.yaml.
    func testUploadLog() throws {
        try write("config/competition.yaml", "daily_submissions: 3\ntimezone: Asia/Seoul\n")
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("score", "run", "--public", "0.8", "--note", "upload 14:02", "--author", "minji")
        try run("score", "run", "--public", "0.8") // the same score again: no second upload
        try run("score", "run", "--gold", "test.csv") // local: not an upload
        try run("score", "run", "--public", "0.81", "--private", "0.79", "--simulated") // not an upload
        let log = try run("uploads").output
        XCTAssertTrue(log.contains("Today (Asia/Seoul): 1 of 3 uploads used, 2 left."), log)
        XCTAssertTrue(log.contains("KST") && log.contains("upload 14:02") && log.contains("minji"), log)
        let uploads = try json("uploads", "--format", "json") as! [String: Any]
        let first = (uploads["uploads"] as! [[String: Any]])[0]
        XCTAssertEqual(first["public"] as? Double, 0.8)
        XCTAssertTrue(first["private"] is NSNull)
        XCTAssertTrue(
            try run("uploads", "--format", "csv").output.hasPrefix(
                "id,set,public,private,note,author,created,retracted\n1,run@v1,0.8,,upload 14:02,minji,"))
        try write("config/competition.yaml", "timezone: Mars/Olympus\n")
        XCTAssertTrue(try run("uploads", status: 1).output.contains("unknown timezone 'Mars/Olympus'"))
    }

    /// list --top/--by/--exclude, --sort private; `suneung X --help` for an unknown X.
    func testListingAndHelp() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "other", "--dataset", "test.csv")
        try run("score", "run", "--public", "0.8", "--private", "0.6")
        try run("score", "other", "--public", "0.7", "--private", "0.9")
        XCTAssertTrue(try run("list", "--sort", "private").output.split(separator: "\n")[2].hasPrefix("other@v1"))
        XCTAssertTrue(try run("list", "--top", "1", "--by", "private").output.split(separator: "\n")[2].hasPrefix("other@v1"))
        XCTAssertTrue(try run("list", "--top", "1", "--exclude", "run").output.split(separator: "\n")[2].hasPrefix("other@v1"))
        // Korean names line up by display width (a Hangul syllable is two cells).
        try run("import", "other.csv", "--name", "제미나이-2차", "--dataset", "test.csv", "--author", "김민지")
        let table = try run("list").output.split(separator: "\n").filter { $0.contains("imported") }
        func cells(_ text: Substring) -> Int {
            text.unicodeScalars.reduce(0) { $0 + ((0xAC00...0xD7A3).contains($1.value) ? 2 : 1) }
        }
        let columns = Set(table.map { line in cells(line[..<line.range(of: "imported")!.lowerBound]) })
        XCTAssertEqual(columns.count, 1, table.joined(separator: "\n"))
        let unknown = try run("ensemmble", "--help", status: 64).output
        XCTAssertTrue(unknown.contains("unknown command 'ensemmble' (did you mean 'ensemble'?)"), unknown)
        XCTAssertTrue(
            try run("init", "--workspace", "fresh").output.contains(
                "config/competition.yaml, config/train.yaml, config/predict.yaml, config/ensemble.yaml, config/pipeline.yaml"))
        // The sample configs init writes are valid: each command gets past its config.
        let train = try run(
            "train", "--config", "fresh/config/train.yaml", "--model", "/nonexistent.gguf", "--workspace", "fresh", status: 1
        ).output
        XCTAssertTrue(train.contains("/nonexistent.gguf: cannot open"), train)
        let pipeline = try run("pipeline", "--config", "fresh/config/pipeline.yaml", "--workspace", "fresh", status: 1).output
        XCTAssertTrue(pipeline.contains("== 1. zero-shot") && pipeline.contains("data/test.csv: no such file"), pipeline)
    }

    /// kill -9 at random moments in import, ensemble, rename and score, 32 times: every
    /// listed set's file is there and matches its sha256, and SQLite says ok.
    func testKillLoop() throws {
        var rows = "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\n"
        var exam = "id,paragraph,problems\n"
        for i in 0..<3000 {
            exam += "k\(i),p,\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd', 'e']}\"\n"
            rows += "k\(i),\(i % 5 + 1),0.\(i),1.5,-2.25,3.125,0.0\n"
        }
        try write("big.csv", exam)
        try write("big-run.csv", rows)
        try run("import", "big-run.csv", "--name", "seed", "--dataset", "big.csv")
        try run("score", "seed", "--public", "0.5")
        var generator = SystemRandomNumberGenerator()
        var renamed = 0
        for attempt in 0..<32 {
            try write("big-run.csv", rows.replacingOccurrences(of: ",1.5,", with: ",1.\(attempt + 6),"))
            let arguments: [String]
            switch attempt % 4 {
            case 0: arguments = ["import", "big-run.csv", "--name", "killed-\(attempt)", "--dataset", "big.csv"]
            case 1: arguments = ["ensemble", "--members", "seed", "--method", "average", "--weights", "uniform", "--name", "ens-\(attempt)"]
            case 2:
                arguments = ["rename", renamed == 0 ? "seed" : "seed-\(renamed)", "seed-\(renamed + 1)"]
            default: arguments = ["score", renamed == 0 ? "seed" : "seed-\(renamed)", "--public", "0.\(attempt + 10)"]
            }
            let process = SuneungBinary.process(arguments, in: root)
            try process.run()
            Thread.sleep(forTimeInterval: Double.random(in: 0.005...0.12, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if attempt % 4 == 2 {
                // Whether the rename committed before the kill decides the name from now on.
                if try run("show", "seed-\(renamed + 1)", status: nil).status == 0 { renamed += 1 }
            }
            // The next writer finishes what the killed one left; then everything matches.
            try run("tag", renamed == 0 ? "seed" : "seed-\(renamed)", "t\(attempt)")
            try assertConsistent()
            let temporary = try ["", "predictions", "submissions"].flatMap { folder in
                try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path).filter {
                    $0.hasSuffix(".tmp")
                }
            }
            XCTAssertEqual(temporary, [], "temporary files of the killed \(arguments[0])")
        }
        let fsck = try run("fsck").output
        XCTAssertTrue(fsck.contains("Everything is in order."), fsck)
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// Position bias (issue 16): `suneung bias` and `list`'s flag.
final class BiasCommandTests: WorkspaceTestCase {
    func testBiasAgainstGoldAndPrior() throws {
        try write("ones.csv", "id,answer\nq1,1\nq2,1\nq3,1\n")
        try run("import", "ones.csv", "--name", "ones", "--dataset", "test.csv")
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        let output = try run("bias", "ones", "run", "--gold", "test.csv").output
        // ones: the 4-choice items q1 (gold 2) and q3 (gold 1) both answered 1.
        XCTAssertTrue(output.contains("ones@v1  (biased"), output)
        XCTAssertTrue(output.contains("  4 choices, 2 items       1      2     3     4  invalid"), output)
        XCTAssertTrue(output.contains("  answers             100.0%   0.0%  0.0%  0.0%        0"), output)
        XCTAssertTrue(output.contains("  gold (2 labelled)    50.0%  50.0%  0.0%  0.0%"), output)
        XCTAssertTrue(output.contains("  recall               1.000  0.000     -     -"), output)
        // Against the gold (1, 1, 0, 0): observed (2, 0): (2-1)²/1 + (0-1)²/1 = 2, df 1.
        XCTAssertTrue(output.contains("chi-square against the gold: 2.00 (df 1), p = 0.157"), output)
        let json =
            try JSONSerialization.jsonObject(with: Data(try run("bias", "run", "--prior", "test.csv", "--format", "json").output.utf8))
            as! [[String: Any]]
        let groups = json[0]["groups"] as! [[String: Any]]
        XCTAssertEqual(groups.map { $0["choices"] as! Int }, [4, 5])
        XCTAssertEqual(groups[0]["answers"] as? [Int], [1, 1, 0, 0])
        XCTAssertEqual((groups[0]["meanProbability"] as? [Double])?.count, 4, "run has logits: its mean probabilities")
        XCTAssertFalse(try run("list").output.contains("(biased)"), "3 items say too little for a flag")
        // 40 items of 4 choices, 30 answered 1: 75% > twice the uniform 25%.
        var exam = "id,paragraph,problems\n", answers = "id,answer\n"
        for i in 0..<40 {
            exam += "b\(i),p,\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd'], 'answer': \(i % 2 + 1)}\"\n"
            answers += "b\(i),\(i < 30 ? 1 : 2)\n"
        }
        try write("forty.csv", exam)
        try write("forty-answers.csv", answers)
        try run("import", "forty-answers.csv", "--name", "forty", "--dataset", "forty.csv")
        XCTAssertTrue(try run("list").output.contains("forty@v1 (biased)"), "more than twice the uniform share")
        XCTAssertFalse(try run("list", "--prior", "forty.csv").output.contains("forty@v1 (biased)"), "not twice the prior's 50%")
    }

    /// `ensemble --calibrate`: fitted per member with values, recorded in the lineage.
    func testCalibratedAveraging() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try write(
            "probs.csv",
            "id,answer,prob_1,prob_2,prob_3,prob_4,prob_5\nq1,1,0.5,0.3,0.1,0.1,\nq2,5,0.1,0.1,0.1,0.1,0.6\nq3,1,0.7,0.1,0.1,0.1,\n")
        try run("import", "probs.csv", "--name", "probs", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "plain", "--dataset", "test.csv")
        XCTAssertTrue(
            try run(
                "ensemble", "--members", "run,probs", "--method", "average", "--weights", "uniform", "--calibrate", "temperature", "--name",
                "c", status: 64
            ).output.contains("--calibrate needs a labelled file"))
        let output = try run(
            "ensemble", "--members", "run,probs,plain", "--method", "average", "--weights", "uniform", "--calibrate", "prior", "--gold",
            "test.csv", "--name", "c"
        ).output
        XCTAssertTrue(
            output.contains("Calibrated (prior, on test.csv)") && output.contains("1 member with answers only, not calibrated."), output)
        let show = try JSONSerialization.jsonObject(with: Data(try run("show", "c", "--format", "json").output.utf8)) as! [String: Any]
        let fits = (show["lineage"] as! [String: Any])["calibration"] as! [[String: Any]]
        XCTAssertEqual(fits.map { $0["member"] as! String }, ["run@v1", "probs@v1"])
        XCTAssertEqual(fits.map { $0["items"] as! Int }, [3, 3])
        XCTAssertTrue(fits.allSatisfy { ($0["temperature"] as! Double) > 0 && ($0["positionBias"] as! [Double]).count == 5 })
    }
}
