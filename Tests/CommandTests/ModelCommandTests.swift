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

final class PredictCommandTests: WorkspaceTestCase {
    func testPredictStoresLogitsWithLineageAndIsRepeatable() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        let first = try run("predict", "--model", smol, "--dataset", "test.csv", "--name", "smol", "--gold", "test.csv").output
        XCTAssertTrue(first.contains("Stored smol@v1: 3 items with logits"), first)
        XCTAssertTrue(first.contains("smol@v1: local "), first)
        let csv = try String(contentsOf: root.appendingPathComponent("predictions/smol@v1.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("id,answer,logit_1,logit_2,logit_3,logit_4,logit_5\nq1,"), csv)
        let show = try run("show", "smol").output
        XCTAssertTrue(show.contains("\"modelSha256\" : \"b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53\""), show)
        XCTAssertTrue(show.contains("\"template\" : \"chatml\""), show)
        // The same command again scores nothing: the finished set is found by its settings.
        let again = try run("predict", "--model", smol, "--dataset", "test.csv", "--name", "smol").output
        XCTAssertTrue(again.contains("Already scored: smol@v1 holds these predictions"), again)
        XCTAssertFalse(again.contains("items/s"), "the items were scored again:\n\(again)")
        // A passage too long for --max-tokens loses its middle (about 1,700 tokens here,
        // 160 without the passage); one that cannot fit even without it is an error.
        let passage = String(repeating: "가나다라마바사아자차카타파하 ", count: 40)
        try write("long.csv", "id,paragraph,problems\nL1,\(passage),\"{'question': 'q', 'choices': ['a', 'b', 'c', 'd']}\"\n")
        let shortened = try run("predict", "--model", smol, "--dataset", "long.csv", "--name", "short", "--max-tokens", "400").output
        XCTAssertTrue(shortened.contains("1 prompts were longer than 400 tokens; their passages were shortened in the middle."), shortened)
        try assertRefused("predict", "--model", smol, "--dataset", "long.csv", "--name", "tiny", "--max-tokens", "100", says: "even without its passage, more than --max-tokens 100")
    }

    /// Questions on one passage are scored one after another, reusing the passage's keys
    /// and values, even where the file interleaves them; the rows keep the file's order.
    func testPassagesAreReusedAndRowsKeepTheirOrder() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        let passage = "조선 후기에는 상품 화폐 경제가 발달하면서 도시의 상업 활동이 활발해졌다."
        try write("shared.csv", """
            id,paragraph,problems
            a1,\(passage),"{'question': '윗글의 중심 화제는?', 'choices': ['상업', '농업', '어업', '공업']}"
            b1,다른 지문이다.,"{'question': '무엇인가?', 'choices': ['가', '나', '다', '라']}"
            a2,\(passage),"{'question': '윗글과 일치하는 것은?', 'choices': ['도시', '농촌', '바다', '산']}"

            """)
        let output = try run("predict", "--model", smol, "--dataset", "shared.csv", "--name", "shared").output
        // Every prompt starts with the same ~55 template tokens; a2 after a1 also reuses
        // the passage (213 in all here; 110 if a2 followed b1).
        let reused = try XCTUnwrap(output.split(separator: "\n").first { $0.contains("prompt tokens were reused") }.flatMap { Int($0.prefix { $0 != " " }) })
        XCTAssertGreaterThan(reused, 180, output)
        let csv = try String(contentsOf: root.appendingPathComponent("predictions/shared@v1.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").dropFirst().map { String($0.prefix(2)) }, ["a1", "b1", "a2"])
    }

    /// The PEFT adapters the engine tests check against transformers + PEFT.
    func adapter(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("EngineTests/Fixtures/adapters/\(name)").path
    }

    func testPredictWithAnAdapter() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        _ = try run("predict", "--model", smol, "--dataset", "test.csv", "--name", "base")
        let output = try run("predict", "--model", smol, "--adapter", adapter("smollm2-sample"), "--dataset", "test.csv", "--name", "lora").output
        XCTAssertTrue(output.contains("Stored lora@v1: 3 items with logits"), output)
        let show = try run("show", "lora").output
        XCTAssertTrue(show.contains("\"adapterSha256\" : \""), show)
        XCTAssertTrue(show.contains("smollm2-sample"), show)
        let base = try String(contentsOf: root.appendingPathComponent("predictions/base@v1.csv"), encoding: .utf8)
        let adapted = try String(contentsOf: root.appendingPathComponent("predictions/lora@v1.csv"), encoding: .utf8)
        XCTAssertNotEqual(base, adapted, "the adapter changed no logit")
        // An adapter for another base model (Gemma 3 sizes) is refused before any write.
        try assertRefused("predict", "--model", smol, "--adapter", adapter("tiny-gemma3"), "--dataset", "test.csv", "--name", "wrong", says: "is the adapter for another base model?")
        try assertRefused("predict", "--model", smol, "--adapter", "no-such-folder", "--dataset", "test.csv", "--name", "wrong", says: "no-such-folder/adapter_config.json: cannot be read")
    }

    func testBadModelIsRefused() throws {
        try assertRefused("predict", "--model", "missing.gguf", "--dataset", "test.csv", "--name", "x", says: "missing.gguf: cannot open")
        try assertRefused("predict", "--model", try DefaultModels.path(DefaultModels.smolLM), "--dataset", "test.csv", "--name", "x", "--gold", "run.csv", says: "run.csv")
        try write("not-a-model.gguf", "GGUF")
        try assertRefused("predict", "--model", "not-a-model.gguf", "--dataset", "test.csv", "--name", "x", says: "not-a-model.gguf")
    }
}
