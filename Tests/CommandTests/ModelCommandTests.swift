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

    /// A GGUF header written by hand: string metadata and tensor infos, the data left
    /// as a hole (the file is sparse), so that a tensor can claim billions of values.
    func writeHeader(_ name: String, metadata: [(String, String)], tensors: [(String, [UInt64], UInt32)], dataBytes: Int) throws {
        var bytes = Data("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata { string(key); u32(8); string(value) }
        for (tensor, dimensions, type) in tensors {
            string(tensor)
            u32(UInt32(dimensions.count))
            dimensions.forEach(u64)
            u32(type)
            u64(0)
        }
        bytes.append(contentsOf: [UInt8](repeating: 0, count: (32 - bytes.count % 32) % 32))
        let url = root.appendingPathComponent(name)
        try bytes.write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(bytes.count + dataBytes))
        try handle.close()
    }

    /// Over 2^32 parameters (a 9B model printed "9263.7M (673791488)"), and a name a
    /// megabyte long with terminal escapes: shown whole and cut, escaped.
    func testInfoOnHugeCountsAndHostileStrings() throws {
        let name = "\u{1B}[31m" + String(repeating: "A", count: 1 << 20)
        // 65,536 × 65,537 Q4_0 values (18 bytes a block of 32).
        try writeHeader("huge.gguf", metadata: [("general.architecture", "llama"), ("general.name", name)],
                        tensors: [("token_embd.weight", [65_536, 65_537], 2)], dataBytes: 65_536 * 65_537 / 32 * 18)
        let info = try run("model", "info", "huge.gguf").output
        XCTAssertTrue(info.contains("4295.0M (4295032832)"), info)
        XCTAssertFalse(info.contains("\u{1B}"), "an escape reached the terminal")
        XCTAssertTrue(info.contains("\\u{1b}[31mAAAA"), info.prefix(500) + "")
        XCTAssertLessThan(info.utf8.count, 4000, info.prefix(500) + "")
        XCTAssertTrue(info.contains("cannot run it: huge.gguf: llama.block_count is missing"), info.prefix(2000) + "")
    }

    /// A copy of the default Gemma model with bytes changed at `offset`.
    func corruptedGemma(_ name: String, at offset: UInt64, _ bytes: [UInt8]) throws -> String {
        let gemma = try DefaultModels.path(DefaultModels.gemma)
        let url = root.appendingPathComponent(name)
        try FileManager.default.copyItem(atPath: gemma, toPath: url.path)
        let handle = try FileHandle(forWritingTo: url)
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: bytes)
        try handle.close()
        return name
    }

    /// The corruptions of the issue, through the commands: one clear line, status 1
    /// (model info shows what it can, and says which part is unusable), quickly.
    func testCorruptedModelsThroughTheCommands() throws {
        // tokenizer.ggml.scores' count (at 4,413,534) grown by 2^27: was 76 s.
        let lengths = try corruptedGemma("length.gguf", at: 4_413_537, [0x08])
        let start = Date()
        let refused = try run("model", "info", lengths, status: 1).output
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(refused.split(separator: "\n").count, 1, refused)
        XCTAssertTrue(refused.contains("tokenizer.ggml.scores array length"), refused)
        // eos_token_id (at 6,510,825) = 0xFFFFFFFF: crashed model info.
        let eos = try corruptedGemma("eos.gguf", at: 6_510_825, [0xFF, 0xFF, 0xFF, 0xFF])
        let info = try run("model", "info", eos).output
        XCTAssertTrue(info.contains("vocabulary      unusable: ") && info.contains("tokenizer.ggml.eos_token_id is 4294967295"), info)
        // head_count (at 567) = 0: crashed predict.
        let heads = try corruptedGemma("heads.gguf", at: 567, [0, 0, 0, 0])
        XCTAssertTrue(try run("model", "info", heads).output.contains("engine          cannot run it: heads.gguf: gemma3.attention.head_count is 0"))
        // SmolLM2 has no key_length: its head size would be embedding_length / 0.
        let smol = root.appendingPathComponent("smol-heads.gguf")
        try FileManager.default.copyItem(atPath: try DefaultModels.path(DefaultModels.smolLM), toPath: smol.path)
        let handle = try FileHandle(forWritingTo: smol)
        try handle.seek(toOffset: 643)  // llama.attention.head_count
        try handle.write(contentsOf: [0, 0, 0, 0])
        try handle.close()
        XCTAssertTrue(try run("model", "info", "smol-heads.gguf").output.contains("cannot run it: smol-heads.gguf: llama.attention.head_count is 0"))
        let predict = try run("predict", "--model", heads, "--dataset", "test.csv", "--name", "heads", status: 1).output
        XCTAssertEqual(predict.split(separator: "\n").count, 1, predict)
        XCTAssertTrue(predict.contains("gemma3.attention.head_count is 0"), predict)
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
        try assertRefused("predict", "--model", smol, "--adapter", "no-such-folder", "--dataset", "test.csv", "--name", "wrong", says: "no-such-folder: no such adapter")
    }

    func testBadModelIsRefused() throws {
        try assertRefused("predict", "--model", "missing.gguf", "--dataset", "test.csv", "--name", "x", says: "missing.gguf: cannot open")
        try assertRefused("predict", "--model", try DefaultModels.path(DefaultModels.smolLM), "--dataset", "test.csv", "--name", "x", "--gold", "run.csv", says: "run.csv")
        try write("not-a-model.gguf", "GGUF")
        try assertRefused("predict", "--model", "not-a-model.gguf", "--dataset", "test.csv", "--name", "x", says: "not-a-model.gguf")
    }
}
