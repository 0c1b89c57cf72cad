import Foundation
import TestSupport
import XCTest

/// `predict --debias` (issue 16) against a direct implementation: each permutation
/// scored as its own exam file with the choices rotated, by plain `predict`. In `f32`:
/// the two score a prompt with different reused keys and values (float sums in another
/// order, ~1e-6), which q8's rounding of activations to 8 bits can turn into ~0.1.
final class DebiasCommandTests: WorkspaceTestCase {
    /// The items of `exam`: id, paragraph, question, choices, <보기>.
    let items: [(id: String, paragraph: String, question: String, choices: [String], plus: String)] = [
        ("q1", "지문, 하나", "옳은 것은?", ["a", "b", "c", "d"], ""),
        ("q2", "지문 둘", "q", ["a", "b", "c", "d", "e"], "보기"),
        ("q3", "지문 셋", "q", ["a", "b", "c", "d"], "")
    ]

    func softmax(_ x: [Double]) -> [Double] {
        let top = x.max()!
        let e = x.map { exp($0 - top) }
        return e.map { $0 / e.reduce(0, +) }
    }

    /// Per item (by id), the position probabilities of plain `predict` on the exam with
    /// every item's choices rotated by k (items with no more than k choices left out).
    func rotatedPasses(_ smol: String, k: Int) throws -> [String: [Double]] {
        var text = "id,paragraph,problems,question_plus\n"
        for item in items where item.choices.count > k {
            let choices = Array(item.choices[k...] + item.choices[..<k]).map { "'\($0)'" }.joined(separator: ", ")
            text += "\(item.id),\"\(item.paragraph)\",\"{'question': '\(item.question)', 'choices': [\(choices)]}\",\(item.plus)\n"
        }
        try write("rotated-\(k).csv", text)
        try run("predict", "--model", smol, "--dataset", "rotated-\(k).csv", "--name", "rotated-\(k)", "--precision", "f32")
        return try logits("rotated-\(k)").mapValues(softmax)
    }

