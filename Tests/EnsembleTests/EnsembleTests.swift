import XCTest

@testable import Ensemble

final class EnsembleTests: XCTestCase {
    /// Random matrices with values on a coarse dyadic grid, so that exact ties (the
    /// cases the tie rules exist for) are frequent.
    func randomCase(_ g: inout SplitMix64) -> (members: [Member], choiceCounts: [Int]) {
        let items = Int.random(in: 1...12, using: &g)
        let choiceCounts = (0..<items).map { _ in Bool.random(using: &g) ? 4 : 5 }
        let memberCount = Int.random(in: 1...6, using: &g)
        let members = (0..<memberCount).map { m -> Member in
            let answers = choiceCounts.map { Int.random(in: 1...$0, using: &g) }
            let values: MemberValues
            switch Int.random(in: 0..<3, using: &g) {
            case 0: values = .logits(choiceCounts.map { _ in (0..<5).map { _ in [0, 0.5, 1, 2].randomElement(using: &g)! } })
            case 1:
                values = .probabilities(
                    choiceCounts.map { _ in (0..<5).map { c in c == 0 ? 0.25 : [0, 0.25, 0.5, 1].randomElement(using: &g)! } })
            default: values = .none
            }
            return Member(name: "m\(m)", answers: answers, values: values, publicScore: [0.5, 0.625, 0.75].randomElement(using: &g)!)
        }
        return (members, choiceCounts)
    }

    func testAgreesWithTheNaiveImplementationOnRandomMatrices() throws {
        var g = SplitMix64(seed: 1)
        var checked = 0
        for _ in 0..<3000 {
            let (members, counts) = randomCase(&g)
            let scheme: WeightScheme = [
                .score, .excess, .rank, .uniform, .softmax(temperature: 0.05),
                .explicit(Dictionary(uniqueKeysWithValues: members.map { ($0.name, [0.5, 1, 2, 4].randomElement(using: &g)!) }))
            ].randomElement(using: &g)!
            let weights = try scheme.weights(for: members)
            let expectedWeights = Naive.weights(scheme, members)
            for (w, e) in zip(weights, expectedWeights) { XCTAssertEqual(w, e, accuracy: 1e-12, "\(scheme)") }
            for method in Method.allCases {
                let result = try combine(members, choiceCounts: counts, method: method, weights: weights)
                for item in counts.indices {
                    let expected = Naive.answer(
                        members, weights: method == .vote ? members.map { _ in 1 } : expectedWeights, method: method, item: item,
                        choices: counts[item])
                    XCTAssertEqual(result.answers[item], expected, "\(method) \(scheme) item \(item): \(members)")
                    checked += 1
                }
            }
        }
        print("checked \(checked) ensemble answers against the naive implementation")
    }

    func testAveragedProbabilitiesMatchTheDefinition() throws {
        var g = SplitMix64(seed: 2)
        for _ in 0..<500 {
            let (members, counts) = randomCase(&g)
            let weights = members.map { _ in [0.5, 1, 2].randomElement(using: &g)! }
            let result = try combine(members, choiceCounts: counts, method: .average, weights: weights)
            for item in counts.indices {
                for c in 0..<counts[item] {
                    var expected = 0.0
                    for (m, member) in members.enumerated() {
                        expected += weights[m] * Naive.probabilities(member, item: item, choices: counts[item])[c]
                    }
                    XCTAssertEqual(result.probabilities[item][c], expected / weights.reduce(0, +), accuracy: 1e-12)
                }
                XCTAssertEqual(result.probabilities[item].reduce(0, +), 1, accuracy: 1e-12)
            }
        }
    }

    func testGreedySelectionAgreesWithBruteForce() throws {
        var g = SplitMix64(seed: 3)
        for _ in 0..<300 {
            let (members, counts) = randomCase(&g)
            let gold = counts.map { Int.random(in: 1...$0, using: &g) }
            for method in [Method.average, .vote] {
                let rounds = Int.random(in: 1...5, using: &g)
                let picks = try greedySelection(members, choiceCounts: counts, gold: gold, rounds: rounds, method: method).map(\.added)
                XCTAssertEqual(picks, Naive.select(members, choiceCounts: counts, gold: gold, rounds: rounds, method: method), "\(method)")
            }
        }
    }

