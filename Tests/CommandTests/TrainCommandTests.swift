import Foundation
import GRDB
import TestSupport
import XCTest

/// `suneung train` on SmolLM2 and the bundled sample train set, as a user runs it.
final class TrainCommandTests: WorkspaceTestCase {
    static let sampleTrain = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("data/sample/train.csv").path

    /// A short run: rank 2, dropout (its masks must repeat on resume), a checkpoint
    /// every 2 of 10 steps.
    func config(model: String, name: String) -> String {
        """
        # a short run for the tests
        model: \(model)
        train: \(Self.sampleTrain)
        name: \(name)
        max_steps: 10
        save_steps: 2
        rank: 2
        alpha: 4
        dropout: 0.1
        learning_rate: 1e-3
        warmup_steps: 2
        gradient_accumulation: 1
        max_length: 512
        eval_limit: 2
        target_modules: [q, v, down_proj]

        """
    }

    func checkpointCount(_ name: String) throws -> Int {
        let queue = try DatabaseQueue(path: root.appendingPathComponent("suneung.sqlite").path)
        return try queue.read {
            try Int.fetchOne(
                $0, sql: "SELECT COUNT(*) FROM checkpoint JOIN trainingRun r ON r.id = runId WHERE r.name = ?", arguments: [name])!
        }
    }

    /// Killed with SIGKILL after its first checkpoint, the run continues with --resume
    /// and ends with the weights and optimiser state, byte for byte, of an uninterrupted
    /// run; its checkpoints then score with predict --checkpoint.
    func testKilledTrainingResumesToTheSameWeights() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        try write("clean.yaml", config(model: smol, name: "clean"))
        try write("killed.yaml", config(model: smol, name: "killed"))
        let clean = try run("train", "--config", "clean.yaml").output
        XCTAssertTrue(clean.contains("saved clean/step-10"), clean)
        XCTAssertTrue(clean.contains("step 0: validation loss"), "no evaluation before training:\n\(clean)")

        try killWhen(["train", "--config", "killed.yaml"]) { try checkpointCount("killed") >= 1 }
        let saved = try checkpointCount("killed")
        XCTAssertGreaterThanOrEqual(saved, 1)
        XCTAssertLessThan(saved, 5, "the run finished before the kill: nothing was tested")

        let resumed = try run("train", "--resume", "killed").output
        XCTAssertTrue(resumed.contains("Resuming killed from step \(2 * saved) of 10"), resumed)
        for file in ["adapter_model.safetensors", "optimizer.safetensors", "adapter_config.json"] {
            let a = try Data(contentsOf: root.appendingPathComponent("checkpoints/clean/step-10/\(file)"))
            let b = try Data(contentsOf: root.appendingPathComponent("checkpoints/killed/step-10/\(file)"))
            if file == "adapter_config.json" {
                XCTAssertEqual(String(decoding: a, as: UTF8.self), String(decoding: b, as: UTF8.self))
            } else {
                XCTAssertEqual(a, b, "\(file) of the resumed run differs from the uninterrupted run's")
            }
        }
        XCTAssertEqual(try checkpointCount("killed"), 5)
        XCTAssertTrue(try run("train", "--resume", "killed").output.contains("is complete"))

