import Crypto
import Exam
import Foundation
import GGUF
import TestSupport
import XCTest

@testable import Tokenizer

/// Tokenization against llama.cpp (fixtures from scripts/reference/tokenizer_fixtures.py).
final class TokenizerReferenceTests: XCTestCase {
    struct Reference: Decodable {
        struct Item: Decodable {
            var file: String
            var id: String
            var variant: String
        }
        struct Summary: Decodable {
            var count: Int
            var head: [Int32]
            var sha256: String
        }
        struct Model: Decodable {
            var template: String
            var items: [Summary]
            var edge: [[Int32]]
            var edge_add_bos: [[Int32]]
            var edge_no_special: [[Int32]]
        }
        var items: [Item]
        var edge: [String]
        var models: [String: Model]
        var pretokenizers: [String: [[Int32]]]
        var space_prefix: [[Int32]]
    }

    static let reference: Reference = {
        let url = Bundle.module.url(forResource: "Fixtures/tokenizer_reference", withExtension: "json")!
        return try! JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }()

    static let sharedData = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data")

    func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(gguf: try GGUFFile(path: try DefaultModels.path(name)))
    }

    func testEdgeCasesMatchLlamaCpp() throws {
        for name in [DefaultModels.gemma, DefaultModels.smolLM] {
            let tokenizer = try tokenizer(name)
            let expected = try XCTUnwrap(Self.reference.models[name])
            var mismatches = 0
            for (index, text) in Self.reference.edge.enumerated() {
                let cases: [([Int32], [Int32], String)] = [
                    (tokenizer.encode(text), expected.edge[index], "special"),
                    (tokenizer.encode(text, addSpecial: true), expected.edge_add_bos[index], "add_bos"),
                    (tokenizer.encode(text, parseSpecial: false), expected.edge_no_special[index], "no special")
                ]
                for (got, want, mode) in cases where got != want {
                    mismatches += 1
                    XCTFail("\(name) \(mode) \(text.debugDescription): \(got) vs llama.cpp \(want)")
                }
            }
            print(
                "\(name): \(Self.reference.edge.count * 3 - mismatches) of \(Self.reference.edge.count * 3) edge-case tokenizations equal llama.cpp's"
            )
        }
    }

    /// The pre-tokenizers the default models do not use, on SmolLM2's vocabulary with
    /// tokenizer.ggml.pre changed (written by our GGUF writer, as the script does).
    func testOtherPreTokenizersMatchLlamaCpp() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pre-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (pre, expected) in Self.reference.pretokenizers.sorted(by: { $0.key < $1.key }) {
            let tokenizer = try copy(DefaultModels.smolLM, setting: "tokenizer.ggml.pre", to: .string(pre), in: folder)
            XCTAssertEqual(tokenizer.kind, .bytePairEncoding(PreTokenizer(name: pre)!))
            var equal = 0
            for (index, text) in Self.reference.edge.enumerated() {
                let ids = tokenizer.encode(text)
                if ids == expected[index] {
                    equal += 1
                } else {
                    XCTFail("\(pre) \(text.debugDescription): \(ids) vs llama.cpp \(expected[index])")
                }
            }
            print("pre-tokenizer \(pre): \(equal) of \(expected.count) edge cases equal llama.cpp's")
        }
    }

    /// A vocabulary-only copy of a model's metadata with one key changed.
    func copy(_ name: String, setting key: String, to value: GGUFValue, in folder: URL) throws -> Tokenizer {
        let source = try GGUFFile(path: try DefaultModels.path(name))
        var writer = GGUFWriter()
        for existing in source.metadataKeys { writer.set(existing, existing == key ? value : source.metadata[existing]!) }
        if source.metadata[key] == nil { writer.set(key, value) }
        let path = folder.appendingPathComponent("\(UUID()).gguf").path
        try writer.write(to: path)
        return try Tokenizer(gguf: try GGUFFile(path: path))
    }

    /// SentencePiece's add_space_prefix (off in Gemma) on a copy of Gemma's vocabulary.
    func testSpacePrefixMatchesLlamaCpp() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("space-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenizer = try copy(DefaultModels.gemma, setting: "tokenizer.ggml.add_space_prefix", to: .bool(true), in: folder)
        for (index, text) in Self.reference.edge.enumerated() {
            XCTAssertEqual(tokenizer.encode(text, addSpecial: true), Self.reference.space_prefix[index], text.debugDescription)
        }
    }

    func testRealItemPromptsMatchLlamaCpp() throws {
        guard FileManager.default.fileExists(atPath: Self.sharedData.path) else {
            throw XCTSkip("\(Self.sharedData.path) is absent: the real items are not beside this checkout")
        }
        var rows: [String: ExamItem] = [:]
        for file in ["train.csv", "test.csv"] {
            for item in try ExamSet.load(path: Self.sharedData.appendingPathComponent(file).path).items {
                rows["\(file)/\(item.id)"] = item
            }
        }
        for name in [DefaultModels.gemma, DefaultModels.smolLM] {
            let tokenizer = try tokenizer(name)
            let expected = try XCTUnwrap(Self.reference.models[name])
            let template = try XCTUnwrap(ChatTemplate(rawValue: expected.template))
            var equal = 0
            for (index, entry) in Self.reference.items.enumerated() {
                let item = try XCTUnwrap(rows["\(entry.file)/\(entry.id)"])
                let prompt = Prompt.baseline(item)
                let text =
                    switch entry.variant {
                    case "paragraph": item.paragraph
                    case "user": prompt.user
                    default: template.render(system: prompt.system, user: prompt.user)
                    }
                let ids = tokenizer.encode(text)
                let digest = SHA256.hash(data: Data(ids.map(String.init).joined(separator: ",").utf8)).map { String(format: "%02x", $0) }
                    .joined()
                let want = expected.items[index]
                if digest == want.sha256 {
                    equal += 1
                } else {
                    XCTFail(
                        "\(name) \(entry.file) \(entry.id) \(entry.variant): \(ids.count) tokens, first \(Array(ids.prefix(16))); llama.cpp \(want.count), first \(want.head)"
                    )
                }
            }
            print("\(name): \(equal) of \(Self.reference.items.count) real prompts tokenized exactly as llama.cpp")
        }
    }
}
