import Engine
import Foundation
import Tensor
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
            let json =
                try JSONSerialization.jsonObject(with: Data(contentsOf: saved.appendingPathComponent("adapter_config.json")))
                as! [String: Any]
            let peft =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: original + "/adapter_config.json")))
                as! [String: Any]
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
        try FileManager.default.copyItem(
            atPath: original + "/adapter_config.json", toPath: folder.appendingPathComponent("adapter_config.json").path)
        let standard = try LoRAAdapter(folder: original), remote = try LoRAAdapter(folder: folder.path)
        func byModule(_ adapter: LoRAAdapter) -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: adapter.deltas.map { ("\($0.layer).\($0.module)", $0.a + $0.b) })
        }
        XCTAssertEqual(byModule(remote).count, 14)
        XCTAssertEqual(byModule(remote), byModule(standard))
    }

    struct GemmaStep: Decodable {
        struct Summary: Decodable { var norm: Double, head: [Float] }
        var tokens: [Int32], target: Int32, rank: Int, alpha: Double, loss: Double
        var gradients: [String: Summary]
    }

    /// One step of training_gemma_fixture.py's item and adapter (made here from the same
    /// generator, written by our writer, read by our reader) on Gemma 3 270M loaded in the
    /// given precision (f32: dequantised; q8: in its codes): the loss and each LoRA
    /// tensor's gradient by PEFT name.
    func gemmaStep(_ precision: Precision) throws -> (expected: GemmaStep, loss: Double, gradients: [String: [Float]]) {
        let expected = try JSONDecoder().decode(GemmaStep.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("gemma_step.json"))))
        let model = try Model(path: try DefaultModels.path(DefaultModels.gemma), precision: precision)
        let folder = try makeTemporaryFolder("gemma-step")
        defer { try? FileManager.default.removeItem(at: folder) }
        let layout = LoRAWeights(
            config: model.config, modules: LoRAAdapter.Module.allCases, rank: expected.rank, alpha: expected.alpha, rsLoRA: false)
        let tensors = layout.peftTensors(config: model.config).sorted { $0.name < $1.name }.enumerated().map { index, tensor in
            let scale = tensor.name.hasSuffix("lora_A.weight") ? 1 / Double(tensor.shape[1]).squareRoot() : 0.01
            return (
                name: tensor.name, shape: tensor.shape,
                values: TinyModelSpec.lcg(seed: 1000 + index, count: tensor.values.count, scale: scale, offset: 0)
            )
        }
        try Safetensors.write(tensors, to: folder.appendingPathComponent("adapter_model.safetensors"))
        try Data(#"{"peft_type": "LORA", "r": \#(expected.rank), "lora_alpha": \#(expected.alpha), "use_rslora": false}"#.utf8).write(
            to: folder.appendingPathComponent("adapter_config.json"))
        let lora = try LoRAWeights(adapter: try LoRAAdapter(folder: folder.path), config: model.config)
        let network = Network(model: model)
        var gradient = [Float](repeating: 0, count: lora.values.count)
        let sequence = TrainingSequence(tokens: expected.tokens, targets: [(expected.tokens.count - 1, expected.target)], choices: [])
        let result = try network.accumulateGradient(sequence, lora: lora, loss: .full, into: &gradient)
        var copy = lora
        copy.values = gradient
        return (
            expected, result.loss, Dictionary(uniqueKeysWithValues: copy.peftTensors(config: model.config).map { ($0.name, $0.values) })
        )
    }

    /// One step on Gemma 3 270M against PyTorch + PEFT (training_gemma_fixture.py): loss
    /// within 1e-4 and each LoRA gradient within 1e-3, relative.
    func testGemmaStepMatchesPEFT() throws {
        let (expected, loss, gradients) = try gemmaStep(.f32)
        print("Gemma 3 270M, one step: loss \(loss) vs PEFT \(expected.loss)")
        XCTAssertEqual(loss, expected.loss, accuracy: 1e-4 * expected.loss)
        var worst = 0.0
        for (name, values) in gradients {
            let reference = try XCTUnwrap(expected.gradients[name])
            let norm = values.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            worst = max(worst, abs(norm - reference.norm) / reference.norm)
            XCTAssertEqual(norm, reference.norm, accuracy: 1e-3 * reference.norm, "\(name): gradient norm")
            let head = zip(values.prefix(8), reference.head).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
            XCTAssertLessThan(head, 1e-3 * reference.norm, "\(name): first values")
        }
        print("largest relative difference of a gradient norm: \(worst)")
    }

    /// The same step with the base in its codes (q8: 8-bit activations into the integer
    /// kernel forward; input gradients float32 over the codes) against the float32 step, beside PyTorch's own bf16
    /// autocast step against its float32 one (training_gemma_bf16_fixture.py), per module
    /// and side (the median over the layers). Measured: q8 is 1.4-2.2x further from
    /// float32 than bf16 is (0.08-0.14 against 0.05-0.08), and its loss 0.11 against
    /// 0.012: why `auto` trains with f32 products. The bounds hold that measure.
    func testGemmaStepInCodesAgainstPyTorchBF16() throws {
        struct BF16: Decodable { var lossFloat32: Double, lossBFloat16: Double, relativeDifferences: [String: Double] }
        let pytorch = try JSONDecoder().decode(BF16.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("gemma_step_bf16.json"))))
        let exact = try gemmaStep(.f32), reduced = try gemmaStep(.q8), twoPart = try gemmaStep(.q8x2)
        print("PEFTFormatTests: the q8 and q8x2 steps ran the \(QuantizedMatrix.Path.best) integer product")
        var ours: [String: [Double]] = [:], ours2: [String: [Double]] = [:], theirs: [String: [Double]] = [:]
        func relative(_ r: [Float], _ g: [Float]) -> Double {
            zip(r, g).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
                / g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        }
        for (name, g) in exact.gradients {
            // base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight → q_proj.lora_A
            let kind = name.split(separator: ".").suffix(3).prefix(2).joined(separator: ".")
            ours[kind, default: []].append(relative(try XCTUnwrap(reduced.gradients[name]), g))
            ours2[kind, default: []].append(relative(try XCTUnwrap(twoPart.gradients[name]), g))
            theirs[kind, default: []].append(try XCTUnwrap(pytorch.relativeDifferences[name]))
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        for kind in ours.keys.sorted() {
            let (a, a2, b) = (median(ours[kind]!), median(ours2[kind]!), median(theirs[kind]!))
            print(
                kind.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + String(
                        format: " q8 %.4f (largest %.4f), q8x2 %.4f (largest %.4f), PyTorch bf16 %.4f (largest %.4f)",
                        a, ours[kind]!.max()!, a2, ours2[kind]!.max()!, b, theirs[kind]!.max()!))
            XCTAssertGreaterThan(a2, 0, "\(kind): q8x2 products changed nothing")
            XCTAssertLessThan(a, 2.5 * b, "\(kind): q8's gradients moved further than measured")
            // The issue's bar: at least as close to float32 as PyTorch's bf16 autocast, per module.
            XCTAssertLessThan(a2, b, "\(kind): q8x2's gradients are further from float32's than bf16's")
            XCTAssertLessThan(ours2[kind]!.max()!, theirs[kind]!.max()!, "\(kind): q8x2's largest difference passes bf16's")
        }
        print(
            "loss: f32 \(exact.loss), q8 \(reduced.loss), q8x2 \(twoPart.loss); PyTorch f32 \(pytorch.lossFloat32), bf16 \(pytorch.lossBFloat16)"
        )
        XCTAssertLessThan(abs(reduced.loss - exact.loss), 0.2, "the q8 loss moved further than measured")
        XCTAssertLessThanOrEqual(
            abs(twoPart.loss - exact.loss), abs(pytorch.lossBFloat16 - pytorch.lossFloat32), "the q8x2 loss moved further than bf16's")
    }

}