    func logits(_ name: String) throws -> [String: [Double]] {
        let csv = try String(contentsOf: root.appendingPathComponent("predictions/\(name)@v1.csv"), encoding: .utf8)
        var result: [String: [Double]] = [:]
        for line in csv.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            result[fields[0]] = fields[2...].compactMap { Double($0) }
        }
        return result
    }

    func lineage(_ name: String) throws -> [String: Any] {
        let show = try JSONSerialization.jsonObject(with: Data(try run("show", name, "--format", "json").output.utf8)) as! [String: Any]
        return show["lineage"] as! [String: Any]
    }

    /// A labelled file of items with these answers, 4 and 5 choices.
    func writeTarget(_ name: String, fourChoiceAnswers: [Int], fiveChoiceAnswers: [Int]) throws {
        var text = "id,paragraph,problems\n"
        for (index, answer) in fourChoiceAnswers.enumerated() {
            text += "f\(index),p,\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd'], 'answer': \(answer)}\"\n"
        }
        for (index, answer) in fiveChoiceAnswers.enumerated() {
            text += "v\(index),p,\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd', 'e'], 'answer': \(answer)}\"\n"
        }
        try write(name, text)
    }

    /// A target whose labelled answers never use a position gave it the share 0, and
    /// every item was silently forced away from it: refused, naming the file and the
    /// position, for the numbers of choices the items have. A position answered once is
    /// a share like any other.
    func testAPriorTargetThatNeverAnswersAPositionIsRefused() throws {
        let model = try tinyLlama("tiny.gguf")
        try writeTarget("no-fives.csv", fourChoiceAnswers: [1, 2, 3, 4], fiveChoiceAnswers: [1, 2, 2, 3, 4, 4])
        try assertRefused(
            "predict", "--model", model, "--dataset", "test.csv", "--name", "x", "--debias", "permute", "--prior-target", "no-fives.csv",
            says:
                "no-fives.csv: none of its 6 labelled items with 5 choices has the answer 5, so --prior-target would rule out position 5 on every 5-choice item"
        )
        // test.csv's own answers: 2 and 1 of its 4-choice items, 5 of its 5-choice one.
        try assertRefused(
            "predict", "--model", model, "--dataset", "test.csv", "--name", "x", "--debias", "pride", "--prior-target", "test.csv",
            says: "test.csv: none of its 2 labelled items with 4 choices has the answer 3")
        // Only the numbers of choices scored matter: q1 alone has 4 choices.
        XCTAssertTrue(
            try run(
                "predict", "--model", model, "--dataset", "test.csv", "--name", "first", "--limit", "1", "--debias", "permute",
                "--prior-target", "no-fives.csv"
            ).output.contains("Stored first@v1: 1 items"))
        try writeTarget("one-five.csv", fourChoiceAnswers: [1, 2, 3, 4], fiveChoiceAnswers: [1, 2, 2, 3, 4, 5])
        try run(
            "predict", "--model", model, "--dataset", "test.csv", "--name", "once", "--debias", "permute", "--prior-target", "one-five.csv")
        let shares = try XCTUnwrap(lineage("once")["priorTargetShares"] as? [String: [Double]])
        XCTAssertEqual(shares["5"]!, [1, 2, 1, 1, 1].map { $0 / 6 })
    }

    func testPermuteAndPrideAgainstRotatedRuns() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        let passes = try (0..<5).map { try rotatedPasses(smol, k: $0) }
        // permute: each choice's content, averaged over its n positions.
        try run("predict", "--model", smol, "--dataset", "test.csv", "--name", "permuted", "--debias", "permute", "--precision", "f32")
        let permuted = try logits("permuted").mapValues(softmax)
        var expected: [String: [Double]] = [:]
        for item in items {
            let n = item.choices.count
            expected[item.id] = (0..<n).map { j in (0..<n).reduce(0) { $0 + passes[$1][item.id]![(j - $1 + n) % n] } / Double(n) }
            for (ours, direct) in zip(permuted[item.id]!, expected[item.id]!) {
                XCTAssertEqual(ours, direct, accuracy: 1e-4, item.id)
            }
        }
        XCTAssertEqual(try lineage("permuted")["debias"] as? String, "permute")
        // pride with every item sampled is permute, and its prior is the mean of the
        // position probabilities of all the passes.
        try run("predict", "--model", smol, "--dataset", "test.csv", "--name", "all-sampled", "--debias", "pride:1", "--precision", "f32")
        let prior = try XCTUnwrap(lineage("all-sampled")["debiasPrior"] as? [String: [Double]])
        let fourChoiceMean = (0..<4).map { c in
            ["q1", "q3"].reduce(0.0) { sum, id in sum + (0..<4).reduce(0) { $0 + passes[$1][id]![c] } } / 8
        }
        for (ours, direct) in zip(prior["4"]!, fourChoiceMean) { XCTAssertEqual(ours, direct, accuracy: 1e-4) }
        // pride on a sample: one of q1, q3 sampled (⌈0.3·2⌉ = 1); the other divided by
        // the sampled one's prior, toward the target shares of target.csv.
        try writeTarget("target.csv", fourChoiceAnswers: [1, 2, 2, 3, 4], fiveChoiceAnswers: [1, 2, 3, 4, 5])
        try run(
            "predict", "--model", smol, "--dataset", "test.csv", "--name", "sampled", "--debias", "pride:0.3", "--prior-target",
            "target.csv", "--precision", "f32")
        let sampledLineage = try lineage("sampled")
        let samplePrior = try XCTUnwrap((sampledLineage["debiasPrior"] as? [String: [Double]])?["4"])
        let candidates = ["q1", "q3"].map { id in (id, (0..<4).map { c in (0..<4).reduce(0) { $0 + passes[$1][id]![c] } / 4 }) }
        let sampled = try XCTUnwrap(
            candidates.first { zip($0.1, samplePrior).allSatisfy { abs($0 - $1) < 1e-4 } },
            "the prior is the mean of one sampled item's passes")
        let other = sampled.0 == "q1" ? "q3" : "q1"
        let target = [0.2, 0.4, 0.2, 0.2]
        let raw = (0..<4).map { passes[0][other]![$0] * target[$0] / samplePrior[$0] }
        let corrected = raw.map { $0 / raw.reduce(0, +) }
        for (ours, direct) in zip(try logits("sampled").mapValues(softmax)[other]!, corrected) {
            XCTAssertEqual(ours, direct, accuracy: 1e-4, other)
        }
        XCTAssertEqual(sampledLineage["priorTarget"] as? String, "target.csv")
        XCTAssertTrue(
            try run("predict", "--model", smol, "--dataset", "test.csv", "--name", "x", "--debias", "pride:2", status: 64).output.contains(
                "--debias is permute, pride or pride:FRACTION"))
    }
}
