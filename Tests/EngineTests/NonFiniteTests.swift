import Foundation
import GGUF
import TestSupport
import XCTest

@testable import Engine

/// NaN and infinite values (the hardening issue): an adapter holding one is refused
/// where adapters are read, naming the tensor; a model that gives a non-finite answer
/// logit stops the scorer, naming the item.
final class NonFiniteTests: XCTestCase {
    func temporaryFolder() throws -> URL {
        let folder = try makeTemporaryFolder("non-finite")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    func tinyLlama() throws -> (spec: TinyModelSpec, vocabulary: Int) {
        let (vocabulary, models) = try TinyModelSpec.fixture()
        return (models.first { $0.architecture == "llama" }!, vocabulary)
    }

    /// The tiny llama's PEFT adapter fixture.
    var fixtureAdapter: String { Bundle.module.url(forResource: "Fixtures/adapters/tiny-llama", withExtension: nil)!.path }

    /// NaN and ±Inf are refused, in a PEFT folder and in an adapter GGUF, with the tensor
    /// named; -0.0 and a subnormal are numbers like any other.
    func testAdapterValuesMustBeFinite() throws {
        let folder = try temporaryFolder()
        let (spec, vocabulary) = try tinyLlama()
        let modelPath = try spec.write(vocabulary: vocabulary, in: folder)
        let config = try Model(path: modelPath).config
        let adapted = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"
        let weights = try Safetensors(path: (fixtureAdapter as NSString).appendingPathComponent(PEFT.weightsFile)).tensors
        XCTAssertNotNil(weights[adapted], "the fixture adapts layer 1's v")
        let cases: [(label: String, value: Float, says: String?)] = [
            ("NaN", .nan, "holds nan (value 3 of"), ("+Inf", .infinity, "holds inf (value 3 of"),
            ("-Inf", -.infinity, "holds -inf (value 3 of"),
            ("-0.0", -0.0, nil), ("subnormal", .leastNonzeroMagnitude, nil)
        ]
        for (label, value, says) in cases {
            // A PEFT folder: the fixture's tensors in F32, one value changed.
            let peft = folder.appendingPathComponent("peft-\(label)")
            try FileManager.default.createDirectory(at: peft, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: (fixtureAdapter as NSString).appendingPathComponent(PEFT.configFile),
                toPath: peft.appendingPathComponent(PEFT.configFile).path)
            try Safetensors.write(
                weights.map { name, tensor in
                    var values = tensor.values
                    if name == adapted { values[3] = value }
                    return (name: name, shape: tensor.shape, values: values)
                }, to: peft.appendingPathComponent(PEFT.weightsFile))
            // The same adapter as llama.cpp's GGUF, one value of the same tensor changed.
            let gguf = folder.appendingPathComponent("\(label).lora.gguf").path
            var writer = try LoRAAdapter(folder: fixtureAdapter).ggufWriter(config: config, base: ("tiny", "0"))
            let index = writer.tensors.firstIndex { $0.name == "blk.1.attn_v.weight.lora_b" }!
            let tensor = writer.tensors[index]
            var values = try tensor.data().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            values[3] = value
            writer.tensors[index] = GGUFWriter.Tensor(name: tensor.name, dimensions: tensor.dimensions, values: values)
            try writer.write(to: gguf)

            for (path, name) in [(peft.path, adapted), (gguf, "blk.1.attn_v.weight.lora_b")] {
                if let says {
                    XCTAssertThrowsError(try LoRAAdapter(path: path), "\(label) in \(path)") { error in
                        let message = "\(error)"
                        XCTAssertTrue(message.contains(path) && message.contains("tensor \(name) \(says)"), "\(label): \(message)")
                    }
                } else {
                    let model = try Model(path: modelPath, adapter: try LoRAAdapter(path: path))
                    let logits = model.logits(try model.forwardToFinalHidden([1, 2, 3]), tokens: (0..<Int32(vocabulary)).map { $0 })
                    XCTAssertTrue(logits.allSatisfy(\.isFinite), "\(label) in \(path)")
                }
            }
        }
    }

    /// The tiny llama with a vocabulary the scorer takes, its tensors changed by `change`.
    func scorableLlama(in folder: URL, _ change: (TinyModelSpec, inout GGUFWriter) -> Void) throws -> String {
        let (spec, vocabulary) = try tinyLlama()
        var writer = spec.writer(vocabulary: vocabulary, scorable: true)
        change(spec, &writer)
        let path = folder.appendingPathComponent("changed-\(UUID()).gguf").path
        try writer.write(to: path)
        return path
    }

    /// Value `index` of a float32 tensor set to NaN.
    func nan(_ tensor: String, at index: Int) -> (TinyModelSpec, inout GGUFWriter) -> Void {
        { spec, writer in
            var values = spec.values(of: tensor)
            values[index] = .nan
            let position = writer.tensors.firstIndex { $0.name == tensor }!
            writer.tensors[position] = GGUFWriter.Tensor(name: tensor, dimensions: writer.tensors[position].dimensions, values: values)
        }
    }

    /// A NaN in one layer's norm alone is refused at load, naming the tensor: q8's
    /// activation quantisation would turn the NaN it makes into a code, and the answers
    /// would be quietly wrong.
    func testANaNInANormIsRefusedAtLoad() throws {
        let path = try scorableLlama(in: try temporaryFolder(), nan("blk.1.ffn_norm.weight", at: 5))
        for precision in [Precision.f32, .q8, .auto] {
            XCTAssertThrowsError(try Model(path: path, precision: precision), "\(precision)") { error in
                XCTAssertEqual("\(error)", "\(path): tensor blk.1.ffn_norm.weight holds nan (value 5 of 64), not a finite number")
            }
        }
    }

    /// A NaN in a float32 weight, or in a Q8_0 block's scale (run in its codes), makes
    /// every answer logit NaN: the scorer stops at the item, naming it.
    func testANaNLogitStopsTheScorer() throws {
        let folder = try temporaryFolder()
        let float = try scorableLlama(in: folder, nan("blk.0.attn_q.weight", at: 100))
        let quantised = try scorableLlama(in: folder) { spec, writer in
            writer.tensors = writer.tensors.map { tensor in
                guard tensor.name.hasPrefix("blk."), tensor.dimensions.count == 2 else { return tensor }
                var codes = GGMLType.q8_0.quantize(spec.values(of: tensor.name))!
                // The first block's fp16 scale: a NaN.
                if tensor.name == "blk.1.ffn_down.weight" { codes.replaceSubrange(0..<2, with: [0x00, 0x7E]) }
                return GGUFWriter.Tensor(name: tensor.name, dimensions: tensor.dimensions, type: .q8_0, data: codes)
            }
        }
        for (path, precision) in [(float, Precision.auto), (quantised, .auto), (quantised, .f32)] {
            let scorer = try Scorer(model: try Model(path: path, precision: precision))
            var cache = PrefixCache()
            XCTAssertThrowsError(
                try scorer.answerLogits(scorer.tokenizer.encode("1 2 3 4 ABC"), choices: 4, cache: &cache, item: "Q-17"),
                "\(path), \(precision)"
            ) { error in
                XCTAssertTrue(
                    "\(error)".hasPrefix("item Q-17: the model's answer logits are nan, nan, nan, nan, not finite numbers"), "\(error)")
            }
        }
    }
}
