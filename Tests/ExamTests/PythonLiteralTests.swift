import XCTest

@testable import Exam

final class PythonLiteralTests: XCTestCase {
    func parse(_ text: String) throws -> PythonValue { try PythonLiteral.parse(text) }

    func testCompetitionDict() throws {
        let value = try parse("{'question': '다음 중 옳은 것은?', 'choices': ['ㄱ, ㄴ', \"it's\"], 'answer': 3}")
        XCTAssertEqual(value["question"], .string("다음 중 옳은 것은?"))
        XCTAssertEqual(value["choices"], .list([.string("ㄱ, ㄴ"), .string("it's")]))
        XCTAssertEqual(value["answer"], .int(3))
    }

    func testScalars() throws {
        XCTAssertEqual(try parse("None"), PythonValue.none)
        XCTAssertEqual(try parse("True"), .bool(true))
        XCTAssertEqual(try parse("False"), .bool(false))
        XCTAssertEqual(try parse("-12"), .int(-12))
        XCTAssertEqual(try parse("1_000"), .int(1000))
        XCTAssertEqual(try parse("0"), .int(0))
        XCTAssertEqual(try parse("2.5"), .float(2.5))
        XCTAssertEqual(try parse(".5"), .float(0.5))
        XCTAssertEqual(try parse("5."), .float(5))
        XCTAssertEqual(try parse("-1e-3"), .float(-0.001))
        XCTAssertEqual(try parse("(1, 2,)"), .list([.int(1), .int(2)]))
        XCTAssertEqual(try parse("[ ]"), .list([]))
        XCTAssertEqual(try parse("{}"), .dict([]))
    }

    func testEscapes() throws {
        XCTAssertEqual(try parse(#"'a\nb\tc\\d\'e\"f'"#), .string("a\nb\tc\\d'e\"f"))
        XCTAssertEqual(try parse(#"'\xa0\u00e9\U0001F600\U000f0854'"#), .string("\u{A0}\u{E9}\u{1F600}\u{F0854}"))
        XCTAssertEqual(try parse(#"'\101\0'"#), .string("A\u{0}"))
        XCTAssertEqual(try parse(#"'\d'"#), .string("\\d"), "unknown escapes are kept, as in Python")
        XCTAssertEqual(try parse("'a\\\nb'"), .string("ab"), "backslash-newline continues the line")
        XCTAssertEqual(try parse(#"r'\n'"#), .string("\\n"))
    }

    func testTripleQuotesAndConcatenation() throws {
        XCTAssertEqual(try parse("'''one\n'two'\n'''"), .string("one\n'two'\n"))
        XCTAssertEqual(try parse("\"\"\"a\"\"\""), .string("a"))
        XCTAssertEqual(try parse("'ab' \"cd\"  'e'"), .string("abcde"))
        XCTAssertEqual(try parse("['a' 'b', 'c']"), .list([.string("ab"), .string("c")]))
    }

    func testDuplicateKeysKeepTheLast() throws {
        XCTAssertEqual(try parse("{'a': 1, 'a': 2}")["a"], .int(2))
    }

    func assertError(_ text: String, position: Int, contains fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            guard let error = error as? PythonLiteralError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(error.position, position, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(fragment), "\(error)", file: file, line: line)
        }
    }

    func testErrorsNameThePosition() {
        assertError("{'a': 1", position: 8, contains: "expected ',' or '}'")
        assertError("{'a' 1}", position: 6, contains: "expected ':'")
        assertError("{'a': foo}", position: 7, contains: "'foo' is not a literal")
        assertError("'abc", position: 1, contains: "unterminated")
        assertError("'a\nb'", position: 1, contains: "line break")
        assertError("[1, 2] x", position: 8, contains: "after the value")
        assertError("f'x'", position: 1, contains: "f-strings")
        assertError("b'x'", position: 1, contains: "bytes")
        assertError("'\\x4'", position: 2, contains: "truncated")
        assertError("'\\ud800'", position: 2, contains: "surrogate")
        assertError("007", position: 1, contains: "leading zeros")
        assertError("1__0", position: 2, contains: "underscore")
        assertError("99999999999999999999", position: 1, contains: "out of range")
        assertError("{[1]: 2}", position: 5, contains: "list cannot be a dict key")
        assertError("", position: 1, contains: "end of the literal")
        assertError("- 'a'", position: 3, contains: "followed by a number")
        assertError("12abc", position: 3, contains: "invalid number")
    }

    /// Python's parser takes 200 nested brackets and refuses 201 ("too many nested
    /// parentheses"); so does this one, and 50,000 is an error, not a stack overflow.
    func testNestingDepthAsPython() throws {
        XCTAssertNoThrow(try parse(String(repeating: "[", count: 200) + String(repeating: "]", count: 200)))
        XCTAssertThrowsError(try parse(String(repeating: "[", count: 201) + String(repeating: "]", count: 201))) { error in
            XCTAssertTrue("\(error)".contains("nested too deeply"), "\(error)")
        }
        let deep = "{'question': 'q', 'choices': " + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000) + "}"
        let exam = "id,paragraph,problems\nq1,p,\"\(deep)\"\n"
        let parsed = ExamSet.parse(bytes: Array(exam.utf8), file: "deep.csv")
        XCTAssertTrue(parsed.items.isEmpty)
        XCTAssertTrue(parsed.problems.first?.message.contains("nested too deeply") == true, "\(parsed.problems)")
    }
}
