import Foundation
import GGUF
import TestSupport
import XCTest

extension WorkspaceTestCase {
    /// The fixture's tiny llama (random F32 weights) with a vocabulary `predict` can
    /// score with, written into the workspace as `name` after `change` edits it.
    @discardableResult
    func tinyLlama(_ name: String, change: (inout GGUFWriter) -> Void = { _ in }) throws -> String {
        let (vocabulary, models) = try TinyModelSpec.fixture()
        var writer = models.first { $0.architecture == "llama" }!.writer(vocabulary: vocabulary, scorable: true)
        change(&writer)
        try writer.write(to: root.appendingPathComponent(name).path)
        return name
    }
}

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
        func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            bytes.append(contentsOf: s.utf8)
        }
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            u32(8)
            string(value)
        }
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
        try writeHeader(
            "huge.gguf", metadata: [("general.architecture", "llama"), ("general.name", name)],
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
        XCTAssertTrue(
            try run("model", "info", heads).output.contains("engine          cannot run it: heads.gguf: gemma3.attention.head_count is 0"))
        // SmolLM2 has no key_length: its head size would be embedding_length / 0.
        let smol = root.appendingPathComponent("smol-heads.gguf")
        try FileManager.default.copyItem(atPath: try DefaultModels.path(DefaultModels.smolLM), toPath: smol.path)
        let handle = try FileHandle(forWritingTo: smol)
        try handle.seek(toOffset: 643) // llama.attention.head_count
        try handle.write(contentsOf: [0, 0, 0, 0])
        try handle.close()
        XCTAssertTrue(
            try run("model", "info", "smol-heads.gguf").output.contains("cannot run it: smol-heads.gguf: llama.attention.head_count is 0"))
        let predict = try run("predict", "--model", heads, "--dataset", "test.csv", "--name", "heads", status: 1).output
        XCTAssertEqual(predict.split(separator: "\n").count, 1, predict)
        XCTAssertTrue(predict.contains("gemma3.attention.head_count is 0"), predict)
    }

    /// model info said "can run it" of a file whose eos id is past its vocabulary, which
    /// predict then refused: both now run the same checks and say the same words.
    func testInfoSaysWhatPredictSaysOfATokenIdOutsideTheVocabulary() throws {
        let model = try tinyLlama("eos.gguf") { $0.set("tokenizer.ggml.eos_token_id", .uint32(96)) }
        let reason = "eos.gguf: tokenizer.ggml.eos_token_id is 96, not a token id of the vocabulary (0 to 95)"
        // The table's label column is as wide as its widest label.
        func engineLine(_ info: String) -> String {
            info.split(separator: "\n").first { $0.hasPrefix("engine ") }.map { $0.drop { $0 != " " }.drop { $0 == " " } }.map(String.init)
                ?? info
        }
        XCTAssertEqual(engineLine(try run("model", "info", model).output), "cannot run it: \(reason)")
        try assertRefused("predict", "--model", model, "--dataset", "test.csv", "--name", "eos", says: reason)
        // The last token is a token.
        let last = try tinyLlama("last.gguf") { $0.set("tokenizer.ggml.eos_token_id", .uint32(95)) }
        XCTAssertEqual(engineLine(try run("model", "info", last).output), "can run it")
        XCTAssertTrue(
            try run("predict", "--model", last, "--dataset", "test.csv", "--name", "last").output.contains("Stored last@v1: 3 items"))
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
        try assertRefused(
            "predict", "--model", smol, "--dataset", "long.csv", "--name", "tiny", "--max-tokens", "100",
            says: "even without its passage, more than --max-tokens 100")
    }

    /// Questions on one passage are scored one after another, reusing the passage's keys
    /// and values, even where the file interleaves them; the rows keep the file's order.
    func testPassagesAreReusedAndRowsKeepTheirOrder() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        let passage = "조선 후기에는 상품 화폐 경제가 발달하면서 도시의 상업 활동이 활발해졌다."
        try write(
            "shared.csv",
            """
            id,paragraph,problems
            a1,\(passage),"{'question': '윗글의 중심 화제는?', 'choices': ['상업', '농업', '어업', '공업']}"
            b1,다른 지문이다.,"{'question': '무엇인가?', 'choices': ['가', '나', '다', '라']}"
            a2,\(passage),"{'question': '윗글과 일치하는 것은?', 'choices': ['도시', '농촌', '바다', '산']}"

            """)
        let output = try run("predict", "--model", smol, "--dataset", "shared.csv", "--name", "shared").output
        // Every prompt starts with the same ~55 template tokens; a2 after a1 also reuses
        // the passage (213 in all here; 110 if a2 followed b1).
        let reused = try XCTUnwrap(
            output.split(separator: "\n").first { $0.contains("prompt tokens were reused") }.flatMap { Int($0.prefix { $0 != " " }) })
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
        let output = try run("predict", "--model", smol, "--adapter", adapter("smollm2-sample"), "--dataset", "test.csv", "--name", "lora")
            .output
        XCTAssertTrue(output.contains("Stored lora@v1: 3 items with logits"), output)
        let show = try run("show", "lora").output
        XCTAssertTrue(show.contains("\"adapterSha256\" : \""), show)
        XCTAssertTrue(show.contains("smollm2-sample"), show)
        let base = try String(contentsOf: root.appendingPathComponent("predictions/base@v1.csv"), encoding: .utf8)
        let adapted = try String(contentsOf: root.appendingPathComponent("predictions/lora@v1.csv"), encoding: .utf8)
        XCTAssertNotEqual(base, adapted, "the adapter changed no logit")
        // An adapter for another base model (Gemma 3 sizes) is refused before any write.
        try assertRefused(
            "predict", "--model", smol, "--adapter", adapter("tiny-gemma3"), "--dataset", "test.csv", "--name", "wrong",
            says: "is the adapter for another base model?")
        try assertRefused(
            "predict", "--model", smol, "--adapter", "no-such-folder", "--dataset", "test.csv", "--name", "wrong",
            says: "no-such-folder: no such adapter")
    }

    /// A copy of an adapter fixture with the F16 value `index` of `tensor` set to `bits`.
    func adapterCopy(_ name: String, of fixture: String, tensor: String, index: Int, bits: UInt16) throws -> String {
        try FileManager.default.copyItem(atPath: adapter(fixture), toPath: root.appendingPathComponent(name).path)
        let url = root.appendingPathComponent(name).appendingPathComponent("adapter_model.safetensors")
        let data = try Data(contentsOf: url)
        let headerLength = data.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        let header = try JSONSerialization.jsonObject(with: data[8..<8 + headerLength]) as! [String: Any]
        let entry = try XCTUnwrap(header[tensor] as? [String: Any])
        XCTAssertEqual(entry["dtype"] as? String, "F16")
        let start = (entry["data_offsets"] as! [Int])[0]
        let handle = try FileHandle(forWritingTo: url)
        try handle.seek(toOffset: UInt64(8 + headerLength + start + 2 * index))
        try handle.write(contentsOf: withUnsafeBytes(of: bits.littleEndian) { Data($0) })
        try handle.close()
        return name
    }

    /// An adapter holding NaN gave a set of empty logits answering 1 everywhere; it is
    /// refused where adapters are read, by predict and merge alike, naming the tensor.
    func testAnAdapterHoldingNaNIsRefused() throws {
        let smol = try DefaultModels.path(DefaultModels.smolLM)
        let tensor = "base_model.model.model.layers.15.self_attn.q_proj.lora_B.weight"
        let nan = try adapterCopy("nan-adapter", of: "smollm2-sample", tensor: tensor, index: 7, bits: 0x7E00)
        let reason = "nan-adapter/adapter_model.safetensors: tensor \(tensor) holds nan (value 7 of 1152)"
        try assertRefused("predict", "--model", smol, "--adapter", nan, "--dataset", "test.csv", "--name", "nan", says: reason)
        XCTAssertTrue(
            try run("model", "merge", "--base", smol, "--adapter", nan, "--out", "merged.gguf", status: 1).output.contains(reason))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("merged.gguf").path))
        let infinite = try adapterCopy("inf-adapter", of: "smollm2-sample", tensor: tensor, index: 0, bits: 0xFC00)
        try assertRefused(
            "predict", "--model", smol, "--adapter", infinite, "--dataset", "test.csv", "--name", "inf",
            says: "tensor \(tensor) holds -inf (value 0 of 1152)")
    }

    /// A NaN in the model's weights (every item's logits NaN) stops predict at the first
    /// item; one in the embedding row of a character only the third item has stops it
    /// there, the two items before kept in the run for the same command to resume.
    /// Neither stores a set.
    func testANaNLogitStopsPredictNamingTheItem() throws {
        try write(
            "three.csv",
            """
            id,paragraph,problems
            a1,x,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd']}"
            a2,y,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd']}"
            a3,Z,"{'question': 'q', 'choices': ['a', 'b', 'c', 'd']}"

            """)
        let (vocabulary, models) = try TinyModelSpec.fixture()
        let spec = models.first { $0.architecture == "llama" }!
        func withNaN(_ tensor: String, at index: Int) -> (inout GGUFWriter) -> Void {
            { writer in
                var values = spec.values(of: tensor)
                values[index] = .nan
                let position = writer.tensors.firstIndex { $0.name == tensor }!
                writer.tensors[position] = GGUFWriter.Tensor(name: tensor, dimensions: writer.tensors[position].dimensions, values: values)
            }
        }
        XCTAssertTrue(
            try run("predict", "--model", try tinyLlama("tiny.gguf"), "--dataset", "three.csv", "--name", "tiny").output.contains(
                "Stored tiny@v1: 3 items"))
        let weight = try tinyLlama("weight.gguf", change: withNaN("blk.0.attn_q.weight", at: 100))
        let stopped = try run("predict", "--model", weight, "--dataset", "three.csv", "--name", "weight", status: 1).output
        XCTAssertTrue(stopped.contains("Error: item a1: the model's answer logits are nan, nan, nan, nan, not finite numbers"), stopped)
        let z = TinyModelSpec.scorableTokens(count: vocabulary).firstIndex(of: "Z")!
        let embedding = try tinyLlama("embedding.gguf", change: withNaN("token_embd.weight", at: z * 64))
        let third = try run("predict", "--model", embedding, "--dataset", "three.csv", "--name", "embedding", status: 1).output
        XCTAssertTrue(third.contains("Error: item a3: the model's answer logits are nan"), third)
        let again = try run("predict", "--model", embedding, "--dataset", "three.csv", "--name", "embedding", status: 1).output
        XCTAssertTrue(again.contains("Resuming embedding: 2 of 3 items were scored before.") && again.contains("Error: item a3: "), again)
        XCTAssertEqual(try exportedFiles().keys.sorted(), ["predictions/tiny@v1.csv"])
        XCTAssertFalse(try run("list").output.contains("embedding"))
    }

    func testBadModelIsRefused() throws {
        try assertRefused("predict", "--model", "missing.gguf", "--dataset", "test.csv", "--name", "x", says: "missing.gguf: cannot open")
        try assertRefused(
            "predict", "--model", try DefaultModels.path(DefaultModels.smolLM), "--dataset", "test.csv", "--name", "x", "--gold", "run.csv",
            says: "run.csv")
        try write("not-a-model.gguf", "GGUF")
        try assertRefused("predict", "--model", "not-a-model.gguf", "--dataset", "test.csv", "--name", "x", says: "not-a-model.gguf")
    }
}
