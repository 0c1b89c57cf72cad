import Ensemble
import Exam
import TestSupport
import XCTest

@testable import Training

/// Training against position bias (issue 16) on the real train items.
final class AugmentTests: XCTestCase {
    func realTrainItems() throws -> [ExamItem] {
        try ExamSet.load(path: try RealData.path("train.csv", sha256: "c8bf8753dc554bf3fe6a337e02bfe6f7cd550913e9f7dc3303319acef23b23e2"))
            .items
    }

    /// Per number of choices, the chi-square p-value of the answer positions against
    /// uniform shares.
    func uniformity(_ items: [(choices: Int, answer: Int)]) -> [Int: Double] {
        var p: [Int: Double] = [:]
        for (n, group) in Dictionary(grouping: items, by: \.choices) {
            var counts = Array(repeating: 0, count: n)
            for item in group { counts[item.answer - 1] += 1 }
            p[n] = chiSquare(observed: counts, expectedShares: Array(repeating: 1, count: n))!.pValue
        }
        return p
    }

    func testPermuteChoicesKeepsTheGoldContentAndMakesPositionsUniform() throws {
        let items = try realTrainItems()
        XCTAssertEqual(items.count, 1614)
        // The data's own positions are far from uniform on its 5-choice items (62% are 1).
        XCTAssertLessThan(uniformity(items.map { ($0.choices.count, $0.answer!) })[5]!, 1e-10)
        for epoch in 0..<2 {
            let permuted = items.enumerated().map { permutedChoices($1, seed: 42, epoch: epoch, index: $0) }
            for (item, moved) in zip(items, permuted) {
                XCTAssertEqual(moved.choices[moved.answer! - 1], item.choices[item.answer! - 1], "the gold content, item \(item.id)")
                XCTAssertEqual(moved.choices.sorted(), item.choices.sorted(), "a permutation, item \(item.id)")
                XCTAssertEqual(moved.question, item.question)
            }
            for (n, p) in uniformity(permuted.map { ($0.choices.count, $0.answer!) }) {
                XCTAssertGreaterThan(p, 1e-3, "epoch \(epoch), \(n) choices: positions uniform within sampling error")
            }
        }
        XCTAssertTrue(
            (0..<20).contains {
                permutedChoices(items[$0], seed: 42, epoch: 0, index: $0).choices
                    != permutedChoices(items[$0], seed: 42, epoch: 1, index: $0).choices
            },
            "another epoch, another order")
    }

    func testTheSettingsParse() throws {
        let base: [String: ConfigValue] = ["model": .scalar("m.gguf"), "train": .scalar("t.csv"), "name": .scalar("r")]
        let config = try TrainingConfig(
            values: base.merging(["augment": .scalar("permute_choices"), "balance": .scalar("positions")]) { $1 }, source: "test")
        XCTAssertEqual(config.augment, .permuteChoices)
        XCTAssertEqual(config.balance, .positions)
        XCTAssertNil(try TrainingConfig(values: base.merging(["augment": .scalar("none")]) { $1 }, source: "test").augment)
        XCTAssertThrowsError(try TrainingConfig(values: base.merging(["augment": .scalar("shuffle")]) { $1 }, source: "test")) { error in
            XCTAssertTrue("\(error)".contains("'augment' must be permute_choices or none"), "\(error)")
        }
        // A config stored before these keys existed still decodes (no augmentation).
        let stored = try JSONEncoder().encode(TrainingConfig(model: "m.gguf", train: "t.csv", name: "r"))
        var object = try JSONSerialization.jsonObject(with: stored) as! [String: Any]
        object["augment"] = nil
        XCTAssertNil(try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: object)).augment)
    }

    func testBalancedDrawMakesPositionsUniform() throws {
        let items = try realTrainItems()
        let positions = items.map { (choices: $0.choices.count, answer: $0.answer!) }
        let drawn = balancedDraw(positions: positions, count: items.count, seed: 7)
        XCTAssertEqual(drawn.count, items.count)
        XCTAssertEqual(drawn, balancedDraw(positions: positions, count: items.count, seed: 7), "seeded")
        for (n, p) in uniformity(drawn.map { positions[$0] }) {
            XCTAssertGreaterThan(p, 1e-3, "\(n) choices")
        }
    }
}
