import Foundation
import GRDB
import XCTest

@testable import Exam
@testable import Store

final class StoreTests: XCTestCase {
    var root: URL!
    var store: Store!
    var dataset: DatasetRecord!

    let examCSV = """
        id,paragraph,problems,question_plus
        q1,지문,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd'], 'answer': 2}",
        q2,지문,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd', 'e'], 'answer': 5}",
        q3,지문,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd'], 'answer': 1}",

        """

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-store-\(UUID())")
        store = try Store(workspace: Workspace(root: root), create: true)
        let examFile = root.appendingPathComponent("data/test.csv")
        try examCSV.write(to: examFile, atomically: true, encoding: .utf8)
        dataset = try store.dataset(file: examFile.path)
    }

    override func tearDownWithError() throws {
        store = nil
        try? FileManager.default.removeItem(at: root)
    }

    func table(_ answers: [Int], logits: Bool = true) -> PredictionTable {
        PredictionTable(
            choiceValues: logits ? .logits : nil,
            rows: zip(["q1", "q2", "q3"], answers).map { id, answer in
                PredictionRow(
                    id: id, answer: answer,
                    values: logits
                        ? (1...5).map { $0 == answer ? 2.0 : ($0 <= (id == "q2" ? 5 : 4) ? 0.5 : nil) } : Array(repeating: nil, count: 5))
            })
    }

    let lineage = Lineage(commandLine: "test", toolVersion: "0")

    func add(_ name: String, _ table: PredictionTable) throws -> Store.AddOutcome {
        try store.addPredictionSet(name: name, dataset: dataset, table: table, origin: .imported, lineage: lineage)
    }

    func created(_ outcome: Store.AddOutcome) throws -> PredictionSetRecord {
        guard case .created(let set) = outcome else { throw StoreError.invalid("expected a new version, got \(outcome)") }
        return set
    }

    func testDatasetIsRegisteredOnceByHash() throws {
        XCTAssertEqual(dataset.itemIds, ["q1", "q2", "q3"])
        XCTAssertEqual(dataset.choiceCounts, [4, 5, 4])
        let copy = root.appendingPathComponent("copy.csv")
        try examCSV.write(to: copy, atomically: true, encoding: .utf8)
        XCTAssertEqual(try store.dataset(file: copy.path).id, dataset.id)
    }

    func testVersionsAndIdenticalContent() throws {
        let v1 = try created(try add("run", table([2, 5, 1])))
        XCTAssertEqual(v1.ref.description, "run@v1")
        guard case .identical(let same) = try add("run", table([2, 5, 1])) else { return XCTFail("identical content made a version") }
        XCTAssertEqual(same.id, v1.id)
        let v2 = try created(try add("run", table([1, 5, 1])))
        XCTAssertEqual(v2.version, 2)
        XCTAssertEqual(try store.predictionSet("run").id, v2.id, "NAME means the latest version")
        XCTAssertEqual(try store.predictionSet("run@v1").id, v1.id)
        XCTAssertEqual(try store.table(of: v1), table([2, 5, 1]))
    }

    func testCanonicalFileIsWrittenAndReproduced() throws {
        let set = try created(try add("run", table([2, 5, 1])))
        let file = try String(contentsOf: store.workspace.predictionFile(for: set.ref), encoding: .utf8)
        XCTAssertEqual(file, table([2, 5, 1]).canonicalCSV)
        XCTAssertEqual(try store.canonicalCSV(of: set), file)
    }

    func testTamperedRowsAreDetectedOnExport() throws {
        let set = try created(try add("run", table([2, 5, 1])))
        try store.database.write { try $0.execute(sql: "UPDATE predictionRow SET answer = 3 WHERE position = 0") }
        XCTAssertThrowsError(try store.canonicalCSV(of: set)) { XCTAssertTrue("\($0)".contains("changed outside suneung")) }
    }

    func testFailureBetweenRowsLeavesNoPartialVersion() throws {
        struct Killed: Error {}
        XCTAssertThrowsError(
            try store.addPredictionSet(
                name: "run", dataset: dataset, table: table([2, 5, 1]), origin: .imported, lineage: lineage,
                afterRow: { if $0 == 1 { throw Killed() } }))
        let counts = try store.database.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM predictionSet")!,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM predictionRow")!
            )
        }
        XCTAssertTrue(counts == (0, 0), "\(counts)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.workspace.predictionFile(for: SetRef(name: "run", version: 1)).path))
        XCTAssertEqual(try created(try add("run", table([2, 5, 1]))).version, 1)
    }

    func testScoresAreAllOrNothing() throws {
        let set = try created(try add("run", table([2, 5, 1])))
        XCTAssertThrowsError(try store.addScores(to: set, [(.public, 0.8, nil), (.private, 1.7, nil)])) { error in
            XCTAssertTrue("\(error)".contains("private score 1.7 is not an accuracy in [0, 1]"), "\(error)")
        }
        XCTAssertThrowsError(try store.addScores(to: set, [(.public, -0.1, nil)]))
        XCTAssertThrowsError(try store.addScores(to: set, [(.public, .nan, nil)]))
        XCTAssertEqual(try store.scores(of: set).count, 0)
        try store.addScores(to: set, [(.public, 0.8, "first"), (.private, 0.7, nil)])
        try store.addScores(to: set, [(.public, 0.81, "rescored")])
        XCTAssertEqual(try store.addScores(to: set, [(.public, 0.81, "again"), (.private, 0.8, nil)]).map(\.recorded), [false, true])
        XCTAssertEqual(try store.scores(of: set).count, 4, "a repeat of the latest score is not recorded")
        let summary = try XCTUnwrap(try store.summaries().first)
        XCTAssertEqual(summary.public, 0.81, "the latest public score is listed")
        XCTAssertEqual(summary.private, 0.8)
        XCTAssertNil(summary.local)
    }

    func testUnknownNamesSuggestTheNearest() throws {
        _ = try add("qwen_ep2", table([2, 5, 1]))
        XCTAssertThrowsError(try store.predictionSet("qwen_ep3")) { XCTAssertTrue("\($0)".contains("did you mean qwen_ep2?"), "\($0)") }
        XCTAssertThrowsError(try store.predictionSet("completely-different")) { XCTAssertFalse("\($0)".contains("did you mean")) }
        XCTAssertThrowsError(try store.predictionSet("qwen_ep2@v2")) {
            XCTAssertTrue("\($0)".contains("the latest is qwen_ep2@v1"), "\($0)")
        }
        XCTAssertThrowsError(try store.predictionSet("bad/name")) { XCTAssertTrue("\($0)".contains("must be letters")) }
        XCTAssertThrowsError(try store.predictionSet("run@2"))
    }

    func testOlderDatabaseMigratesWithItsData() throws {
        let path = root.appendingPathComponent("old.sqlite").path
        let oldest = Store.migrator.migrations.first!
        do {
            let queue = try DatabaseQueue(path: path)
            try Store.migrator.migrate(queue, upTo: oldest)
            try queue.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO dataset (sha256, itemIds, choiceCounts, itemCount, createdAt) VALUES ('abc', '[\"q1\"]', '[4]', 1, '2026-01-01 00:00:00.000')"
                )
            }
        }
        let workspace = Workspace(root: root.appendingPathComponent("old"))
        try FileManager.default.createDirectory(at: workspace.root, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: path, toPath: workspace.databasePath)
        let migrated = try Store(workspace: workspace)
        let applied = try migrated.database.read { try Store.migrator.appliedIdentifiers($0) }
        XCTAssertEqual(applied, Set(Store.migrator.migrations))
        XCTAssertEqual(try migrated.database.read { try DatasetRecord.fetchAll($0) }.map(\.itemIds), [["q1"]])
    }

    /// A store written before the ledger (v5): its sets, rows and scores keep working,
    /// its uploads are the public/private scores that were not simulated, and what v6
    /// and v7 keep per set is filled in from the rows.
    func testStoreBeforeTheLedgerMigrates() throws {
        let workspace = Workspace(root: root.appendingPathComponent("v5"))
        try FileManager.default.createDirectory(at: workspace.root, withIntermediateDirectories: true)
        let examFile = root.appendingPathComponent("data/test.csv").path
        let old = table([2, 5, 1])
        do {
            let queue = try DatabaseQueue(path: workspace.databasePath)
            try Store.migrator.migrate(queue, upTo: "v5 pipelines")
            try queue.write { db in
                let bytes = try readFile(examFile)
                try db.execute(
                    sql:
                        "INSERT INTO dataset (id, sha256, itemIds, choiceCounts, itemCount, path, createdAt) VALUES (1, ?, '[\"q1\",\"q2\",\"q3\"]', '[4,5,4]', 3, ?, '2026-11-20 10:00:00.000')",
                    arguments: [sha256Hex(bytes), examFile])
                try db.execute(
                    sql:
                        "INSERT INTO predictionSet (id, name, version, datasetId, origin, choiceValues, lineage, csvSha256, createdAt) VALUES (1, 'old', 1, 1, 'imported', 'logits', ?, ?, '2026-11-20 10:01:00.000')",
                    arguments: [String(decoding: try JSONEncoder().encode(lineage), as: UTF8.self), sha256Hex(old.canonicalCSV.utf8)])
                for (position, row) in old.rows.enumerated() {
                    try db.execute(
                        sql:
                            "INSERT INTO predictionRow (setId, position, itemId, answer, value1, value2, value3, value4, value5) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                        arguments: StatementArguments([position, row.id, row.answer] as [any DatabaseValueConvertible])
                            + StatementArguments(row.values))
                }
                try db.execute(
                    sql:
                        "INSERT INTO score (setId, kind, value, note, createdAt) VALUES (1, 'public', 0.8, 'upload', '2026-11-20 11:00:00.000'), (1, 'private', 0.7, 'upload', '2026-11-20 11:00:00.000'), (1, 'public', 0.9, 'simulated leaderboard (2 public, 1 private items)', '2026-11-20 12:00:00.000')"
                )
            }
        }
        let migrated = try Store(workspace: workspace)
        let set = try migrated.predictionSet("old")
        XCTAssertEqual(try migrated.table(of: set), old)
        XCTAssertEqual(set.answersSha256, sha256Hex(old.submissionCSV.utf8))
        XCTAssertEqual(set.csvBytes, old.canonicalCSV.utf8.count)
        XCTAssertEqual(set.itemCount, 3)
        XCTAssertEqual(set.answerCounts?.byChoices, ["4": [1, 1, 0, 0], "5": [0, 0, 0, 0, 1]])
        let uploads = try migrated.uploads()
        XCTAssertEqual(uploads.count, 1, "the simulated score is not an upload")
        XCTAssertEqual(uploads.first?.public, 0.8)
        XCTAssertEqual(uploads.first?.private, 0.7)
        XCTAssertEqual(try migrated.latestScore(of: set, .public), 0.9)
        XCTAssertNotNil(try migrated.dataset(id: 1).contentSha256, "the exam file is still there: its content digest is filled in")
        XCTAssertEqual(try migrated.dataset(file: examFile).id, 1)
        // The set had no file in this workspace's predictions/: fsck writes it.
        XCTAssertEqual(try migrated.fsck(repair: true).rebuilt, ["predictions/old@v1.csv"])
        XCTAssertTrue(try migrated.fsck(repair: false).clean)
    }

    func testNewerDatabaseIsRefusedAndLeftAlone() throws {
        try store.database.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99 from the future')") }
        XCTAssertThrowsError(try Store(workspace: store.workspace)) { error in
            XCTAssertTrue("\(error)".contains("newer suneung"), "\(error)")
        }
        XCTAssertEqual(
            try store.database.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations") }.last, "v99 from the future")
    }

    func testMissingStoreSaysHowToMakeOne() {
        XCTAssertThrowsError(try Store(workspace: Workspace(root: root.appendingPathComponent("nowhere")))) { error in
            XCTAssertTrue("\(error)".contains("suneung init"), "\(error)")
        }
    }

    func testWorkspaceIsFoundFromASubfolder() throws {
        let sub = root.appendingPathComponent("predictions")
        XCTAssertEqual(Workspace.locate(explicit: nil, from: sub).root.path, root.standardizedFileURL.path)
    }
}
