import Foundation
import GGUF
import TestSupport
import Tokenizer
import XCTest

@testable import Engine

/// Every family on a tiny random model, against transformers in float32 and llama.cpp
/// (fixture and weight recipe from scripts/reference/tiny_models.py; the GGUF is written
/// here by our own writer from the same generator).
final class TinyModelTests: XCTestCase {
    struct Fixture: Decodable {
        struct Model: Decodable {
            var architecture: String
            /// transformers' float32 logits, and llama.cpp's.
            var logits: [Float]
            var llama_logits: [Float]
        }
        var tokens: [Int32]
        var vocabulary: Int
        var models: [Model]
    }

    func loadFixture() throws -> Fixture {
        let url = Bundle.module.url(forResource: "Fixtures/tiny_models", withExtension: "json")!
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    /// The tiny model of `spec`, written with our GGUF writer into `folder`.
    func writeModel(_ spec: Fixture.Model, vocabulary: Int, in folder: URL) throws -> String {
        // The same entries read again, as the recipe.
        struct Specs: Decodable { var models: [TinyModelSpec] }
        let url = Bundle.module.url(forResource: "Fixtures/tiny_models", withExtension: "json")!
        let specs = try JSONDecoder().decode(Specs.self, from: Data(contentsOf: url)).models
        return try specs.first { $0.architecture == spec.architecture }!.write(vocabulary: vocabulary, in: folder)
    }

    func temporaryFolder() throws -> URL {
        let folder = try makeTemporaryFolder("tiny")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    /// The largest difference from the reference, relative to its largest logit.
    func compare(
        _ model: Model, tokens: [Int32], vocabulary: Int, reference: [Float], _ what: String, from source: String = "transformers",
        tolerance: Float = 1e-4
    ) throws {
        let logits = model.logits(try model.forwardToFinalHidden(tokens), tokens: (0..<Int32(vocabulary)).map { $0 })
        let scale = reference.map(abs).max()!
        let worst = zip(logits, reference).map { abs($0 - $1) }.max()!
        print("\(what): largest logit difference from \(source) \(worst) (largest logit \(scale))")
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(what): relative difference from \(source)")
    }

    func testEveryFamilyMatchesTransformers() throws {
        let fixture = try loadFixture()
        let folder = try temporaryFolder()
        XCTAssertEqual(Set(fixture.models.map(\.architecture)), Set(ModelConfig.supportedArchitectures))
        for spec in fixture.models {
            let model = try Model(path: try writeModel(spec, vocabulary: fixture.vocabulary, in: folder))
            try compare(model, tokens: fixture.tokens, vocabulary: fixture.vocabulary, reference: spec.logits, spec.architecture)
            // llama.cpp's GELU reads a half-precision table: Gemma's logits differ from
            // transformers' by ~1e-4 of the largest there (measured 1.5e-3 of 13.5).
            let gelu = model.config.family.gelu
            try compare(
                model, tokens: fixture.tokens, vocabulary: fixture.vocabulary, reference: spec.llama_logits, spec.architecture,
                from: "llama.cpp",
                tolerance: gelu ? 2e-4 : 1e-4)
        }
    }

    /// A prompt run after another reuses the keys and values of their shared prefix and
    /// gives what it gives alone (Gemma 3's window of 8 crosses the reused part).
    /// The template comes from the family table where the family has one, else from
    /// the file's own template.
    func testFamiliesChooseTheChatTemplate() throws {
        let path = try temporaryFolder().appendingPathComponent("template.gguf").path
        for (architecture, expected) in [
            ("exaone", ChatTemplate.exaone3), ("qwen3", .chatml), ("gemma2", .gemma), ("llama", .llama3), ("unknown", .llama3)
        ] {
            var writer = GGUFWriter()
            writer.set("general.architecture", .string(architecture))
            writer.set("tokenizer.chat_template", .string("{{ '<|start_header_id|>' + message['role'] }}"))
            try writer.write(to: path)
            XCTAssertEqual(Family.chatTemplate(of: try GGUFFile(path: path)), expected, architecture)
        }
        // The default Gemma's file carries no template of its own.
        let gemma = try GGUFFile(path: try DefaultModels.path(DefaultModels.gemma))
        XCTAssertEqual(ChatTemplate.detect(gemma), .plain)
        XCTAssertEqual(Family.chatTemplate(of: gemma), .gemma)
    }

    func testReusedPrefixGivesTheSameLogits() throws {
        let fixture = try loadFixture()
        let folder = try temporaryFolder()
        let all = (0..<Int32(fixture.vocabulary)).map { $0 }
        for spec in fixture.models {
            let model = try Model(path: try writeModel(spec, vocabulary: fixture.vocabulary, in: folder))
            let first = fixture.tokens
            let cases: [([Int32], Int)] = [
                (Array(first.prefix(16)) + [5, 9, 11, 2, 40, 41, 3, 8], 16), // same passage, another question
                (first, first.count - 1), // the same prompt: the last position is recomputed
                (Array(first.prefix(10)), 9), // a prefix of the one before
                ([1, 2, 3], 0) // nothing shared
            ]
            for (second, expectedReuse) in cases {
                var cache = PrefixCache()
                _ = try model.forwardToFinalHidden(first, cache: &cache)
                let reused = model.logits(try model.forwardToFinalHidden(second, cache: &cache), tokens: all)
                XCTAssertEqual(cache.reused, expectedReuse, "\(spec.architecture)")
                let alone = model.logits(try model.forwardToFinalHidden(second), tokens: all)
                let worst = zip(reused, alone).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-4 * alone.map(abs).max()!, "\(spec.architecture), \(expectedReuse) reused")
            }
        }
    }

    struct AdapterFixture: Decodable {
        struct Model: Decodable { var architecture: String, adapter: String, logits: [Float] }
        var models: [Model]
    }

    func adapterFolder(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!.path
    }

    /// PEFT adapters (F32, F16 and BF16 tensors, rsLoRA, llama's permuted q and k) on
    /// every family, against transformers + PEFT (scripts/reference/lora_fixtures.py).
    func testAdaptersMatchPEFT() throws {
        let fixture = try loadFixture()
        let adapters = try JSONDecoder().decode(
            AdapterFixture.self, from: Data(contentsOf: Bundle.module.url(forResource: "Fixtures/tiny_adapters", withExtension: "json")!))
        XCTAssertEqual(Set(adapters.models.map(\.architecture)), Set(ModelConfig.supportedArchitectures))
        let folder = try temporaryFolder()
        for expected in adapters.models {
            let spec = try XCTUnwrap(fixture.models.first { $0.architecture == expected.architecture })
            let path = try writeModel(spec, vocabulary: fixture.vocabulary, in: folder)
            let adapter = try LoRAAdapter(folder: adapterFolder(expected.adapter))
            let model = try Model(path: path, adapter: adapter)
            try compare(
                model, tokens: fixture.tokens, vocabulary: fixture.vocabulary, reference: expected.logits,
                "\(expected.architecture) with its adapter")
            // The adapter must matter: without it the logits are the base model's.
            let base = try Model(path: path)
            let change = zip(base.logits(try base.forwardToFinalHidden(fixture.tokens), tokens: [0, 1, 2]), expected.logits).map {
                abs($0 - $1)
            }
            .max()!
            XCTAssertGreaterThan(change, 0.01, "\(expected.architecture): the adapter changes nothing")
        }
    }

    struct ConvertedFixture: Decodable {
        struct Model: Decodable {
            var architecture: String, adapter: String, converted: String, use_rslora: Bool
            var llama_logits_lora: [Float]
        }
        var tiny: [Model]
    }

    /// The adapter GGUFs llama.cpp's converter made of the PEFT folders
    /// (scripts/reference/gguf_lora_fixtures.py), on every family: llama.cpp's logits with
    /// them, and the folders' where the scale means the same (the converter writes PEFT's
    /// alpha even for rsLoRA, so there llama.cpp and we scale by alpha/r). Gemma's gap
    /// is llama.cpp's half-precision GELU table, grown by the adapter's activations.
    func testConvertedAdaptersMatchLlamaCpp() throws {
        let fixture = try loadFixture()
        let converted = try JSONDecoder().decode(
            ConvertedFixture.self, from: Data(contentsOf: Bundle.module.url(forResource: "Fixtures/gguf_lora", withExtension: "json")!))
        XCTAssertEqual(Set(converted.tiny.map(\.architecture)), Set(ModelConfig.supportedArchitectures))
        let folder = try temporaryFolder()
        for expected in converted.tiny {
            let spec = try XCTUnwrap(fixture.models.first { $0.architecture == expected.architecture })
            let path = try writeModel(spec, vocabulary: fixture.vocabulary, in: folder)
            let file = try LoRAAdapter(path: adapterFolder("adapters/\(expected.converted)"))
            let model = try Model(path: path, adapter: file)
            try compare(
                model, tokens: fixture.tokens, vocabulary: fixture.vocabulary, reference: expected.llama_logits_lora,
                "\(expected.architecture) with llama.cpp's converted adapter",
                from: "llama.cpp", tolerance: model.config.family.gelu ? 5e-4 : 1e-4)
            guard !expected.use_rslora else { continue }
            let byFolder = try Model(path: path, adapter: try LoRAAdapter(folder: adapterFolder(expected.adapter)))
            let all = (0..<Int32(fixture.vocabulary)).map { $0 }
            let a = model.logits(try model.forwardToFinalHidden(fixture.tokens), tokens: all),
                b = byFolder.logits(try byFolder.forwardToFinalHidden(fixture.tokens), tokens: all)
            XCTAssertLessThanOrEqual(
                zip(a, b).map { abs($0 - $1) }.max()!, 1e-5 * b.map(abs).max()!, "\(expected.architecture): converted GGUF vs PEFT folder")
        }
    }

    func testAdapterProblemsAreNamed() throws {
        let fixture = try loadFixture()
        let folder = try temporaryFolder()
        let llama = try writeModel(fixture.models.first { $0.architecture == "llama" }!, vocabulary: fixture.vocabulary, in: folder)
        // An adapter for another base model: Gemma 3's q projection is 64 → 256.
        let gemma = try LoRAAdapter(folder: adapterFolder("adapters/tiny-gemma3"))
        XCTAssertThrowsError(try Model(path: llama, adapter: gemma)) { error in
            XCTAssertTrue("\(error)".contains("another base model"), "\(error)")
        }
        // A truncated weights file, a missing folder, a config that is not LoRA.
        let broken = folder.appendingPathComponent("broken")
        try FileManager.default.copyItem(atPath: adapterFolder("adapters/tiny-llama"), toPath: broken.path)
        let weights = broken.appendingPathComponent("adapter_model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count - 100).write(to: weights)
        XCTAssertThrowsError(try LoRAAdapter(folder: broken.path)) { error in
            XCTAssertTrue("\(error)".contains("adapter_model.safetensors") && "\(error)".contains("truncated"), "\(error)")
        }
        XCTAssertThrowsError(try LoRAAdapter(folder: folder.appendingPathComponent("absent").path)) { error in
            XCTAssertTrue("\(error)".contains("adapter_config.json"), "\(error)")
        }
        try Data(#"{"peft_type": "PREFIX_TUNING", "r": 4, "lora_alpha": 8}"#.utf8).write(
            to: broken.appendingPathComponent("adapter_config.json"))
        XCTAssertThrowsError(try LoRAAdapter(folder: broken.path)) { error in
            XCTAssertTrue("\(error)".contains("PREFIX_TUNING"), "\(error)")
        }
    }
}
