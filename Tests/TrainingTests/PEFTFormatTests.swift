import Engine
import Foundation
import TestSupport
import XCTest
@testable import Training

final class PEFTFormatTests: XCTestCase {
    func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!.path
    }

    /// PEFT's adapters (every family; llama's q and k rows are permuted in between)
    /// read into our weights and saved again give PEFT's tensors back, by name, shape
    /// and value, and a config with the keys PEFT rebuilds the adapter from.
    func testSavedAdaptersAreWhatPEFTSaved() throws {
        struct Specs: Decodable { var vocabulary: Int, models: [TinyModelSpec] }
        let specs = try JSONDecoder().decode(Specs.self, from: Data(contentsOf: TinyTrainingTests.fixtureURL))
        let folder = try makeTemporaryFolder("peft-format")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        for spec in specs.models {
            let config = try Model(path: try spec.write(vocabulary: specs.vocabulary, in: folder)).config
            let original = fixture("adapters/tiny-\(spec.architecture)")
            let adapter = try LoRAAdapter(folder: original)
            let weights = try LoRAWeights(adapter: adapter, config: config)
            let saved = folder.appendingPathComponent("saved-\(spec.architecture)")
            try weights.save(to: saved, config: config, baseModel: "tiny-\(spec.architecture)", dropout: 0)
            let theirs = try Safetensors(path: original + "/adapter_model.safetensors").tensors
            let ours = try Safetensors(path: saved.appendingPathComponent("adapter_model.safetensors").path).tensors
            XCTAssertEqual(Set(ours.keys), Set(theirs.keys), spec.architecture)
            for (name, tensor) in theirs {
                XCTAssertEqual(ours[name]?.shape, tensor.shape, "\(spec.architecture) \(name)")
                XCTAssertEqual(ours[name]?.values, tensor.values, "\(spec.architecture) \(name)")
            }
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: saved.appendingPathComponent("adapter_config.json"))) as! [String: Any]
            let peft = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: original + "/adapter_config.json"))) as! [String: Any]
            for key in ["r", "lora_alpha", "use_rslora", "peft_type", "task_type", "bias", "base_model_name_or_path"] {
                XCTAssertEqual("\(json[key] ?? "absent")", "\(peft[key] ?? "absent")", "\(spec.architecture): \(key)")
            }
            XCTAssertEqual(Set(json["target_modules"] as! [String]), Set(peft["target_modules"] as! [String]), spec.architecture)
            // And our reader takes our file back to the same weights.
            XCTAssertEqual(try LoRAWeights(adapter: try LoRAAdapter(folder: saved.path), config: config).values, weights.values)
        }
    }

    /// An EXAONE 3 adapter trained with trust_remote_code names its modules
    /// transformer.h.N.attn.attention.q_proj … mlp.c_fc_0: read to the same weights as
    /// the standard names.
    func testRemoteCodeExaoneNamesReadAlike() throws {
        let original = fixture("adapters/tiny-exaone")
        let folder = try makeTemporaryFolder("exaone-names")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let renames = PEFT.Module.allCases.map { (PEFT.Names.standard.modules[$0]!, PEFT.Names.exaone.modules[$0]!) }
        let tensors = try Safetensors(path: original + "/adapter_model.safetensors").tensors.map { name, tensor in
            var renamed = name.replacingOccurrences(of: "model.model.layers.", with: "model.transformer.h.")
            for (standard, remote) in renames { renamed = renamed.replacingOccurrences(of: "." + standard + ".", with: "." + remote + ".") }
            XCTAssertNotEqual(renamed, name)
            return (name: renamed, shape: tensor.shape, values: tensor.values)
        }
        try Safetensors.write(tensors, to: folder.appendingPathComponent("adapter_model.safetensors"))
        try FileManager.default.copyItem(atPath: original + "/adapter_config.json", toPath: folder.appendingPathComponent("adapter_config.json").path)
        let standard = try LoRAAdapter(folder: original), remote = try LoRAAdapter(folder: folder.path)
        func byModule(_ adapter: LoRAAdapter) -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: adapter.deltas.map { ("\($0.layer).\($0.module)", $0.a + $0.b) })
        }
        XCTAssertEqual(byModule(remote).count, 14)
        XCTAssertEqual(byModule(remote), byModule(standard))
    }

    /// One step on Gemma 3 270M against PyTorch + PEFT (training_gemma_fixture.py): the
    /// same adapter (made here from the same generator, written by our writer, read by
    /// our reader), the same item; loss within 1e-4 and each LoRA gradient within 1e-3,
    /// relative.
    func testGemmaStepMatchesPEFT() throws {
        struct Fixture: Decodable {
            struct Summary: Decodable { var norm: Double, head: [Float] }
            var tokens: [Int32], target: Int32, rank: Int, alpha: Double, loss: Double
            var gradients: [String: Summary]
        }
        let expected = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("gemma_step.json"))))
        let model = try Model(path: try DefaultModels.path(DefaultModels.gemma))
        let folder = try makeTemporaryFolder("gemma-step")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let layout = LoRAWeights(config: model.config, modules: LoRAAdapter.Module.allCases, rank: expected.rank, alpha: expected.alpha, rsLoRA: false)
        let tensors = layout.peftTensors(config: model.config).sorted { $0.name < $1.name }.enumerated().map { index, tensor in
            let scale = tensor.name.hasSuffix("lora_A.weight") ? 1 / Double(tensor.shape[1]).squareRoot() : 0.01
            return (name: tensor.name, shape: tensor.shape, values: TinyModelSpec.lcg(seed: 1000 + index, count: tensor.values.count, scale: scale, offset: 0))
        }
        try Safetensors.write(tensors, to: folder.appendingPathComponent("adapter_model.safetensors"))
        try Data(#"{"peft_type": "LORA", "r": \#(expected.rank), "lora_alpha": \#(expected.alpha), "use_rslora": false}"#.utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
        let lora = try LoRAWeights(adapter: try LoRAAdapter(folder: folder.path), config: model.config)
        let network = Network(model: model)
        var gradient = [Float](repeating: 0, count: lora.values.count)
        let sequence = TrainingSequence(tokens: expected.tokens, targets: [(expected.tokens.count - 1, expected.target)], choices: [])
        let result = try network.accumulateGradient(sequence, lora: lora, loss: .full, into: &gradient)
        print("Gemma 3 270M, one step: loss \(result.loss) vs PEFT \(expected.loss)")
        XCTAssertEqual(result.loss, expected.loss, accuracy: 1e-4 * expected.loss)
        var copy = lora
        copy.values = gradient
        var worst = 0.0
        for tensor in copy.peftTensors(config: model.config) {
            let reference = try XCTUnwrap(expected.gradients[tensor.name])
            let norm = tensor.values.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            worst = max(worst, abs(norm - reference.norm) / reference.norm)
            XCTAssertEqual(norm, reference.norm, accuracy: 1e-3 * reference.norm, "\(tensor.name): gradient norm")
            let head = zip(tensor.values.prefix(8), reference.head).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
            XCTAssertLessThan(head, 1e-3 * reference.norm, "\(tensor.name): first values")
        }
        print("largest relative difference of a gradient norm: \(worst)")
    }
}
