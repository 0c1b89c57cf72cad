import XCTest
@testable import Exam

final class PredictionTableTests: XCTestCase {
    let dataset = DatasetShape(ids: ["q1", "q2", "q3"], choiceCounts: [4, 5, 4])

    func read(_ text: String) throws -> PredictionTable {
        try PredictionTable.read(bytes: Array(text.utf8), file: "p.csv", dataset: dataset)
    }

    func testLogitsInAnyOrderBecomeCanonical() throws {
        let table = try read("id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq2,5,0,1,2,3,4.5\nq1,1,2.5,-1,0,1e-3,\nq3,2,0,1,0,0,99\n")
        XCTAssertEqual(table.choiceValues, .logits)
        XCTAssertEqual(table.rows.map(\.id), ["q1", "q2", "q3"])
        XCTAssertEqual(table.rows[0].values, [2.5, -1, 0, 0.001, nil])
        XCTAssertEqual(table.rows[2].values, [0, 1, 0, 0, nil], "a value past the item's choices is dropped")
        XCTAssertEqual(table.canonicalCSV, """
            id,answer,logit_1,logit_2,logit_3,logit_4,logit_5
            q1,1,2.5,-1.0,0.0,0.001,
            q2,5,0.0,1.0,2.0,3.0,4.5
            q3,2,0.0,1.0,0.0,0.0,

            """)
        XCTAssertEqual(try read(table.canonicalCSV), table, "the canonical CSV reads back to the same table")
    }

    func testPlainSubmissionAndProbabilities() throws {
        let plain = try read("id,answer\nq1,4\nq2,1\nq3,3\n")
        XCTAssertNil(plain.choiceValues)
        XCTAssertEqual(plain.canonicalCSV, "id,answer\nq1,4\nq2,1\nq3,3\n")
        XCTAssertEqual(plain.submissionCSV, plain.canonicalCSV)
        let probs = try read("id,answer,prob_1,prob_2,prob_3,prob_4,prob_5\nq1,1,0.7,0.1,0.1,0.1,\nq2,2,0.1,0.6,0.1,0.1,0.1\nq3,3,0,0,1,0,\n")
        XCTAssertEqual(probs.choiceValues, .probabilities)
        XCTAssertTrue(probs.canonicalCSV.hasPrefix("id,answer,prob_1,prob_2,prob_3,prob_4,prob_5\nq1,1,0.7,0.1,0.1,0.1,\n"))
    }

    func assertRejected(_ text: String, line: Int?, field: String?, contains fragment: String, file: StaticString = #filePath, sourceLine: UInt = #line) {
        XCTAssertThrowsError(try read(text), file: file, line: sourceLine) { error in
            guard let problem = error as? FileProblem else { return XCTFail("\(error)", file: file, line: sourceLine) }
            XCTAssertEqual(problem.line, line, "\(problem)", file: file, line: sourceLine)
            XCTAssertEqual(problem.field, field, "\(problem)", file: file, line: sourceLine)
            XCTAssertTrue(problem.message.contains(fragment), "\(problem)", file: file, line: sourceLine)
        }
    }

    func testBadPredictionFiles() {
        assertRejected("id,answer\nq1,1\nq3,1\n", line: nil, field: nil, contains: "1 of the dataset's 3 items have no row (q2)")
        assertRejected("id,answer\nq1,1\nq2,1\nq3,1\nq9,1\n", line: 5, field: "id", contains: "1 id not in the dataset, first q9")
        assertRejected("id,answer\nq1,1\nq2,1\nq1,2\nq3,1\n", line: 4, field: "id", contains: "duplicate id q1 (first on line 2)")
        assertRejected("id,answer\nq1,5\nq2,1\nq3,1\n", line: 2, field: "answer", contains: "answer 5 is outside 1...4")
        assertRejected("id,answer\nq1,0\nq2,1\nq3,1\n", line: 2, field: "answer", contains: "answer 0 is outside")
        assertRejected("id,answer\nq1,one\nq2,1\nq3,1\n", line: 2, field: "answer", contains: "not an integer")
        assertRejected("id,answer,logit_1,logit_2,logit_3,logit_4\nq1,1,1,x,1,1\nq2,1,1,1,1,1\nq3,1,1,1,1,1\n", line: 2, field: "logit_2", contains: "'x' is not a number")
        assertRejected("id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,1,1,nan,1,1,\nq2,1,1,1,1,1,1\nq3,1,1,1,1,1,\n", line: 2, field: "logit_2", contains: "not a finite number")
        assertRejected("id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,1,1,1,1,1,\nq2,1,1,1,1,1,\nq3,1,1,1,1,1,\n", line: 3, field: "logit_5", contains: "empty logit_5 for item q2, which has 5 choices")
        assertRejected("id,answer,logit_1,logit_2,logit_3,logit_4\nq1,1,1,1,1,1\nq2,1,1,1,1,1\nq3,1,1,1,1,1\n", line: 3, field: "logit_5", contains: "no column logit_5")
        assertRejected("id,answer,prob_1,prob_2,prob_3,prob_4\nq1,1,-0.1,1,1,1\n", line: 2, field: "prob_1", contains: "negative")
        assertRejected("id,answer,logit_1,prob_2\n", line: 1, field: nil, contains: "both logit_* and prob_*")
        assertRejected("id,answer,score\n", line: 1, field: "score", contains: "unexpected column score")
        assertRejected("id,prediction\n", line: 1, field: "prediction", contains: "unexpected column")
        assertRejected("id\nq1\n", line: 1, field: nil, contains: "missing column answer")
        assertRejected("id,answer\nq1,1,3\n", line: 2, field: nil, contains: "expected 2 fields, found 3")
        assertRejected("", line: 1, field: nil, contains: "empty")
    }

    func testAccuracyOverSharedLabelledIds() throws {
        let table = try read("id,answer\nq1,4\nq2,1\nq3,3\n")
        let gold = [ExamItem(id: "q1", paragraph: "", question: "", choices: ["a", "b", "c", "d"], answer: 4),
                    ExamItem(id: "q3", paragraph: "", question: "", choices: ["a", "b", "c", "d"], answer: 1),
                    ExamItem(id: "other", paragraph: "", question: "", choices: ["a", "b"], answer: 1)]
        XCTAssertTrue(table.accuracy(against: gold) == (1, 2))
    }
}
