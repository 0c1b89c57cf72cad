import Engine
import Exam
import Foundation
import TestSupport
import XCTest

@testable import Training

/// The trainer's examples, split and data order on SmolLM2 and the sample train set.
final class TrainerTests: XCTestCase {
    static let sampleTrain = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("data/sample/train.csv").path

    func testExamplesSplitAndOrder() throws {
        let path = try DefaultModels.path(DefaultModels.smolLM)
        let model = try Model(path: path)
        let items = try ExamSet.load(path: Self.sampleTrain).items
        var config = TrainingConfig(model: path, train: Self.sampleTrain, name: "t")
        config.maxLength = 512
        config.endOfTurn = true
        config.gradientAccumulation = 2
        config.epochs = 2
        let trainer = try Trainer(config: config, model: model, trainItems: Array(items.prefix(5)), validationItems: [])
        // The answer token after the prompt, then the end-of-turn token after the answer.
        let example = trainer.examples[0], answer = trainer.answerTokens[items[0].answer! - 1]
        XCTAssertEqual(example.targets.map(\.token), [answer, try XCTUnwrap(trainer.tokenizer.encode("<|im_end|>").first)])
        XCTAssertEqual(example.targets.map(\.position), [example.tokens.count - 2, example.tokens.count - 1])
        XCTAssertEqual(example.tokens.last, answer)
        XCTAssertLessThanOrEqual(example.tokens.count, 512)
        XCTAssertEqual(example.choices, Array(trainer.answerTokens.prefix(items[0].choices.count)))
        // 5 items, 2 per step: 3 steps an epoch (the last with one), 6 in all; each epoch
        // sees every item once, in an order of its own that the seed repeats.
        XCTAssertEqual(trainer.stepsPerEpoch, 3)
        XCTAssertEqual(trainer.totalSteps, 6)
        let first = (0..<3).flatMap { trainer.batch(step: $0) }, second = (3..<6).flatMap { trainer.batch(step: $0) }
        XCTAssertEqual(first.sorted(), Array(0..<5))
        XCTAssertEqual(second.sorted(), Array(0..<5))
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(first, (0..<3).flatMap { trainer.batch(step: $0) })

        // The validation split is by id: the same items are held out in any file order.
        let (train, held) = Trainer.split(items, validationRatio: 0.2)
        XCTAssertEqual(train.count + held.count, items.count)
        XCTAssertTrue((4...20).contains(held.count), "\(held.count) of \(items.count) held out for a ratio of 0.2")
        XCTAssertEqual(Set(Trainer.split(items.reversed(), validationRatio: 0.2).validation.map(\.id)), Set(held.map(\.id)))
    }
}
