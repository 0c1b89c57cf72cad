import Foundation
import XCTest

final class EnsembleCommandTests: WorkspaceTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try write("third.csv", "id,answer\nq1,1\nq2,4\nq3,2\n")
        try run("import", "run.csv", "--name", "run", "--dataset", "test.csv")
        try run("import", "other.csv", "--name", "other", "--dataset", "test.csv")
        try run("import", "third.csv", "--name", "third", "--dataset", "test.csv")
        try run("score", "run", "--public", "0.8")
        try run("score", "other", "--public", "0.7")
        try run("score", "third", "--public", "0.75")
    }

    func file(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    func testTopTwoVoteWithTheTieRuleByHand() throws {
        // run (0.80) answers 2,5,1 and third (0.75) answers 1,4,2: every item is a 1-1
        // tie, won by run's larger public score.
        let output = try run("ensemble", "--top", "2", "--name", "t2").output
        XCTAssertTrue(output.contains("  1  run@v1    0.8000  1 vote\n  2  third@v1  0.7500  1 vote"), output)
        XCTAssertTrue(output.contains("Changes 0 of 3 answers of the best member run@v1"), output)
        XCTAssertEqual(try file("submissions/t2.csv"), "id,answer\nq1,2\nq2,5\nq3,1\n")
        let first = try Data(contentsOf: root.appendingPathComponent("submissions/t2.csv"))

        // The same inputs: the same bytes, and no new version.
        XCTAssertTrue(try run("ensemble", "--top", "2", "--name", "t2").output.contains("identical to t2@v1"))
        XCTAssertEqual(try Data(contentsOf: root.appendingPathComponent("submissions/t2.csv")), first)
        try run("export", "t2", "--out", "again.csv")
        XCTAssertEqual(try Data(contentsOf: root.appendingPathComponent("again.csv")), first)

        // An ensemble is a prediction set: listed, scored, compared, and a member.
        try run("score", "t2", "--public", "0.81")
        XCTAssertTrue(try run("list").output.contains("t2@v1     ensemble"))
        XCTAssertTrue(try run("diff", "t2", "other").output.contains("agree on 2 of 3"))
        let show = try run("show", "t2").output
        XCTAssertTrue(show.contains("Submission") && show.contains("run@v1") && show.contains("third@v1") && show.contains("vote"), show)
        try run("ensemble", "--members", "t2,other", "--method", "average", "--weights", "t2=3,other=1", "--name", "nested")
        XCTAssertEqual(try file("submissions/nested.csv").split(separator: "\n").count, 4)
    }

    func testTopThreeVoteAndWeightedAverage() throws {
        try run("ensemble", "--top", "3", "--name", "v3")
        XCTAssertEqual(try file("submissions/v3.csv"), "id,answer\nq1,1\nq2,5\nq3,1\n")
        // average, score weights: q1 = (0.8 softmax(0.1, 2.5, 0, -1) + 0.7 e1 + 0.75 e1) / 2.25.
        let out = try run("ensemble", "--top", "3", "--method", "average", "--name", "a3", "--out", "a3.csv").output
        XCTAssertTrue(out.contains("weights: score"), out)
        XCTAssertEqual(try file("a3.csv"), "id,answer\nq1,1\nq2,5\nq3,1\n")
        let canonical = try file("predictions/a3@v1.csv")
        XCTAssertTrue(canonical.hasPrefix("id,answer,prob_1,prob_2,prob_3,prob_4,prob_5\nq1,1,"), canonical)
        let q1 = canonical.split(separator: "\n")[1].split(separator: ",", omittingEmptySubsequences: false).dropFirst(2).compactMap {
            Double($0)
        }
        let e = [0.1, 2.5, 0, -1].map(exp), total = e.reduce(0, +)
        let expected = (0..<4).map { (0.8 * e[$0] / total + ($0 == 0 ? 1.45 : 0)) / 2.25 }
        for (got, want) in zip(q1, expected) { XCTAssertEqual(got, want, accuracy: 1e-12) }
    }

    func testDryRunWritesNothing() throws {
        let before = try storeDump()
        XCTAssertTrue(try run("ensemble", "--top", "3", "--name", "dry", "--dry-run").output.contains("Dry run: nothing written."))
        XCTAssertEqual(try storeDump(), before)
        XCTAssertNil(try exportedFiles()["submissions/dry.csv"])
    }

    func testAgreeSelectCompare() throws {
        let agree = try run("agree", "--top", "3").output
        XCTAssertTrue(agree.contains("Cohen's kappa") && agree.contains("agrees with majority"), agree)
        let select = try run("select", "--gold", "test.csv", "--rounds", "3", "--name", "picked").output
        XCTAssertTrue(select.contains("      1  run@v1") && select.contains("1.0000"), select)
        XCTAssertTrue(try file("submissions/picked.csv").hasPrefix("id,answer\n"))
        let compare = try run("compare", "run", "third", "--gold", "test.csv").output
        XCTAssertTrue(compare.contains("McNemar exact p") && compare.contains("3 only run@v1 right, 0 only third@v1 right"), compare)
    }

    func testBadEnsembleInputsAreRefused() throws {
        try write("exam2.csv", "id,paragraph,problems\nz1,p,\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd'], 'answer': 1}\"\n")
        try write("z.csv", "id,answer\nz1,1\n")
        try run("import", "z.csv", "--name", "elsewhere", "--dataset", "exam2.csv")
        try assertRefused(
            "ensemble", "--members", "run,elsewhere", "--name", "x", says: "run@v1 and elsewhere@v1 are over different datasets")
        try assertRefused("ensemble", "--members", "run,nosuch", "--name", "x", says: "no prediction set or submission named nosuch")
        try assertRefused(
            "ensemble", "--top", "4", "--dataset", "test.csv", "--name", "x",
            says: "--top 4 asks for more sets than have a distinct public score (3)")
        try assertRefused(
            "ensemble", "--members", "run,other", "--method", "average", "--weights", "run=-1,other=1", "--name", "x", says: "negative")
        try assertRefused(
            "ensemble", "--members", "run,other", "--method", "average", "--weights", "run=0,other=0", "--name", "x", says: "all zero")
        try assertRefused(
            "ensemble", "--top", "2", "--method", "average", "--weights", "softmax:0", "--name", "x",
            says: "softmax:T needs a temperature T > 0")
        try assertRefused(
            "ensemble", "--members", "run,elsewhere", "--method", "average", "--weights", "uniform", "--name", "x",
            says: "different datasets")
        try run("score", "elsewhere", "--public", "0.5")
        try assertRefused("ensemble", "--top", "2", "--name", "x", says: "over 2 datasets")
        try run("import", "other.csv", "--name", "unscored", "--dataset", "test.csv")
        try assertRefused(
            "ensemble", "--members", "run,unscored", "--method", "average", "--name", "x", says: "unscored@v1 has no public score")
        try assertRefused("select", "--gold", "exam2.csv", "--dataset", "test.csv", says: "labels none of the 3 items")
        try assertRefused("compare", "run", "other", "--gold", "exam2.csv", says: "no item is predicted by both")
    }
}
