import Foundation
import GRDB
import TestSupport
import XCTest

/// `suneung pipeline` on SmolLM2 and the bundled sample data: the whole job, again
/// (nothing redone), killed during training (resumed), and refused on bad config.
final class PipelineCommandTests: WorkspaceTestCase {
    static let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("data/sample").path

    /// A short run; `members: false` leaves out the zero-shot set and the imports (the
    /// kill test needs only the training and its checkpoints).
    func config(model: String, name: String, members: Bool = true) -> String {
        """
        name: \(name)
        model: \(model)
        test: \(Self.sample)/test.csv
        gold: \(Self.sample)/test_gold.csv
        zero_shot: \(members)
        \(members ? "imports: \(Self.sample)/predictions" : "")
        max_tokens: 600
        train:
          train: \(Self.sample)/train.csv
          max_steps: 6
          save_steps: 3
          rank: 2
          alpha: 4
          learning_rate: 1.0e-3
          gradient_accumulation: 1
          max_length: 512
          eval_limit: 2
        top: 3
        methods: [vote, average]

        """
    }

    func count(_ sql: String) throws -> Int {
        let queue = try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path)
        return try queue.read { try Int.fetchOne($0, sql: sql)! }
    }

    func testPipelineRunsOnceResumesAfterAKillAndRedoesNothing() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        try write("pipe.yaml", config(model: smol, name: "pipe"))
        let first = try run("pipeline", "--config", "pipe.yaml").output
        for expected in [
            "Stored pipe-zero-shot@v1", "saved pipe-lora/step-6", "Stored pipe-lora-step-3@v1", "Stored pipe-lora-step-6@v1",
            "Submission: submissions/pipe-top3-vote.csv", "Report:     reports/pipe.html"
        ] {
            XCTAssertTrue(first.contains(expected), "'\(expected)' missing from:\n\(first)")
        }
        XCTAssertTrue(first.split(separator: "\n").contains { $0.hasPrefix("pipe-top3-vote@v1 ") && $0.contains(" ensemble ") }, first)
        var page = try String(contentsOf: root.appendingPathComponent("reports/pipe.html"), encoding: .utf8)
        XCTAssertTrue(
            page.contains("<svg") && page.contains("pipe-top3-average@v1") && !page.contains("<script"),
            "the report is not a self-contained page")
        for figure in ["loss", "scores", "agreement", "answers"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("reports/pipe-\(figure).svg").path), figure)
        }
        let sets = try count("SELECT COUNT(*) FROM predictionSet"), scores = try count("SELECT COUNT(*) FROM score")

        // Again: every stage finds its work done.
        let second = try run("pipeline", "--config", "pipe.yaml").output
        XCTAssertFalse(second.contains("items/s") || second.contains("step 1 ("), "work was redone:\n\(second)")
        XCTAssertTrue(second.contains("Already scored: pipe-lora-step-6@v1"), second)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM predictionSet"), sets)
        XCTAssertEqual(try count("SELECT COUNT(*) FROM score"), scores)
        // The report rebuilds from the store alone.
        page = try String(contentsOf: root.appendingPathComponent("reports/pipe.html"), encoding: .utf8)
        try FileManager.default.removeItem(at: root.appendingPathComponent("reports"))
        XCTAssertTrue(try run("report", "pipe").output.contains("reports/pipe.html"))
        XCTAssertEqual(try String(contentsOf: root.appendingPathComponent("reports/pipe.html"), encoding: .utf8), page)

        // Killed during training, the next run resumes it and says so.
        try write("killed.yaml", config(model: smol, name: "killed", members: false))
        try killWhen(["pipeline", "--config", "killed.yaml"]) {
            try count("SELECT COUNT(*) FROM checkpoint JOIN trainingRun r ON r.id = runId WHERE r.name = 'killed-lora'") >= 1
        }
        XCTAssertEqual(
            try count("SELECT COUNT(*) FROM checkpoint JOIN trainingRun r ON r.id = runId WHERE r.name = 'killed-lora'"), 1,
            "killed too late: nothing was tested")
        let resumed = try run("pipeline", "--config", "killed.yaml").output
        XCTAssertTrue(resumed.contains("Resumed from an interrupted run: training killed-lora: from step 3 of 6"), resumed)
        XCTAssertEqual(
            try Data(contentsOf: root.appendingPathComponent("checkpoints/killed-lora/step-6/adapter_model.safetensors")),
            try Data(contentsOf: root.appendingPathComponent("checkpoints/pipe-lora/step-6/adapter_model.safetensors")))
    }

    func testBadPipelineConfigIsRefused() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        try write("typo.yaml", config(model: smol, name: "typo") + "modle: x\n")
        try assertRefused("pipeline", "--config", "typo.yaml", says: "unknown key 'modle' (did you mean 'model'?)")
        try write(
            "other-gold.yaml", config(model: smol, name: "gold").replacingOccurrences(of: "\(Self.sample)/test_gold.csv", with: "test.csv"))
        try assertRefused("pipeline", "--config", "other-gold.yaml", says: "labels none of the items")
        try write("bad-train.yaml", config(model: smol, name: "badtrain").replacingOccurrences(of: "rank: 2", with: "rank: 0"))
        try assertRefused("pipeline", "--config", "bad-train.yaml", says: "rank must be at least 1")
    }
}
