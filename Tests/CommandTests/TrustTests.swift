import Foundation
import GRDB
import TestSupport
import XCTest

/// What a red team did to the store through files and values (the hardening issue):
/// planted journals and links, folders in predictions/, a killed new version, values
/// as numpy writes them, control characters, notes past their limit, CRLF checkouts.
final class TrustTests: WorkspaceTestCase {
    /// A pid that no process has now: a child that has exited and been reaped.
    func deadPid() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    func plantJournal(pid: Int32, _ entries: [(path: String, owner: String)], tag: String = "aaaa") throws {
        let json = try JSONSerialization.data(withJSONObject: entries.map { ["path": $0.path, "owner": $0.owner] })
        try json.write(to: root.appendingPathComponent(".suneung-pending-\(pid)-\(tag).json"))
    }

    func sha(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { sha256Hex(Array($0)) }
    }

    func testAPlantedJournalTouchesOnlyWhatSuneungWrote() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        // Outside the workspace: a file and a folder with a subfolder.
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-victim-\(UUID())")
        defer { try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.createDirectory(at: outside.appendingPathComponent("folder/sub"), withIntermediateDirectories: true)
        try "keep".write(to: outside.appendingPathComponent("victim.txt"), atomically: true, encoding: .utf8)
        try "keep".write(to: outside.appendingPathComponent("folder/sub/x.csv"), atomically: true, encoding: .utf8)
        // Inside: a live set's file, the exam file, a link in submissions/ to the outside.
        let live = root.appendingPathComponent("predictions/run@v1.csv").path
        let liveSha = sha(live)
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("submissions/linked.csv").path,
            withDestinationPath: outside.appendingPathComponent("victim.txt").path)
        try "id,answer\n".write(to: root.appendingPathComponent("predictions/ghost@v1.csv"), atomically: true, encoding: .utf8)
        try "id,answer\n".write(to: root.appendingPathComponent("predictions/planted@v1.csv"), atomically: true, encoding: .utf8)
        let dead = try deadPid()
        try plantJournal(
            pid: dead,
            [
                (outside.appendingPathComponent("victim.txt").path, "ghost@v1"),
                (outside.appendingPathComponent("folder").path, "ghost@v1"),
                (live, "ghost@v1"),
                (root.appendingPathComponent("test.csv").path, "ghost@v1"),
                (root.appendingPathComponent("predictions/../test.csv").path, "ghost@v1"),
                (root.appendingPathComponent("submissions/linked.csv").path, "ghost@v1"),
                (root.appendingPathComponent("predictions").path, "ghost@v1"),
                // What a killed writer really leaves: its file goes.
                (root.appendingPathComponent("predictions/ghost@v1.csv").path, "ghost@v1")
            ])
        // A journal of a live process (pid 1) was not written under the lock: planted.
        try plantJournal(pid: 1, [(root.appendingPathComponent("predictions/planted@v1.csv").path, "planted@v1")], tag: "bbbb")
        // A journal that is a folder, and one that is a link to a file outside.
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent(".suneung-pending-\(dead)-cccc.json/inner"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent(".suneung-pending-\(dead)-dddd.json").path,
            withDestinationPath: outside.appendingPathComponent("victim.txt").path)

        try run("tag", "run", "after-planting")