    // MARK: - Hand-worked examples, one per tie rule

    func member(_ name: String, _ answers: [Int], score: Double?, logits: [[Double]]? = nil) -> Member {
        Member(name: name, answers: answers, values: logits.map { .logits($0) } ?? .none, publicScore: score)
    }

    func testVoteTieGoesToTheVotersWithTheLargerSummedPublicScore() throws {
        // Choice 1: 0.80 + 0.70 = 1.50; choice 2: 0.78 + 0.75 = 1.53.
        let members = [
            member("A", [1], score: 0.80), member("B", [1], score: 0.70), member("C", [2], score: 0.78), member("D", [2], score: 0.75)
        ]
        XCTAssertEqual(try combine(members, choiceCounts: [4], method: .vote, weights: [1, 1, 1, 1]).answers, [2])
    }

    func testVoteTieWithEqualScoresGoesToTheLargerMeanProbability() throws {
        // Equal votes and scores; logits favour choice 3 on average.
        let members = [member("A", [2], score: 0.8, logits: [[0, 1, 0.9, 0]]), member("B", [3], score: 0.8, logits: [[0, 0, 1, 0]])]
        XCTAssertEqual(try combine(members, choiceCounts: [4], method: .vote, weights: [1, 1]).answers, [3])
    }

    func testFullVoteTieGoesToTheLowerChoice() throws {
        let members = [member("A", [4], score: 0.8), member("B", [2], score: 0.8)]
        XCTAssertEqual(try combine(members, choiceCounts: [4], method: .vote, weights: [1, 1]).answers, [2])
    }

    func testWeightedTiesGoToTheLowerChoice() throws {
        let members = [member("A", [3], score: 0.9), member("B", [1], score: 0.6), member("C", [1], score: 0.6)]
        // weighted-vote: 3 gets 2, 1 gets 1 + 1 = 2.
        XCTAssertEqual(try combine(members, choiceCounts: [5], method: .weightedVote, weights: [2, 1, 1]).answers, [1])
        // average of one-hots with the same weights: p(1) = p(3) = 0.5.
        XCTAssertEqual(try combine(members, choiceCounts: [5], method: .average, weights: [2, 1, 1]).answers, [1])
    }

    /// docs/ensembles.md's worked example: three members, one item, four choices.
    func testReadmeWorkedExample() throws {
        let members = [
            Member(name: "A", answers: [1], values: .logits([[2, 1, 0, 0]]), publicScore: 0.80),
            Member(name: "B", answers: [2], values: .probabilities([[0.1, 0.6, 0.2, 0.1]]), publicScore: 0.75),
            Member(name: "C", answers: [2], values: .none, publicScore: 0.70)
        ]
        let weights = try WeightScheme.score.weights(for: members)
        let average = try combine(members, choiceCounts: [4], method: .average, weights: weights)
        // softmax(2,1,0,0) = (0.6103, 0.2245, 0.0826, 0.0826).
        XCTAssertEqual(average.probabilities[0][0], (0.80 * 0.6103 + 0.75 * 0.1) / 2.25, accuracy: 1e-4)
        XCTAssertEqual(average.probabilities[0][1], (0.80 * 0.2245 + 0.75 * 0.6 + 0.70) / 2.25, accuracy: 1e-4)
        XCTAssertEqual(average.answers, [2])
        XCTAssertEqual(try combine(members, choiceCounts: [4], method: .vote, weights: [1, 1, 1]).answers, [2])
        XCTAssertEqual(try WeightScheme.excess.weights(for: members), [0.11, 0.06, 0.01].map { $0 }, accuracy: 1e-12)
        XCTAssertEqual(try WeightScheme.rank.weights(for: members), [3, 2, 1])
    }

    // MARK: - Weights and bad input

