import Engine
import Foundation
import XCTest

@testable import Training

/// The settings table: every key reads from text, survives the stored JSON, and refuses
/// a bad value by naming itself; runs stored before a key existed still decode.
final class TrainingConfigTests: XCTestCase {
    let required: [String: ConfigValue] = ["model": .scalar("m.gguf"), "train": .scalar("t.csv"), "name": .scalar("r")]

    /// A value of each setting other than its default, as a config file would give it.
    let changed: [String: ConfigValue] = [
        "validation": .scalar("v.csv"), "validation_ratio": .scalar("0.2"), "epochs": .scalar("2.5"), "max_steps": .scalar("7"),
        "rank": .scalar("8"), "alpha": .scalar("16"), "dropout": .scalar("0.1"), "rslora": .scalar("yes"),
        "target_modules": .list(["q_proj", "v"]),
        "learning_rate": .scalar("2e-4"), "schedule": .scalar("cosine"), "warmup_steps": .scalar("3"), "warmup_ratio": .scalar("0.5"),
        "weight_decay": .scalar("0.01"), "beta1": .scalar("0.8"), "beta2": .scalar("0.99"), "epsilon": .scalar("1e-6"),
        "batch_size": .scalar("2"),
        "gradient_accumulation": .scalar("3"), "max_grad_norm": .scalar("0.5"), "max_length": .scalar("512"), "loss": .scalar("choices"),
        "end_of_turn": .scalar("true"), "seed": .scalar("7"), "save_steps": .scalar("10"), "save_each_epoch": .scalar("false"),
        "eval_steps": .scalar("5"), "eval_each_epoch": .scalar("off"), "eval_limit": .scalar("9"),
        "gradient_checkpointing": .scalar("true"),
        "precision": .scalar("q8"), "augment": .scalar("permute_choices"), "balance": .scalar("positions"), "template": .scalar("chatml")
    ]

    func testEverySettingReadsAndSurvivesTheStoredJSON() throws {
        XCTAssertEqual(Set(TrainingConfig.keys), Set(changed.keys).union(required.keys), "the test covers every setting")
        let defaults = try TrainingConfig(values: required, source: "test")
        let config = try TrainingConfig(values: required.merging(changed) { $1 }, source: "test")
        let encoded = try JSONEncoder().encode(config)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfig.self, from: encoded), config)
        let object = try JSONSerialization.jsonObject(with: encoded) as! [String: Any]
        XCTAssertEqual(Set(object.keys), Set(TrainingConfig.keys), "the stored JSON is keyed by the settings' keys")
        for key in changed.keys {
            // Each key alone moves the config off its defaults: its value was read.
            XCTAssertNotEqual(try TrainingConfig(values: required.merging([key: changed[key]!]) { $1 }, source: "test"), defaults, key)
        }
        XCTAssertEqual(config.precision, .q8)
        XCTAssertEqual(
            try TrainingConfig(values: required.merging(["precision": .scalar("auto")]) { $1 }, source: "test").precision, .f32,
            "auto trains in f32")
        XCTAssertEqual(config.modules, [.q, .v])
        XCTAssertNil(try TrainingConfig(values: required.merging(["max_steps": .scalar("none")]) { $1 }, source: "test").maxSteps)
    }

    func testBadValuesNameTheirKey() throws {
        let cases: [(String, ConfigValue, String)] = [
            ("rank", .scalar("eight"), "test: 'rank' must be an integer, not 'eight'"),
            ("precision", .scalar("bf8"), "'precision' must be one of auto, q8, q8x2, f32, not 'bf8'"),
            ("rslora", .scalar("maybe"), "'rslora' must be true or false"),
            ("alpha", .list(["1", "2"]), "'alpha' must be a single value, not a list"),
            ("max_steps", .scalar("x"), "'max_steps' must be an integer or none"),
            ("learning_rat", .scalar("1"), "unknown key 'learning_rat' (did you mean 'learning_rate'?)")
        ]
        for (key, value, message) in cases {
            XCTAssertThrowsError(try TrainingConfig(values: required.merging([key: value]) { $1 }, source: "test")) { error in
                XCTAssertTrue("\(error)".contains(message), "\(key): \(error)")
            }
        }
    }

    /// A run stored before the precision and augment keys existed decodes with their
    /// defaults; as a stored run's settings, its precision is float32, as it ran.
    func testOlderStoredRunsDecode() throws {
        let old =
            #"{"alpha":32,"batch_size":1,"beta1":0.9,"beta2":0.999,"dropout":0.05,"end_of_turn":false,"epochs":1,"epsilon":1e-08,"eval_each_epoch":true,"eval_limit":0,"eval_steps":0,"gradient_accumulation":4,"gradient_checkpointing":"auto","learning_rate":0.0001,"loss":"full","max_grad_norm":1,"max_length":2048,"model":"m.gguf","name":"r","rank":16,"rslora":false,"save_each_epoch":true,"save_steps":0,"schedule":"linear","seed":42,"target_modules":["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"],"train":"t.csv","validation_ratio":0.1,"warmup_ratio":0,"weight_decay":0}"#
        let config = try JSONDecoder().decode(TrainingConfig.self, from: Data(old.utf8))
        XCTAssertEqual(config, try TrainingConfig(values: required, source: "test"))
        // As a stored run's settings: it trained in float32.
        var stored = config
        stored.precision = .f32
        XCTAssertEqual(try TrainingConfig(stored: old), stored)
        let new = String(
            decoding: try JSONEncoder().encode(
                try TrainingConfig(values: required.merging(["precision": .scalar("q8")]) { $1 }, source: "test")), as: UTF8.self)
        XCTAssertEqual(try TrainingConfig(stored: new).precision, .q8)
    }
}
