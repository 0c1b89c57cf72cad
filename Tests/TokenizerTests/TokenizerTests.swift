import Foundation
import GGUF
import TestSupport
import XCTest

@testable import Tokenizer

final class TokenizerTests: XCTestCase {
    func write(_ writer: GGUFWriter) throws -> GGUFFile {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID()).gguf").path
        try writer.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try GGUFFile(path: path)
    }

    func vocabulary(model: String, pre: String? = nil) -> GGUFWriter {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("tokenizer.ggml.model", .string(model))
        if let pre { writer.set("tokenizer.ggml.pre", .string(pre)) }
        writer.set("tokenizer.ggml.tokens", .array(.string, ["a", "b", "ab"].map { .string($0) }))
        writer.set("tokenizer.ggml.merges", .array(.string, [.string("a b")]))
        return writer
    }

    func testUnsupportedTokenizersAreNamed() throws {
        XCTAssertThrowsError(try Tokenizer(gguf: try write(vocabulary(model: "bert")))) { error in
            XCTAssertTrue("\(error)".contains("tokenizer model 'bert' is not supported (supported: llama, gpt2)"), "\(error)")
        }
        XCTAssertThrowsError(try Tokenizer(gguf: try write(vocabulary(model: "gpt2", pre: "tekken")))) { error in
            XCTAssertTrue("\(error)".contains("pre-tokenizer 'tekken' is not supported"), "\(error)")
        }
        var missing = GGUFWriter()
        missing.set("general.architecture", .string("llama"))
        XCTAssertThrowsError(try Tokenizer(gguf: try write(missing))) { error in
            XCTAssertTrue("\(error)".contains("has no tokenizer"), "\(error)")
        }
    }

    func testTinyBPEMergesByRank() throws {
        let tokenizer = try Tokenizer(gguf: try write(vocabulary(model: "gpt2", pre: "smollm")))
        XCTAssertEqual(tokenizer.encode("abab"), [2, 2])
        XCTAssertEqual(tokenizer.encode("ba"), [1, 0])
        XCTAssertEqual(tokenizer.decode([2, 1]), "abb")
    }

    func testDecodeRoundTripsOnDefaultModels() throws {
        for name in [DefaultModels.gemma, DefaultModels.smolLM] {
            let tokenizer = try Tokenizer(gguf: try GGUFFile(path: try DefaultModels.path(name)))
            for text in ["지문:\n상소하여 아뢰기를, “신이 …”\n\n1 - ㄱ, ㄴ", "emoji 😀 and  two  spaces", "漢字 ㉠ ‘quote’"] {
                XCTAssertEqual(tokenizer.decode(tokenizer.encode(text)), text, name)
            }
        }
    }

    func testTemplatesAndDetection() throws {
        XCTAssertEqual(
            ChatTemplate.gemma.render(system: "S", user: "U"), "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n")
        XCTAssertEqual(
            ChatTemplate.chatml.render(system: "S", user: "U"),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(ChatTemplate.detect(try GGUFFile(path: try DefaultModels.path(DefaultModels.smolLM))), .chatml)
        var writer = vocabulary(model: "gpt2", pre: "llama-bpe")
        writer.set("tokenizer.chat_template", .string("{{ '<|start_header_id|>' + message['role'] }}"))
        XCTAssertEqual(ChatTemplate.detect(try write(writer)), .llama3)
        // A family's own template (Engine's Family table) wins over the markers.
        XCTAssertEqual(ChatTemplate.detect(try write(writer), family: .exaone3), .exaone3)
    }

    /// Every template's special markers are single tokens where the model has them.
    func testTemplateMarkersAreSingleTokens() throws {
        let gemma = try Tokenizer(gguf: try GGUFFile(path: try DefaultModels.path(DefaultModels.gemma)))
        XCTAssertEqual(gemma.encode("<start_of_turn>user\n"), [105, 2364, 107])
        let smol = try Tokenizer(gguf: try GGUFFile(path: try DefaultModels.path(DefaultModels.smolLM)))
        XCTAssertEqual(smol.encode("<|im_start|>assistant\n").first, 1)
    }
}