    func testWeightSchemesParse() throws {
        XCTAssertEqual(try WeightScheme(parsing: "softmax:0.02"), .softmax(temperature: 0.02))
        XCTAssertEqual(try WeightScheme(parsing: "a@v1=2,b=0.5"), .explicit(["a@v1": 2, "b": 0.5]))
        for bad in ["softmax:0", "softmax:-1", "softmax:x", "a=-1", "a=0,b=0", "a=1,a=2", "median", "a=inf"] {
            XCTAssertThrowsError(try WeightScheme(parsing: bad), bad)
        }
    }

    func testScoreWeightsNeedPublicScores() {
        let members = [member("ckpt-1@v1", [1], score: 0.8), member("gpt@v1", [1], score: nil)]
        XCTAssertThrowsError(try WeightScheme.score.weights(for: members)) { error in
            XCTAssertTrue("\(error)".contains("gpt@v1 has no public score"), "\(error)")
        }
        XCTAssertEqual(try WeightScheme.uniform.weights(for: members), [1, 1])
        XCTAssertThrowsError(try WeightScheme.explicit(["other": 1]).weights(for: members))
        XCTAssertThrowsError(try combine(members, choiceCounts: [4], method: .average, weights: [0, 0]))
        XCTAssertThrowsError(try combine(members, choiceCounts: [4], method: .average, weights: [1, -1]))
        XCTAssertThrowsError(try combine([member("five", [5], score: 0.8)], choiceCounts: [4], method: .vote, weights: [1]))
        XCTAssertThrowsError(
            try combine([member("short", [1], score: 0.8, logits: [[1, 2]])], choiceCounts: [4], method: .average, weights: [1]))
        XCTAssertThrowsError(try combine(members, choiceCounts: [4, 4], method: .vote, weights: [1, 1]))
    }

    // MARK: - Statistics

    func testKappaAndAgreement() {
        XCTAssertEqual(agreement([1, 2, 3, 4], [1, 2, 4, 4]), 0.75)
        // p_o = 0.75; p_e = 0.5*0.25 + 0.25*0.5 + 0.25*0.25 = 0.3125.
        XCTAssertEqual(
            cohensKappa([1, 1, 2, 3], [1, 2, 2, 3].map { $0 == 3 ? 3 : $0 }.enumerated().map { $0.offset == 1 ? 1 : $0.element }), 1)
        XCTAssertEqual(cohensKappa([1, 1, 2, 3], [1, 2, 2, 3]), (0.75 - 0.3125) / (1 - 0.3125), accuracy: 1e-12)
        XCTAssertTrue(cohensKappa([1, 1], [1, 1]).isNaN)
    }

    func testMcNemarExactPValue() {
        // 17 vs 5 discordant: 2 * P(X <= 5), X ~ Binomial(22, 1/2) = 2 * 35443 / 2^22.
        XCTAssertEqual(mcNemarExactPValue(onlyA: 17, onlyB: 5), 2 * 35443 / 4194304, accuracy: 1e-12)
        XCTAssertEqual(mcNemarExactPValue(onlyA: 3, onlyB: 3), 1)
        XCTAssertEqual(mcNemarExactPValue(onlyA: 0, onlyB: 0), 1)
        XCTAssertEqual(mcNemarExactPValue(onlyA: 10, onlyB: 0), 2 / 1024, accuracy: 1e-15)
    }

    func testBootstrapIntervalIsRepeatableAndCoversTheDifference() {
        let a = (0..<200).map { $0 % 5 != 0 }, b = (0..<200).map { $0 % 3 != 0 }
        let first = bootstrapDifferenceInterval(correctA: a, correctB: b)
        XCTAssertEqual(first.low, bootstrapDifferenceInterval(correctA: a, correctB: b).low)
        let observed = 0.8 - Double((0..<200).filter { $0 % 3 != 0 }.count) / 200
        XCTAssertLessThan(first.low, observed)
        XCTAssertGreaterThan(first.high, observed)
        XCTAssertEqual(standardError(accuracy: 0.8, items: 434), 0.0192, accuracy: 1e-4)
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
