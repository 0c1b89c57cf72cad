import XCTest

@testable import Exam

final class CSVTests: XCTestCase {
    func fields(_ text: String) throws -> [[String]] { try CSV.parse(text).map(\.fields) }

    func testQuotedCommasQuotesAndNewlines() throws {
        let text = "id,text\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n"
        XCTAssertEqual(try fields(text), [["id", "text"], ["1", "a, b"], ["2", "say \"hi\""], ["3", "two\nlines"]])
    }

    func testRecordLinesCountLineBreaksInsideQuotes() throws {
        let records = try CSV.parse("h\n\"a\nb\nc\"\nd\n")
        XCTAssertEqual(records.map(\.line), [1, 2, 5])
    }

    func testCRLFAndBOMAndNoFinalNewline() throws {
        let text = "\u{FEFF}id,x\r\n1,\"p\r\nq\"\r\n2,y"
        XCTAssertEqual(try fields(text), [["id", "x"], ["1", "p\r\nq"], ["2", "y"]])
    }

    func testEmptyTrailingAndQuotedEmptyFields() throws {
        XCTAssertEqual(try fields("a,b,c\n1,,\n\"\",\"\",x\n"), [["a", "b", "c"], ["1", "", ""], ["", "", "x"]])
        XCTAssertEqual(try fields("a\n\"\""), [["a"]], "a lone empty quoted field reads as a blank line")
    }

    func testBlankLinesAreSkipped() throws {
        XCTAssertEqual(try fields("a\n\n1\n\r\n2\n"), [["a"], ["1"], ["2"]])
    }

    func testQuoteInsideUnquotedFieldIsKept() throws {
        XCTAssertEqual(try fields("a\nsay \"x\"\n"), [["a"], ["say \"x\""]])
    }

    func testUnterminatedQuoteNamesTheLineItOpened() {
        XCTAssertThrowsError(try CSV.parse("id,p\n1,ok\n2,\"never closed\n3,x\n")) { error in
            XCTAssertEqual((error as? CSVError)?.line, 3)
            XCTAssertTrue("\(error)".contains("unterminated"))
        }
    }

    func testTextAfterClosingQuoteIsAnError() {
        XCTAssertThrowsError(try CSV.parse("a,b\n\"x\"y,z\n")) { error in
            XCTAssertEqual((error as? CSVError)?.line, 2)
        }
    }

    func testInvalidUTF8IsAnError() {
        XCTAssertThrowsError(try CSV.parse([0x61, 0x0A, 0xFF, 0xFE, 0x0A])) { error in
            XCTAssertEqual((error as? CSVError)?.line, 2)
        }
    }

    func testWriteThenParseRoundTrips() throws {
        let rows = [["id", "text", "empty"], ["1", "a,b", ""], ["2", "\"quoted\"\nnext", ""], ["3", "지문\r\n끝", "x"]]
        XCTAssertEqual(try fields(CSV.write(rows)), rows)
        XCTAssertEqual(CSV.write([["a", "b,c"]]), "a,\"b,c\"\n")
    }
}
