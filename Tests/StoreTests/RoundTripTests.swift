import Foundation
import GRDB
import XCTest

@testable import Exam
@testable import Store

/// Every value a prediction file can hold comes back from the store as written: the
/// canonical CSV of the rows read back has the sha256 recorded at import. And a bundle
/// cannot carry more history than a team makes.
final class RoundTripTests: XCTestCase {
    var root: URL!
    var store: Store!
    var dataset: DatasetRecord!
    let ids = (1...40).map { "item\($0)" }

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-roundtrip-\(UUID())")
        store = try Store(workspace: Workspace(root: root), create: true)
        var exam = "id,paragraph,problems\n"
        for (index, id) in ids.enumerated() {
            let choices = index % 2 == 0 ? "['a', 'b', 'c', 'd', 'e']" : "['a', 'b', 'c', 'd']"
            exam += "\(id),p,\"{'question': 'q', 'choices': \(choices)}\"\n"
        }
        let examFile = root.appendingPathComponent("data/test.csv")
        try exam.write(to: examFile, atomically: true, encoding: .utf8)
        dataset = try store.dataset(file: examFile.path)
    }

    override func tearDownWithError() throws {
        store = nil
        try? FileManager.default.removeItem(at: root)
    }

    /// A value as a team's script may write it: edge doubles in several spellings,
    /// random bit patterns in Python's repr and in %.17g.
    func randomValueText(using generator: inout some RandomNumberGenerator) -> String {
        let edges = [
            "-0.0", "-0", "0", "+0.0", "+1", "1e-320", "-1e-320", "5e-324", "4.9406564584124654e-324", "2.2250738585072014e-308",
            "2.225073858507201e-308", "1.7976931348623157e308", "-1.7976931348623157e+308", "9007199254740993", "9.223372036854775807e18",
            "-9223372036854775808", "1E5", "0.1", "0.30000000000000004", "1e22", "123456789012345678901234567890"
        ]
        switch Int.random(in: 0..<3, using: &generator) {
        case 0: return edges.randomElement(using: &generator)!
        case 1:
            var x: Double
            repeat { x = Double(bitPattern: UInt64.random(in: .min ... .max, using: &generator)) } while !x.isFinite
            return "\(x)"
        default:
            var x: Double
            repeat { x = Double(bitPattern: UInt64.random(in: .min ... .max, using: &generator)) } while !x.isFinite
            return String(format: "%.17g", x)
        }
    }

    func testRandomFilesRoundTripThroughTheStore() throws {
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<60 {
            let logits = attempt % 3 != 0
            var lines = [logits ? "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5" : "id,answer,prob_1,prob_2,prob_3,prob_4,prob_5"]
            for (index, id) in ids.enumerated() {
                let choices = index % 2 == 0 ? 5 : 4
                var values = (0..<choices).map { _ in randomValueText(using: &generator) }
                // Probabilities are non-negative with a positive sum.
                if !logits {
                    values = values.map { $0.hasPrefix("-") ? String($0.dropFirst()) : $0 }
                    values[0] = "1"
                }
                lines.append(
                    ([id, String(Int.random(in: 1...choices, using: &generator))] + values + (choices == 4 ? [""] : [])).joined(
                        separator: ","))
            }
            let text = lines.joined(separator: "\n") + "\n"
            let table = try PredictionTable.read(bytes: Array(text.utf8), file: "random\(attempt).csv", dataset: dataset.shape).table
            let outcome = try store.addPredictionSet(
                name: "random\(attempt)", dataset: dataset, table: table, origin: .imported,
                lineage: Lineage(commandLine: "test", toolVersion: "0"))
            guard case .created(let set) = outcome else { return XCTFail("not created: \(outcome)") }
            // checkedTable throws where the rows no longer give the recorded sha256.
            let back = try store.checkedTable(of: set)
            XCTAssertEqual(back, table, "attempt \(attempt):\n\(text)")
            XCTAssertEqual(sha256Hex(back.canonicalCSV.utf8), set.csvSha256)
            // The canonical CSV read again is the same table (what a pull does).
            let reread = try PredictionTable.read(bytes: Array(back.canonicalCSV.utf8), file: "canonical", dataset: dataset.shape).table
            XCTAssertEqual(reread.canonicalCSV, back.canonicalCSV)
            XCTAssertEqual(store.fileProblem(set), nil)
        }
        XCTAssertTrue(try store.fsck(repair: false).clean)
    }

    func testSignedZeroIsWrittenUnsigned() throws {
        let text =
            "id,answer,logits\n"
            + ids.enumerated().map { index, id in "\(id),1,\"\(index % 2 == 0 ? "[-0.0, 0, -0, 1e-320, -5e-324]" : "[-0.0, 1, 2, 3]")\"" }
            .joined(separator: "\n")
        let table = try PredictionTable.read(
            bytes: Array(text.utf8), file: "zeros.csv", dataset: dataset.shape, options: PredictionFileOptions()
        ).table
        XCTAssertTrue(table.canonicalCSV.contains("item1,1,0.0,0.0,0.0,1e-320,-5e-324\n"), table.canonicalCSV)
        XCTAssertFalse(table.canonicalCSV.contains("-0.0"))
    }

    func bundle(uploads: Int, scoresPerUpload: Int) throws -> SetBundle {
        let text = "id,answer\n" + ids.map { "\($0),1" }.joined(separator: "\n") + "\n"
        let table = try PredictionTable.read(bytes: Array(text.utf8), file: "ones.csv", dataset: dataset.shape).table
        let now = Date()
        return SetBundle(
            name: "flood", version: 1, origin: .imported, datasetContentSha256: dataset.contentSha256!,
            csvSha256: sha256Hex(table.canonicalCSV.utf8),
            csv: table.canonicalCSV, rows: ids.count, invalidAnswers: 0, lineage: Lineage(commandLine: "test", toolVersion: "0"),
            createdAt: now,
            author: "red", note: nil, hidden: false, tags: [],
            uploads: (0..<uploads).map {
                SetBundle.Upload(key: Int64($0), note: nil, author: "red", createdAt: now.addingTimeInterval(-Double($0)), retractedAt: nil)
            },
            scores: (0..<uploads * scoresPerUpload).map {
                SetBundle.Score(
                    kind: $0 % 2 == 0 ? .public : .private, value: 0.5, note: nil, author: "red",
                    createdAt: now.addingTimeInterval(-Double($0 / scoresPerUpload)), retractedAt: nil, upload: Int64($0 / scoresPerUpload))
            },
            submission: nil)
    }

    /// The red team's bundle: 100,000 uploads and 200,000 scores, refused before any row
    /// is written; a long score note in a bundle likewise.
    func testABundleCannotCarryMoreHistoryThanATeamMakes() throws {
        let flood = try bundle(uploads: 100_000, scoresPerUpload: 2)
        XCTAssertThrowsError(try store.receive(flood)) { error in
            XCTAssertTrue("\(error)".contains("100000 uploads and 200000 scores (at most 1000 and 2000 a set)"), "\(error)")
        }
        var noted = try bundle(uploads: 1, scoresPerUpload: 1)
        noted.scores[0].note = String(repeating: "x", count: 30_000_000)
        XCTAssertThrowsError(try store.receive(noted)) { error in
            XCTAssertTrue("\(error)".contains("a score's note has 30000000 characters"), "\(error)")
        }
        noted.scores[0].note = "ok"
        noted.uploads[0].note = "a\u{0}b"
        XCTAssertThrowsError(try store.receive(noted)) { error in
            XCTAssertTrue("\(error)".contains("an upload's note has a control character (U+0000)"), "\(error)")
        }
        XCTAssertEqual(try store.summaries().count, 0)
        let fine = try bundle(uploads: 1_000, scoresPerUpload: 2)
        XCTAssertEqual(try store.receive(fine).scoresAdded, 2_000)
    }

    /// A link planted under the name of a writer's temporary file: the write replaces
    /// the link's name, and the file it points at keeps its bytes.
    func testAWriteFollowsNoPlantedLink() throws {
        let victim = root.appendingPathComponent("victim.txt")
        try "keep".write(to: victim, atomically: true, encoding: .utf8)
        let target = root.appendingPathComponent("predictions/x@v1.csv")
        try FileManager.default.createSymbolicLink(at: temporaryFile(for: target, pid: getpid()), withDestinationURL: victim)
        try writeAtomically("id,answer\n", to: target)
        XCTAssertEqual(try String(contentsOf: victim, encoding: .utf8), "keep")
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "id,answer\n")
    }

    /// The upload log over 20,000 uploads answers at once (an index on score.uploadId);
    /// the time is measured in the benchmark, this checks the query's plan.
    func testTheUploadLogUsesTheIndex() throws {
        let plan = try store.database.read { db in
            try Row.fetchAll(
                db, sql: "EXPLAIN QUERY PLAN SELECT value FROM score WHERE uploadId = 1 AND kind = 'public' ORDER BY id DESC LIMIT 1"
            ).map { $0["detail"] as String? ?? "" }
        }
        XCTAssertTrue(plan.joined().contains("scoreByUpload"), "\(plan)")
    }
}
