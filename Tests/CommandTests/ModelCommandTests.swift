import Foundation
import TestSupport
import XCTest

final class ModelCommandTests: WorkspaceTestCase {
    func testInfoAndTokenizeOnTheDefaultModel() throws {
        let gemma = try DefaultModels.path(DefaultModels.gemma)
        let info = try run("model", "info", gemma).output
        XCTAssertTrue(info.contains("architecture    gemma3"), info)
        XCTAssertTrue(info.contains("answer tokens   1=236770 2=236778 3=236800 4=236812 5=236810"), info)
        XCTAssertTrue(info.contains("template        gemma"), info)
        let tokens = try run("model", "tokenize", gemma, "--text", "안녕", "--raw").output
        XCTAssertTrue(tokens.hasPrefix("1 tokens\n") || tokens.hasPrefix("2 tokens\n"), tokens)
        let item = try run("model", "tokenize", gemma, "--item", "test.csv", "q1").output
        XCTAssertTrue(item.contains("(template gemma)\n2 105 2364 107 "), "starts with <bos><start_of_turn>user\\n: \(item)")
    }

    func testBrokenModelFilesAreRefused() throws {
        try write("broken.gguf", "GGUF but not really")
        let result = try run("model", "info", "broken.gguf", status: 1)
        XCTAssertTrue(result.output.contains("broken.gguf"), result.output)
        XCTAssertTrue(try run("model", "info", "missing.gguf", status: 1).output.contains("missing.gguf: cannot open"))
    }
}
