import XCTest

@testable import Exam

final class PredictionTableTests: XCTestCase {
    let dataset = DatasetShape(ids: ["q1", "q2", "q3"], choiceCounts: [4, 5, 4])

    func read(_ text: String) throws -> PredictionTable {
        try reading(text).table
    }

    func reading(_ text: String, _ options: PredictionFileOptions = PredictionFileOptions()) throws -> PredictionFileReading {
        try PredictionTable.read(bytes: Array(text.utf8), file: "p.csv", dataset: dataset, options: options)
    }

    func testLogitsInAnyOrderBecomeCanonical() throws {
        let table = try read("id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq2,5,0,1,2,3,4.5\nq1,1,2.5,-1,0,1e-3,\nq3,2,0,1,0,0,99\n")
        XCTAssertEqual(table.choiceValues, .logits)
        XCTAssertEqual(table.rows.map(\.id), ["q1", "q2", "q3"])
        XCTAssertEqual(table.rows[0].values, [2.5, -1, 0, 0.001, nil])
        XCTAssertEqual(table.rows[2].values, [0, 1, 0, 0, nil], "a value past the item's choices is dropped")
        XCTAssertEqual(
            table.canonicalCSV,
            """
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
        let probs = try read(
            "id,answer,prob_1,prob_2,prob_3,prob_4,prob_5\nq1,1,0.7,0.1,0.1,0.1,\nq2,2,0.1,0.6,0.1,0.1,0.1\nq3,3,0,0,1,0,\n")
        XCTAssertEqual(probs.choiceValues, .probabilities)
        XCTAssertTrue(probs.canonicalCSV.hasPrefix("id,answer,prob_1,prob_2,prob_3,prob_4,prob_5\nq1,1,0.7,0.1,0.1,0.1,\n"))
    }

    /// The first problem a refused file reports (a header problem, or the first bad row).
    func assertRejected(
        _ text: String, line: Int?, field: String?, contains fragment: String, file: StaticString = #filePath, sourceLine: UInt = #line
    ) {
        XCTAssertThrowsError(try read(text), file: file, line: sourceLine) { error in
            let problem: FileProblem
            switch error {
            case let single as FileProblem: problem = single
            case let rows as PredictionFileProblems: problem = rows.problems[0].problem
            default: return XCTFail("\(error)", file: file, line: sourceLine)
            }
            XCTAssertEqual(problem.line, line, "\(problem)", file: file, line: sourceLine)
            XCTAssertEqual(problem.field, field, "\(problem)", file: file, line: sourceLine)
            XCTAssertTrue(problem.message.contains(fragment), "\(problem)", file: file, line: sourceLine)
        }
    }

    func testBadPredictionFiles() {
        assertRejected("id,answer\nq1,1\nq3,1\n", line: nil, field: nil, contains: "1 of the dataset's 3 items have no row (q2)")
        assertRejected("id,answer\nq1,1\nq2,1\nq3,1\nq9,1\n", line: 5, field: "id", contains: "q9 is not an item of the dataset")
        assertRejected("id,answer\nq1,1\nq2,1\nq1,2\nq3,1\n", line: 4, field: "id", contains: "duplicate id q1 (first on line 2)")
        assertRejected("id,answer\nq1,5\nq2,1\nq3,1\n", line: 2, field: "answer", contains: "answer 5 is outside 1...4")
        assertRejected("id,answer\nq1,0\nq2,1\nq3,1\n", line: 2, field: "answer", contains: "answer 0 is outside")
        assertRejected("id,answer\nq1,one\nq2,1\nq3,1\n", line: 2, field: "answer", contains: "'one' is not a choice number")
        assertRejected("id,answer\nq1,1.5\nq2,1\nq3,1\n", line: 2, field: "answer", contains: "'1.5' is not a choice number")
        assertRejected(
            "id,answer,logit_1,logit_2,logit_3,logit_4\nq1,1,1,x,1,1\nq2,1,1,1,1,1\nq3,1,1,1,1,1\n", line: 2, field: "logit_2",
            contains: "'x' is not a number")
        assertRejected(
            "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,1,1,nan,1,1,\nq2,1,1,1,1,1,1\nq3,1,1,1,1,1,\n", line: 2,
            field: "logit_2", contains: "not a finite number")
        assertRejected(
            "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,1,1,1,1,1,\nq2,1,1,1,1,1,\nq3,1,1,1,1,1,\n", line: 3, field: "logit_5",
            contains: "empty logit_5 with 5 choices (item q2)")
        assertRejected(
            "id,answer,logit_1,logit_2,logit_3,logit_4\nq1,1,1,1,1,1\nq2,1,1,1,1,1\nq3,1,1,1,1,1\n", line: 3, field: "logit_5",
            contains: "no column logit_5")
        assertRejected("id,answer,prob_1,prob_2,prob_3,prob_4\nq1,1,-0.1,1,1,1\n", line: 2, field: "prob_1", contains: "negative")
        assertRejected(
            "id,answer,logit_1,logit_2,logit_3,logit_4,logit_5,prob_1,prob_2,prob_3,prob_4,prob_5\n", line: 1, field: nil,
            contains: "both logit and probability columns")
        assertRejected("id,answer,logits,logit_1\n", line: 1, field: nil, contains: "both a list column and per-choice columns")
        assertRejected("id,answer,Answer\n", line: 1, field: "Answer", contains: "column Answer appears twice")
        assertRejected("id,prediction\n", line: 1, field: nil, contains: "missing column answer")
        assertRejected("id\nq1\n", line: 1, field: nil, contains: "missing column answer")
        assertRejected("id,answer\nq1,1,3\n", line: 2, field: nil, contains: "expected 2 fields, found 3")
        assertRejected("", line: 1, field: nil, contains: "empty")
    }

    /// Every bad row is reported, counted by kind, the first 20 shown with their lines.
    func testEveryBadRowIsReported() throws {
        let ids = (1...30).map { "i\($0)" }
        let big = DatasetShape(ids: ids, choiceCounts: Array(repeating: 4, count: 30))
        var text = "id,answer\n"
        for (index, id) in ids.enumerated() { text += "\(id),\(index < 25 ? "정" : index < 28 ? "5" : "2")\n" }
        text += "zz,1\n"
        XCTAssertThrowsError(try PredictionTable.read(bytes: Array(text.utf8), file: "p.csv", dataset: big)) { error in
            guard let problems = error as? PredictionFileProblems else { return XCTFail("\(error)") }
            XCTAssertEqual(problems.count(.notAChoice), 25)
            XCTAssertEqual(problems.count(.outsideChoices), 3)
            XCTAssertEqual(problems.count(.unknownId), 1)
            let message = problems.description
            XCTAssertTrue(
                message.hasPrefix(
                    "p.csv: 29 problems (25 answers that are not a choice number, 3 answers outside the item's choices, 1 id not in the dataset); the first 20:"
                ), message)
            XCTAssertEqual(message.split(separator: "\n").filter { $0.hasPrefix("  p.csv:") }.count, 20)
            XCTAssertTrue(message.contains("p.csv:2 [answer]: '정' is not a choice number (item i1, 4 choices)"), message)
        }
        // As uploaded: the invalid answers are kept verbatim; the unknown id still refuses.
        XCTAssertThrowsError(
            try PredictionTable.read(
                bytes: Array(text.utf8), file: "p.csv", dataset: big, options: PredictionFileOptions(invalidAnswers: .asWrong)))
        let kept = try PredictionTable.read(
            bytes: Array(text.dropLast(5).utf8), file: "p.csv", dataset: big, options: PredictionFileOptions(invalidAnswers: .asWrong))
        XCTAssertEqual(kept.invalidAnswers, 28)
        XCTAssertEqual(kept.table.rows[0].answer, 0)
        XCTAssertEqual(kept.table.rows[0].invalidAnswer, "정")
        XCTAssertEqual(kept.table.rows[26].invalidAnswer, "5")
        XCTAssertEqual(kept.table.rows[29].answer, 2)
        XCTAssertEqual(kept.table.submissionCSV, String(text.dropLast(5)), "stored as uploaded, byte for byte")
    }

    /// What teams' scripts write: case, tabs, spaces, 1.0, list columns, extra columns.
    func testVariantsGPUScriptsWrite() throws {
        let expected = try read("id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,2,0.5,1.5,0,0,\nq2,5,0,0,0,1,3\nq3,1,1,0,0,0,\n")
        let tab = try reading(
            "ID\tAnswer\tLogit_1\tlogit_2\tLOGIT_3\tlogit_4\tlogit_5\tmodel\n q1 \t 2.0 \t0.5\t1.5\t0\t0\t\tx\nq2\t5\t0\t0\t0\t1\t3\tx\nq3\t1\t1\t0\t0\t0\t\tx\n"
        )
        XCTAssertEqual(tab.table, expected)
        XCTAssertEqual(tab.separator, "tab")
        XCTAssertEqual(tab.ignoredColumns, ["model"])
        let json = try reading(
            "id,answer,logits\nq1,2,\"[0.5, 1.5, 0, 0]\"\nq2,5,\"[0, 0, 0, 1, 3]\"\nq3,1,\"[1.0, 0.0, 0.0, 0.0, 7.0]\"\n")
        XCTAssertEqual(json.table, expected, "a JSON list; values past the item's choices dropped")
        let python = try reading("id,answer,logits\nq1,2,\"(0.5, 1.5, 0, 0)\"\nq2,5,\"[0, 0, 0, 1, 3]\"\nq3,1,[1. 0. 0. 0.]\n")
        XCTAssertEqual(python.table, expected, "a Python tuple and numpy's printed array")
        XCTAssertEqual(python.argmaxDisagreements, 0)
        let probs = try reading(
            "id,answer,probs\nq1,1,\"[0.1, 0.7, 0.1, 0.1]\"\nq2,5,\"[0.1, 0.1, 0.1, 0.1, 0.6]\"\nq3,1,\"[0.4, 0.3, 0.2, 0.1]\"\n")
        XCTAssertEqual(probs.table.choiceValues, .probabilities)
        XCTAssertEqual(probs.argmaxDisagreements, 1, "q1 answers 1 where its probabilities say 2")
    }

    /// A subset: any part of the dataset, in dataset order; duplicates still refused.
    func testSubset() throws {
        let part = try reading("id,answer\nq3,2\nq1,1\n", PredictionFileOptions(subset: true))
        XCTAssertEqual(part.table.rows.map(\.id), ["q1", "q3"])
        XCTAssertThrowsError(try reading("id,answer\nq3,2\nq3,2\n", PredictionFileOptions(subset: true)))
        XCTAssertThrowsError(try reading("id,answer\n", PredictionFileOptions(subset: true)))
    }

    /// A 10 MB id is quoted, not echoed: the message stays short.
    func testHugeFieldsAreQuotedShort() {
        let huge = String(repeating: "x", count: 10_000_000)
        XCTAssertThrowsError(try read("id,answer\n\(huge),1\nq1,1\nq2,1\nq3,1\n")) { error in
            let message = "\(error)"
            XCTAssertLessThan(message.count, 400, "the id is cut")
            XCTAssertTrue(message.contains("(10000000 characters)"), message)
        }
        XCTAssertEqual(excerpt("a\u{1B}[31mred\n"), "a\\u{1b}[31mred\\n", "control characters are escaped")
    }

    func testAccuracyOverSharedLabelledIds() throws {
        let table = try read("id,answer\nq1,4\nq2,1\nq3,3\n")
        let gold = [
            ExamItem(id: "q1", paragraph: "", question: "", choices: ["a", "b", "c", "d"], answer: 4),
            ExamItem(id: "q3", paragraph: "", question: "", choices: ["a", "b", "c", "d"], answer: 1),
            ExamItem(id: "other", paragraph: "", question: "", choices: ["a", "b"], answer: 1)
        ]
        XCTAssertTrue(table.accuracy(against: gold) == (1, 2))
    }
}