        XCTAssertEqual(try String(contentsOf: outside.appendingPathComponent("victim.txt"), encoding: .utf8), "keep")
        XCTAssertTrue(FileManager.default.fileExists(atPath: outside.appendingPathComponent("folder/sub/x.csv").path), "a folder outside")
        XCTAssertEqual(sha(live), liveSha, "a live set's file")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("test.csv").path), "the exam file")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("predictions").path), "a managed folder")
        XCTAssertNotNil(
            try? FileManager.default.destinationOfSymbolicLink(atPath: root.appendingPathComponent("submissions/linked.csv").path),
            "a link is not a regular file")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: root.appendingPathComponent("predictions/ghost@v1.csv").path),
            "the dead writer's own file")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: root.appendingPathComponent("predictions/planted@v1.csv").path),
            "a live writer's journal is left alone")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent(".suneung-pending-1-bbbb.json").path))
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: root.appendingPathComponent(".suneung-pending-\(dead)-cccc.json/inner").path),
            "a folder named as a journal")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: root.appendingPathComponent(".suneung-pending-\(dead)-aaaa.json").path),
            "the dead writer's journal is done")
        XCTAssertTrue(try run("show", "run").output.contains("after-planting"))
    }

    func testFsckQuarantinesOnlySetFilesAndRefusesLinks() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        let archive = root.appendingPathComponent("predictions/archive")
        try FileManager.default.createDirectory(at: archive, withIntermediateDirectories: true)
        try SampleFiles.run.write(to: archive.appendingPathComponent("old-team-run.csv"), atomically: true, encoding: .utf8)
        try "notes".write(to: root.appendingPathComponent("predictions/README.txt"), atomically: true, encoding: .utf8)
        try SampleFiles.run.write(to: root.appendingPathComponent("predictions/gone@v3.csv"), atomically: true, encoding: .utf8)
        XCTAssertTrue(try run("fsck", "--check", status: 1).output.contains("would quarantine predictions/gone@v3.csv"))
        let output = try run("fsck").output
        XCTAssertTrue(output.contains("quarantined predictions/gone@v3.csv -> quarantine/gone@v3.csv"), output)
        XCTAssertFalse(output.contains("archive") || output.contains("README"), output)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: archive.appendingPathComponent("old-team-run.csv").path), "a team's folder of old CSVs")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("predictions/README.txt").path))
        XCTAssertEqual(try String(contentsOf: root.appendingPathComponent("quarantine/gone@v3.csv"), encoding: .utf8), SampleFiles.run)
        // A second stray of the same name does not replace the first.
        try "x".write(to: root.appendingPathComponent("predictions/gone@v3.csv"), atomically: true, encoding: .utf8)
        XCTAssertTrue(try run("fsck").output.contains("-> quarantine/gone@v3.2.csv"))

        // predictions/ as a link to another folder: refused, nothing there touched.
        let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-elsewhere-\(UUID())")
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        try FileManager.default.moveItem(at: root.appendingPathComponent("predictions"), to: elsewhere)
        try SampleFiles.run.write(to: elsewhere.appendingPathComponent("victim@v1.csv"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("predictions"), withDestinationURL: elsewhere)
        for arguments in [
            ["fsck"], ["fsck", "--check"], ["import", "other.csv", "--name", "other", "--dataset", "test.csv"], ["tag", "run", "t"]
        ] {
            let refused = try run(arguments, status: 1).output
            XCTAssertTrue(refused.contains("predictions is a symbolic link"), "\(arguments): \(refused)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: elsewhere.appendingPathComponent("victim@v1.csv").path))
    }

    /// The journal a kill -9 of `ensemble --name vote` leaves while it adds vote@v2: its
    /// files written (submissions/vote.csv overwritten), no rows. vote@v1's submission
    /// must come back as it was.
    func testAKilledNewVersionLeavesTheOldSubmission() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "other", "--dataset", "test.csv")
        try run("ensemble", "--members", "run,other", "--name", "vote")
        let submission = root.appendingPathComponent("submissions/vote.csv")
        let before = try Data(contentsOf: submission)
        try "id,answer\nq1,4\nq2,4\nq3,4\n".write(to: submission, atomically: true, encoding: .utf8)
        try SampleFiles.run.write(to: root.appendingPathComponent("predictions/vote@v2.csv"), atomically: true, encoding: .utf8)
        try plantJournal(
            pid: try deadPid(),
            [
                (root.appendingPathComponent("predictions/vote@v2.csv").path, "vote@v2"),
                (submission.path, "vote@v2")
            ])
        try run("tag", "run", "next-writer")
        XCTAssertEqual(try Data(contentsOf: submission), before, "vote@v1's submission, written back from its rows")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("predictions/vote@v2.csv").path))
        try assertConsistent()
        XCTAssertTrue(try run("fsck", "--check").output.contains("Everything is in order."))
    }

    /// numpy writes -0.0 for tiny negatives rounded; other values at the edges of a
    /// double. Each file is stored, checked, exported and ensembled as written.
    func testValuesAtTheEdgesRoundTrip() throws {
        let values = [
            "-0.0", "-0", "+1", "1e-320", "4.9406564584124654e-324", "2.2250738585072014e-308", "0.30000000000000004",
            "1.7976931348623157e308", "-1.7976931348623157e+308", "123456789012345678", "1E5", "0.1000000000000000055511151231257827"
        ]
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        for (index, value) in values.enumerated() {
            try write(
                "edge.csv",
                "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,2,\(value),2.5,0,-1,\nq2,5,0,0,0,1,3\nq3,1,1,0,0,\(value),\n")
            try run("import", "edge.csv", "--name", "edge\(index)", "--dataset", "test.csv")
            try run("show", "edge\(index)")
            try run("export", "edge\(index)", "--out", "edge-out.csv")
            try run(
                "ensemble", "--members", "edge\(index),run", "--method", "average", "--weights", "uniform", "--name", "edge-ens\(index)")
        }
        try write("probs.csv", "id,answer,prob_1,prob_2,prob_3,prob_4,prob_5\nq1,2,-0.0,1,0,0,\nq2,5,0,0,0,-0,1\nq3,1,1,-0.0,0,0,\n")
        try run("import", "probs.csv", "--name", "probs", "--dataset", "test.csv")
        let fsck = try run("fsck", "--check").output
        XCTAssertTrue(fsck.contains("Everything is in order."), fsck)
        try assertConsistent()
        try run("export", "probs", "--out", "probs-out.csv")
        XCTAssertTrue(
            try String(contentsOf: root.appendingPathComponent("probs-out.csv"), encoding: .utf8).contains("q1,2,0.0,1.0,0.0,0.0,"))
    }

    func testControlCharactersAreRefusedInEveryField() throws {
        try write("nul.csv", "id,answer\nq1,x\u{0}y\nq2,5\nq3,1\n")
        try assertRefused(
            "import", "nul.csv", "--name", "nul", "--dataset", "test.csv", "--invalid", "as-wrong", says: "a control character (U+0000)")
        // Without --invalid, "1\0" was read as 1.
        try write("nul1.csv", "id,answer\nq1,1\u{0}\nq2,5\nq3,1\n")
        try assertRefused("import", "nul1.csv", "--name", "nul", "--dataset", "test.csv", says: ":2 [answer]: a control character (U+0000)")
        try write(
            "esc.csv", "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,2,0.1,2.5\u{1B}[2J,0,-1,\nq2,5,0,0,0,1,3\nq3,1,1,0,0,0,\n")
        let refused = try run("import", "esc.csv", "--name", "esc", "--dataset", "test.csv", status: 1).output
        XCTAssertTrue(refused.contains("[logit_2]: a control character (U+001B) in 2.5\\u{1b}[2J"), refused)
        XCTAssertFalse(refused.contains("\u{1B}"), "the escape is shown, not sent to the terminal")
        try write("exam-nul.csv", exam.replacingOccurrences(of: "지문 둘", with: "지문\u{0}둘"))
        try assertRefused(
            "import", "run.csv", "--name", "x", "--dataset", "exam-nul.csv", says: "[paragraph]: a control character (U+0000)")
    }

    func testNotesHaveOneLimitAtEveryEntry() throws {
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        let long = String(repeating: "가", count: 10_001)
        try assertRefused("note", "run", long, says: "run@v1's note has 10001 characters (at most 10000)")
        try assertRefused("import", "other.csv", "--name", "other", "--dataset", "test.csv", "--note", long, says: "at most 10000")
        try assertRefused("score", "run", "--public", "0.5", "--note", long, says: "at most 10000")
        try assertRefused("ensemble", "--members", "run", "--name", "solo", "--note", "a\u{7}b", says: "a control character (U+0007)")
        try assertRefused("note", "run", "a\u{1B}]0;title\u{7}", says: "a control character (U+001B)")
        try run("note", "run", String(repeating: "가", count: 10_000))
        try run("note", "run", "two\nlines\tand a tab")
    }

    /// test.csv as git's autocrlf checks it out on Windows: CRLF everywhere, inside the
    /// multi-line fields too. The same dataset; a really different file says how.
    func testCRLFInsideFieldsIsTheSameDataset() throws {
        let multiline = exam.replacingOccurrences(of: "q1,\"지문, 하나\"", with: "q1,\"지문,\n하나\n둘\"")
        try write("lf.csv", multiline)
        try write("crlf.csv", multiline.replacingOccurrences(of: "\n", with: "\r\n"))
        try run("import", "run.csv", "--name", "a", "--dataset", "lf.csv")
        try run("import", "other.csv", "--name", "b", "--dataset", "crlf.csv")
        try run("ensemble", "--members", "a,b", "--name", "both")
        try write("edited.csv", multiline.replacingOccurrences(of: "지문 셋", with: "지문 넷"))
        try run("import", "other.csv", "--name", "c", "--dataset", "edited.csv")
        let refused = try run("ensemble", "--members", "a,c", "--name", "mixed", status: 1).output
        XCTAssertTrue(refused.contains("the same ids and choice counts, other text: paragraph on 1 item (first q3)"), refused)
    }
}
