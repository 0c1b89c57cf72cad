import XCTest

@testable import Exam

final class ExamSetTests: XCTestCase {
    let header = "id,paragraph,problems,question_plus\n"

    func parse(_ text: String) -> (items: [ExamItem], problems: [FileProblem]) {
        ExamSet.parse(bytes: Array(text.utf8), file: "exam.csv")
    }

    func testReadsItemsWithQuotesCommasAndLineBreaks() {
        let text =
            header + #"""
                a-1,"첫 줄, 그리고
                둘째 줄 ""인용""","{'question': '옳은 것은?', 'choices': ['가', '나', '다', '라'], 'answer': 2}",
                a-2,지문,"{'question': ""it's"", 'choices': ['1', '2', '3', '4', '5'], 'answer': None}",보기 내용
                a-3,지문,"{'question': 'q', 'choices': ['1', '2', '3', '4', '5'], 'answer': '', 'question_plus': '안쪽 보기'}",

                """#
        let (items, problems) = parse(text)
        XCTAssertEqual(problems, [])
        XCTAssertEqual(items.count, 3)
        XCTAssertEqual(
            items[0],
            ExamItem(
                id: "a-1", paragraph: "첫 줄, 그리고\n둘째 줄 \"인용\"", question: "옳은 것은?", choices: ["가", "나", "다", "라"], questionPlus: nil,
                answer: 2))
        XCTAssertEqual(items[1].question, "it's")
        XCTAssertEqual(items[1].questionPlus, "보기 내용")
        XCTAssertNil(items[1].answer)
        XCTAssertEqual(items[2].questionPlus, "안쪽 보기", "question_plus inside problems, as in the real test file")
        XCTAssertNil(items[2].answer, "an empty-string answer means unlabelled, as in the real test file")
    }

    func assertProblem(
        _ rows: String, line: Int?, field: String?, contains fragment: String, file: StaticString = #filePath, sourceLine: UInt = #line
    ) {
        let (_, problems) = parse(header + rows)
        XCTAssertEqual(problems.count, 1, "\(problems)", file: file, line: sourceLine)
        guard let problem = problems.first else { return }
        XCTAssertEqual(problem.file, "exam.csv", file: file, line: sourceLine)
        XCTAssertEqual(problem.line, line, "\(problem)", file: file, line: sourceLine)
        XCTAssertEqual(problem.field, field, "\(problem)", file: file, line: sourceLine)
        XCTAssertTrue(problem.message.contains(fragment), "\(problem)", file: file, line: sourceLine)
    }

    let good = "\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd'], 'answer': 1}\""

    func testEachBadInputGetsOneProblemWithLineAndField() {
        assertProblem("x,p,\(good),\nx,p,\(good),\n", line: 3, field: "id", contains: "duplicate id x (first on line 2)")
        assertProblem(
            "x,p,\"{'question': 'q', 'choices': ['a','b','c','d','e','f'], 'answer': 1}\",\n", line: 2, field: "problems",
            contains: "6 choices")
        assertProblem(
            "x,p,\"{'question': 'q', 'choices': ['a','b','c','d'], 'answer': 0}\",\n", line: 2, field: "problems",
            contains: "answer 0 is outside 1...4")
        assertProblem(
            "x,p,\"{'question': 'q', 'choices': ['a','b','c','d'], 'answer': 5}\",\n", line: 2, field: "problems",
            contains: "answer 5 is outside 1...4")
        assertProblem("x,p,\"{'question': 'q', 'choices': ['a'], 'answer': 1}\",\n", line: 2, field: "problems", contains: "1 choices")
        assertProblem("x,p,not a literal,\n", line: 2, field: "problems", contains: "not a Python literal")
        assertProblem("x,p,\"{'choices': ['a','b']}\",\n", line: 2, field: "problems", contains: "no 'question'")
        assertProblem("x,p,\"['a']\",\n", line: 2, field: "problems", contains: "expected a dict")
        assertProblem("x,p,\"{'question': 'q', 'choices': ['a', 2]}\",\n", line: 2, field: "problems", contains: "choice 2 is a int")
        assertProblem(
            "x,p,\"{'question': 'q', 'choices': ['a', 'b'], 'answer': 1.0}\",\n", line: 2, field: "problems",
            contains: "'answer' is a float")
        assertProblem(",p,\(good),\n", line: 2, field: "id", contains: "empty id")
        assertProblem("x,p,\(good)\n", line: 2, field: nil, contains: "expected 4 fields, found 3")
        assertProblem("x,p,\(good.dropLast())\n", line: 2, field: nil, contains: "unterminated")
    }

    func testMissingColumnIsNamed() {
        let (_, problems) = ExamSet.parse(bytes: Array("id,paragraph,question_plus\nx,p,\n".utf8), file: "t.csv")
        XCTAssertEqual(problems.map(\.description), ["t.csv:1: missing column problems (the header is id,paragraph,question_plus)"])
    }

    func testAllProblemsAreCollectedAndGoodItemsKept() {
        let rows = "a,p,\(good),\nb,p,bad,\nc,p,\(good),\nc,p,\(good),\n"
        let (items, problems) = parse(header + rows)
        XCTAssertEqual(items.map(\.id), ["a", "c"])
        XCTAssertEqual(problems.map(\.line), [3, 5])
    }

    func testLoadThrowsWithEveryProblem() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("exam-\(UUID()).csv")
        try (header + "a,p,bad,\nb,p,worse,\n").write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try ExamSet.load(path: url.path)) { error in
            XCTAssertEqual((error as? FileProblems)?.problems.count, 2)
            XCTAssertTrue("\(error)".contains("\(url.path):2 [problems]"), "\(error)")
        }
        XCTAssertThrowsError(try ExamSet.load(path: "/nonexistent/exam.csv")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/exam.csv: no such file")
        }
    }

    func testBaselinePrompt() {
        var item = ExamItem(id: "x", paragraph: "지문 내용", question: "옳은 것은?", choices: ["가", "나", "다", "라"], answer: 1)
        XCTAssertEqual(
            Prompt.baseline(item),
            Prompt(
                system: "지문을 읽고 질문의 답을 구하세요.",
                user: """
                    지문:
                    지문 내용

                    질문:
                    옳은 것은?

                    선택지:
                    1 - 가
                    2 - 나
                    3 - 다
                    4 - 라

                    1, 2, 3, 4, 5 중에 하나를 정답으로 고르세요.
                    정답:
                    """))
        item.questionPlus = "ㄱ. 보기"
        XCTAssertTrue(Prompt.baseline(item).user.contains("질문:\n옳은 것은?\n\n<보기>:\nㄱ. 보기\n\n선택지:\n1 - 가"))
    }
}
