import Engine
import Foundation
import GGUF
import TestSupport
import XCTest

@testable import Training

/// llama.cpp's adapter GGUF, written by our exporter and read by our reader, on the
/// tiny random models of every family (llama's q and k rows change order on the way).
final class GGUFAdapterTests: XCTestCase {
    struct Specs: Decodable { var vocabulary: Int, tokens: [Int32], models: [TinyModelSpec] }

    func specs() throws -> Specs { try JSONDecoder().decode(Specs.self, from: Data(contentsOf: TinyTrainingTests.fixtureURL)) }

    func folder() throws -> URL {
        let folder = try makeTemporaryFolder("gguf-adapter")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    func peftFolder(_ architecture: String) -> String {
        Bundle.module.url(forResource: "Fixtures/adapters/tiny-\(architecture)", withExtension: nil)!.path
    }

    /// The PEFT folder exported as GGUF: the same weights back, the same scale, and the
    /// model with it gives the folder's logits.
    func testExportedAdapterGivesTheFolder_sLogits() throws {
        let specs = try specs(), folder = try folder()
        for spec in specs.models {
            let path = try spec.write(vocabulary: specs.vocabulary, in: folder)
            let config = try Model(path: path).config
            let peft = try LoRAAdapter(path: peftFolder(spec.architecture))
            let weights = try LoRAWeights(adapter: peft, config: config)
            let file = folder.appendingPathComponent("\(spec.architecture).lora.gguf").path
            try peft.ggufWriter(config: config, base: ("tiny-\(spec.architecture)", "sha")).write(to: file)
            let gguf = try LoRAAdapter(path: file)
            XCTAssertEqual(gguf.architecture, spec.architecture)
            XCTAssertEqual(gguf.scale, peft.scale, accuracy: 1e-6 * peft.scale, "\(spec.architecture): scale (rsLoRA: \(peft.rsLoRA))")
            XCTAssertEqual(try LoRAWeights(adapter: gguf, config: config).values, weights.values, "\(spec.architecture): the weights back")
            let tokens = (0..<Int32(specs.vocabulary)).map { $0 }
            let viaFolder = try Model(path: path, adapter: peft), viaFile = try Model(path: path, adapter: gguf)
            let a = viaFolder.logits(try viaFolder.forwardToFinalHidden(specs.tokens), tokens: tokens),
                b = viaFile.logits(try viaFile.forwardToFinalHidden(specs.tokens), tokens: tokens)
            let worst = zip(a, b).map { abs($0 - $1) }.max()!, largest = a.map(abs).max()!
            print("\(spec.architecture): GGUF adapter vs PEFT folder, largest logit difference \(worst) (largest logit \(largest))")
            XCTAssertLessThanOrEqual(worst, 1e-5 * largest, spec.architecture)
        }
    }

    /// Each refusal names the file and what is wrong, and loads nothing.
    func testRefusals() throws {
        let specs = try specs(), folder = try folder()
        let byName = Dictionary(uniqueKeysWithValues: specs.models.map { ($0.architecture, $0) })
        let llamaPath = try byName["llama"]!.write(vocabulary: specs.vocabulary, in: folder)
        let gemmaPath = try byName["gemma3"]!.write(vocabulary: specs.vocabulary, in: folder)
        let llama = try Model(path: llamaPath).config, gemma = try Model(path: gemmaPath).config
        func expect(_ what: String, _ phrase: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), what) { error in XCTAssertTrue("\(error)".contains(phrase), "\(what): \(error)") }
        }
        // An adapter made for another architecture.
        var writer = try LoRAAdapter(path: peftFolder("llama")).ggufWriter(config: llama, base: ("tiny", "sha"))
        writer.set("general.architecture", .string("qwen2"))
        let otherArchitecture = folder.appendingPathComponent("qwen2.lora.gguf").path
        try writer.write(to: otherArchitecture)
        expect("another architecture", "the adapter is for qwen2") {
            _ = try Model(path: llamaPath, adapter: try LoRAAdapter(path: otherArchitecture))
        }
        expect("another architecture, trainer", "the adapter is for qwen2") {
            _ = try LoRAWeights(adapter: try LoRAAdapter(path: otherArchitecture), config: llama)
        }
        // An adapter of the right architecture for another width (Gemma's q is 256 wide).
        writer = try LoRAAdapter(path: peftFolder("gemma3")).ggufWriter(config: gemma, base: ("tiny", "sha"))
        writer.set("general.architecture", .string("llama"))
        let otherWidth = folder.appendingPathComponent("wide.lora.gguf").path
        try writer.write(to: otherWidth)
        expect("another width", "is the adapter for another base model") {
            _ = try Model(path: llamaPath, adapter: try LoRAAdapter(path: otherWidth))
        }
        // An adapter passed as the model, and a model passed as the adapter.
        expect("adapter as the model", "is a LoRA adapter (general.type adapter), not a model") { _ = try Model(path: otherWidth) }
        expect("model as the adapter", "is not an adapter") { _ = try LoRAAdapter(path: llamaPath) }
        expect("no such adapter", "no such adapter") { _ = try LoRAAdapter(path: folder.appendingPathComponent("absent.gguf").path) }
    }

    /// Our export of a PEFT folder equals what llama.cpp's own converter
    /// (convert_lora_to_gguf.py, scripts/reference/gguf_lora_fixtures.py) made of it:
    /// every tensor's name, shape, type and bytes (llama's q and k rows permuted alike),
    /// and alpha, except that rsLoRA adapters get alpha·√r (the converter ignores
    /// use_rslora, so llama.cpp would scale them by alpha/r).
    func testExportEqualsLlamaCppConverter() throws {
        let engineFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "EngineTests/Fixtures")
        struct Converted: Decodable {
            struct Entry: Decodable { var architecture: String, adapter: String, converted: String, use_rslora: Bool }
            struct Real: Decodable { var model: String, adapter: String, converted: String }
            var tiny: [Entry], smollm2: Real
        }
        let converted = try JSONDecoder().decode(
            Converted.self, from: Data(contentsOf: engineFixtures.appendingPathComponent("gguf_lora.json")))
        let specs = try specs(), folder = try folder()
        var cases: [(name: String, config: ModelConfig, adapter: String, converted: String, rsLoRA: Bool)] = []
        for entry in converted.tiny {
            let spec = try XCTUnwrap(specs.models.first { $0.architecture == entry.architecture })
            cases.append(
                (
                    entry.architecture, try Model(path: try spec.write(vocabulary: specs.vocabulary, in: folder)).config, entry.adapter,
                    entry.converted, entry.use_rslora
                ))
        }
        if let smol = try? DefaultModels.path(converted.smollm2.model) {
            cases.append(
                ("SmolLM2", try ModelConfig(try GGUFFile(path: smol)), converted.smollm2.adapter, converted.smollm2.converted, false))
        } else {
            print("\(converted.smollm2.model) is absent (make models): only the tiny adapters were compared")
        }
        for item in cases {
            let peft = try LoRAAdapter(path: engineFixtures.appendingPathComponent(item.adapter).path)
            let ours = folder.appendingPathComponent("\(item.name).ours.gguf").path
            try peft.ggufWriter(config: item.config, base: ("base", "sha")).write(to: ours)
            let mine = try GGUFFile(path: ours),
                theirs = try GGUFFile(path: engineFixtures.appendingPathComponent("adapters/\(item.converted)").path)
            XCTAssertEqual(Set(mine.tensors.map(\.name)), Set(theirs.tensors.map(\.name)), item.name)
            for tensor in theirs.tensors {
                let same = try XCTUnwrap(mine.tensor(named: tensor.name), "\(item.name) \(tensor.name)")
                XCTAssertEqual(same.dimensions, tensor.dimensions, "\(item.name) \(tensor.name)")
                XCTAssertEqual(same.type, tensor.type, "\(item.name) \(tensor.name)")
                XCTAssertTrue(mine.data(of: same).elementsEqual(theirs.data(of: tensor)), "\(item.name) \(tensor.name): bytes")
            }
            for key in ["general.architecture", "general.type", "adapter.type"] {
                XCTAssertEqual(mine.metadata[key]?.string, theirs.metadata[key]?.string, "\(item.name) \(key)")
            }
            let alpha = try XCTUnwrap(theirs.metadata["adapter.lora.alpha"]?.double), rank = Double(peft.rank)
            XCTAssertEqual(
                try XCTUnwrap(mine.metadata["adapter.lora.alpha"]?.double), item.rsLoRA ? alpha * rank.squareRoot() : alpha,
                accuracy: 1e-5 * alpha, item.name)
        }
        print("our adapter GGUF equals llama.cpp's converter's for \(cases.map(\.name).joined(separator: ", "))")
    }
}