        let list = try run("list", "--checkpoints").output
        XCTAssertTrue(list.contains("clean/step-10") && list.contains("killed/step-4"), list)
        let predicted = try run("predict", "--checkpoint", "clean/step-10", "--dataset", "test.csv", "--name", "trained").output
        XCTAssertTrue(predicted.contains("Stored trained@v1"), predicted)
        XCTAssertTrue(try run("show", "trained").output.contains("\"checkpoint\" : \"clean/step-10\""))
        let shown = try run("show", "clean/step-10").output
        for expected in [
            "clean/step-10  (epoch", "folder          checkpoints/clean/step-10", "\"learning_rate\" : 0.001",
            "Prediction sets from it: trained@v1"
        ] {
            XCTAssertTrue(shown.contains(expected), "'\(expected)' missing from:\n\(shown)")
        }
        // The same adapter through --adapter gives the same predictions.
        try run("predict", "--model", smol, "--adapter", "checkpoints/clean/step-10", "--dataset", "test.csv", "--name", "by-folder")
        XCTAssertEqual(
            try Data(contentsOf: root.appendingPathComponent("predictions/trained@v1.csv")),
            try Data(contentsOf: root.appendingPathComponent("predictions/by-folder@v1.csv")))
        // Exported as llama.cpp's adapter GGUF and read back by --adapter: the same predictions.
        let exported = try run("export-adapter", "clean/step-10", "--format", "gguf", "--out", "clean.lora.gguf").output
        XCTAssertTrue(exported.contains("Wrote clean/step-10's adapter as gguf"), exported)
        try run("predict", "--model", smol, "--adapter", "clean.lora.gguf", "--dataset", "test.csv", "--name", "by-gguf")
        XCTAssertEqual(
            try Data(contentsOf: root.appendingPathComponent("predictions/trained@v1.csv")),
            try Data(contentsOf: root.appendingPathComponent("predictions/by-gguf@v1.csv")))
        try assertRefused("export-adapter", "clean/step-10", "--out", "clean.lora.gguf", says: "exists; choose another --out")
        try run("export-adapter", "clean", "--format", "peft", "--out", "clean-peft")
        for file in ["adapter_config.json", "adapter_model.safetensors"] {
            XCTAssertEqual(
                try Data(contentsOf: root.appendingPathComponent("clean-peft/\(file)")),
                try Data(contentsOf: root.appendingPathComponent("checkpoints/clean/step-10/\(file)")), file)
        }
        // A checkpoint changed on disk is refused, as is a resume on another base model.
        let weights = root.appendingPathComponent("checkpoints/clean/step-10/adapter_model.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: weights)
        try assertRefused(
            "predict", "--checkpoint", "clean/step-10", "--dataset", "test.csv", "--name", "x", says: "has changed since it was saved")
        try assertRefused("export-adapter", "clean/step-10", "--out", "changed.gguf", says: "has changed since clean/step-10 was saved")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("changed.gguf").path))
        if let gemma = try? DefaultModels.path(DefaultModels.gemma) {
            try assertRefused("train", "--resume", "clean", "--model", gemma, says: "is not the base model of clean")
        }
    }

    func testBadTrainingInputIsRefused() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        let base = config(model: smol, name: "bad")
        try write("typo.yaml", base + "learning_rat: 1e-4\n")
        try assertRefused("train", "--config", "typo.yaml", says: "unknown key 'learning_rat' (did you mean 'learning_rate'?)")
        try write("ok.yaml", base)
        try assertRefused("train", "--config", "ok.yaml", "--rank", "0", says: "rank must be at least 1")
        try assertRefused("train", "--config", "ok.yaml", "--target-modules", "q,w_proj", says: "target module 'w_proj'")
        try assertRefused("train", "--config", "ok.yaml", "--max-length", "100", says: "even without its passage")
        try write("unlabelled.csv", "id,paragraph,problems\nu1,p,\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd']}\"\n")
        try assertRefused("train", "--config", "ok.yaml", "--train", "unlabelled.csv", says: "item u1 has no answer")
        try write("nested.yaml", base + "optimizer:\n  lr: 1\n")
        try assertRefused("train", "--config", "nested.yaml", says: "'optimizer' is a nested mapping")
        // The settings as flags: --key value and --key=value, checked before anything runs.
        try assertRefused(
            "train", "--config", "ok.yaml", "--lerning-rate", "1", status: 64,
            says: "unknown option '--lerning-rate' (did you mean '--learning-rate'?)")
        try assertRefused("train", "--config", "ok.yaml", "--rank=", says: "'rank' must be an integer, not ''")
        try assertRefused("train", "--config", "ok.yaml", "--rank", "--epochs", "2", status: 64, says: "--rank needs a value")
        try assertRefused("train", "--config", "ok.yaml", "--rank=8", "--rank", "9", status: 64, says: "--rank is given twice")
        try assertRefused(
            "train", "--config", "ok.yaml", "--precision=bf16", says: "'precision' must be one of auto, q8, q8x2, f32, not 'bf16'")
        try assertRefused("train", "--config", "ok.yaml", "--name", "../../etc", says: "run name '../../etc' must be letters")
        try assertRefused("train", "--resume", "nothing", says: "no training run named nothing")
        try assertRefused(
            "predict", "--checkpoint", "nothing/step-2", "--dataset", "test.csv", "--name", "x", says: "no training run named nothing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("checkpoints/bad").path))
    }
}
