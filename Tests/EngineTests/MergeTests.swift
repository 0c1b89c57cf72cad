import Crypto
import Exam
import Foundation
import GGUF
import TestSupport
import Tokenizer
import XCTest

@testable import Engine

/// `model merge` on the tiny random models: the merged file scores as the base with
/// the adapter beside it, in float32 exactly and in Q8_0 closely; refusals change nothing.
final class MergeTests: XCTestCase {
    struct Fixture: Decodable {
        var tokens: [Int32], vocabulary: Int
        var models: [TinyModelSpec]
    }

    func fixture() throws -> Fixture {
        try JSONDecoder().decode(
            Fixture.self, from: Data(contentsOf: Bundle.module.url(forResource: "Fixtures/tiny_models", withExtension: "json")!))
    }

    func folder() throws -> URL {
        let folder = try makeTemporaryFolder("merge")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    func adapter(_ architecture: String) throws -> LoRAAdapter {
        try LoRAAdapter(path: Bundle.module.url(forResource: "Fixtures/adapters/tiny-\(architecture)", withExtension: nil)!.path)
    }

    func logits(_ model: Model, _ fixture: Fixture) throws -> [Float] {
        model.logits(try model.forwardToFinalHidden(fixture.tokens), tokens: (0..<Int32(fixture.vocabulary)).map { $0 })
    }

    /// Merged in float32 the file scores exactly as the adapter beside the base; in
    /// Q8_0 every merged weight is within its block's rounding step of the float32
    /// merge (half a step, plus the step's own rounding to 16 bits).
    func testMergedModelScoresAsTheAdapted() throws {
        let fixture = try fixture(), folder = try folder()
        for spec in fixture.models {
            let base = try spec.write(vocabulary: fixture.vocabulary, in: folder), adapter = try adapter(spec.architecture)
            let expected = try logits(try Model(path: base, adapter: adapter), fixture)
            let exact = folder.appendingPathComponent("\(spec.architecture)-f32.gguf").path
            let summary = try Merge.write(base: base, adapter: adapter, adapterSha256: "abc", type: .f32, to: exact)
            XCTAssertEqual(summary.merged, adapter.deltas.count, spec.architecture)
            let merged = try Model(path: exact)
            XCTAssertEqual(merged.file.metadata["suneung.merged_adapter.sha256"]?.string, "abc")
            let worst = zip(try logits(merged, fixture), expected).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-5 * expected.map(abs).max()!, spec.architecture)

            let coded = folder.appendingPathComponent("\(spec.architecture)-q8_0.gguf").path
            _ = try Merge.write(base: base, adapter: adapter, adapterSha256: "abc", type: .q8_0, to: coded)
            let codedFile = try GGUFFile(path: coded)
            XCTAssertEqual(codedFile.tensors.filter { $0.type == .q8_0 }.count, adapter.deltas.count, spec.architecture)
            var largestSteps: Float = 0
            for tensor in codedFile.tensors where tensor.type == .q8_0 {
                let reference = merged.file.dequantize(merged.file.tensor(named: tensor.name)!), values = codedFile.dequantize(tensor)
                for block in stride(from: 0, to: values.count, by: 32) {
                    let step = reference[block..<block + 32].map(abs).max()! / 127
                    for i in block..<block + 32 where step > 0 { largestSteps = max(largestSteps, abs(values[i] - reference[i]) / step) }
                }
            }
            print("\(spec.architecture): Q8_0 merge within \(largestSteps) of a rounding step of the float32 merge")
            XCTAssertLessThanOrEqual(largestSteps, 0.6, spec.architecture)
        }
    }

    /// A rank-1 adapter GGUF on Gemma 3 270M's first q projection (640 → 1024).
    func realGemmaAdapter(_ folder: URL) throws -> String {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("gemma3"))
        writer.set("general.type", .string("adapter"))
        writer.set("adapter.type", .string("lora"))
        writer.set("adapter.lora.alpha", .float32(1))
        writer.tensors = [
            GGUFWriter.Tensor(name: "blk.0.attn_q.weight.lora_a", dimensions: [640, 1], values: [Float](repeating: 0.01, count: 640)),
            GGUFWriter.Tensor(name: "blk.0.attn_q.weight.lora_b", dimensions: [1, 1024], values: [Float](repeating: 0.01, count: 1024))
        ]
        let path = folder.appendingPathComponent("gemma.lora.gguf").path
        try writer.write(to: path)
        return path
    }

    func testRefusalsWriteNothing() throws {
        let fixture = try fixture(), folder = try folder()
        let llama = try fixture.models.first { $0.architecture == "llama" }!.write(vocabulary: fixture.vocabulary, in: folder)
        let out = folder.appendingPathComponent("out.gguf").path
        func expect(_ phrase: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), phrase) { error in XCTAssertTrue("\(error)".contains(phrase), "\(error)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), phrase)
            XCTAssertEqual(try? FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".tmp") }, [], phrase)
        }
        expect("is the adapter for another base model") {
            _ = try Merge.write(base: llama, adapter: try adapter("gemma3"), adapterSha256: "", type: .q8_0, to: out)
        }
        // A Q4_K base merged into its own types: our writer cannot write K-quants.
        if let gemma = try? DefaultModels.path(DefaultModels.gemma) {
            expect("which our writer cannot write") {
                _ = try Merge.write(
                    base: gemma, adapter: try LoRAAdapter(path: try realGemmaAdapter(folder)), adapterSha256: "", type: nil, to: out)
            }
        } else {
            print("The default Gemma model is absent (make models): the K-quant refusal was not checked")
        }
        FileManager.default.createFile(atPath: out, contents: Data("keep".utf8))
        XCTAssertThrowsError(try Merge.write(base: llama, adapter: try adapter("llama"), adapterSha256: "", type: .q8_0, to: out)) {
            error in
            XCTAssertTrue("\(error)".contains("exists; choose another --out"), "\(error)")
        }
        XCTAssertEqual(FileManager.default.contents(atPath: out), Data("keep".utf8))
    }

    struct RealFixture: Decodable {
        struct Tensor: Decodable { var sha256: String }
        struct Case: Decodable { var id: String, answer_logits: [Float] }
        var base_model: String, adapter: String, data_sha256: String, template: String
        var tensors: [String: Tensor]
        var merged: [Case], base: [Case], lora: [Case]
    }

    /// SmolLM2 (llama: q's rows permuted) with a PEFT adapter merged in Q8_0, against
    /// scripts/reference/merge_fixtures.py (the gguf package's merge and quantiser, and
    /// llama.cpp on the merged file, on the base with the adapter's GGUF, and on the
    /// base alone, on 30 real items): the merged tensors' bytes, the answers on all 30,
    /// and answer logits as near llama.cpp's as ours are without an adapter. The adapter
    /// beside the base is read from the GGUF llama.cpp's own converter made of the PEFT
    /// folder (scripts/reference/gguf_lora_fixtures.py): the folder's logits, and
    /// llama.cpp's with that file.
    func testSmolLM2MergeAgreesWithLlamaCpp() throws {
        let reference = try JSONDecoder().decode(
            RealFixture.self, from: Data(contentsOf: Bundle.module.url(forResource: "Fixtures/merge", withExtension: "json")!))
        let train = try RealData.path("train.csv", sha256: reference.data_sha256)
        let items = Dictionary(uniqueKeysWithValues: try ExamSet.load(path: train).items.map { ($0.id, $0) })
        let base = try DefaultModels.path(reference.base_model), folder = try folder()
        let adapter = try LoRAAdapter(path: Bundle.module.url(forResource: "Fixtures/\(reference.adapter)", withExtension: nil)!.path)
        let out = folder.appendingPathComponent("merged.gguf").path
        _ = try Merge.write(base: base, adapter: adapter, adapterSha256: "", type: .q8_0, to: out)
        let merged = try Model(path: out)
        var identical = 0
        for (name, expected) in reference.tensors {
            let tensor = try XCTUnwrap(merged.file.tensor(named: name), name)
            if SHA256.hash(data: merged.file.data(of: tensor)).map({ String(format: "%02x", $0) }).joined() == expected.sha256 {
                identical += 1
            }
        }
        print("SmolLM2 merged: \(identical) of \(reference.tensors.count) merged tensors byte for byte the gguf package's")
        XCTAssertEqual(identical, reference.tensors.count)

        let tokenizer = try Tokenizer(gguf: merged.file), template = try XCTUnwrap(ChatTemplate(rawValue: reference.template))
        let converted = try LoRAAdapter(
            path: Bundle.module.url(forResource: "Fixtures/adapters/smollm2-sample.lora.gguf", withExtension: nil)!.path)
        let plain = try Model(path: base), adapted = try Model(path: base, adapter: converted),
            byFolder = try Model(path: base, adapter: adapter)
        let answerTokens = try Scorer(model: merged).answerTokens
        func answer(_ values: [Float]) -> Int { values.indices.max { values[$0] < values[$1] }! }
        func median(_ values: [Float]) -> Float { values.sorted()[values.count / 2] }
        var sameAnswers = 0, sameAdapterAnswers = 0, mergedDistance: [Float] = [], adapterDistance: [Float] = [], baseDistance: [Float] = []
        for (index, expected) in reference.merged.enumerated() {
            let item = try XCTUnwrap(items[expected.id])
            let prompt = Prompt.baseline(item), tokens = tokenizer.encode(template.render(system: prompt.system, user: prompt.user))
            let ids = Array(answerTokens.prefix(item.choices.count))
            func logits(_ model: Model) throws -> [Float] { model.logits(try model.forwardToFinalHidden(tokens), tokens: ids) }
            let ours = try logits(merged)
            if answer(ours) == answer(expected.answer_logits) { sameAnswers += 1 }
            mergedDistance += zip(ours, expected.answer_logits).map { abs($0 - $1) }
            let viaConverted = try logits(adapted)
            if answer(viaConverted) == answer(reference.lora[index].answer_logits) { sameAdapterAnswers += 1 }
            adapterDistance += zip(viaConverted, reference.lora[index].answer_logits).map { abs($0 - $1) }
            if index == 0 {
                let worst = zip(viaConverted, try logits(byFolder)).map { abs($0 - $1) }.max()!
                print("SmolLM2: llama.cpp's converted adapter GGUF vs the PEFT folder, largest answer-logit difference \(worst)")
                XCTAssertLessThanOrEqual(worst, 1e-4)
            }
            baseDistance += zip(try logits(plain), reference.base[index].answer_logits).map { abs($0 - $1) }
        }
        print(
            "SmolLM2, 30 real items: the merged file gives llama.cpp's answer on \(sameAnswers), the adapter GGUF on \(sameAdapterAnswers); median answer-logit distance to llama.cpp: merged \(median(mergedDistance)), "
                + "adapter beside the base (llama.cpp with its adapter GGUF) \(median(adapterDistance)), base alone \(median(baseDistance))"
        )
        XCTAssertEqual(sameAnswers, reference.merged.count)
        XCTAssertEqual(sameAdapterAnswers, reference.merged.count)
        XCTAssertLessThanOrEqual(median(mergedDistance), 1.5 * median(baseDistance))
        XCTAssertLessThanOrEqual(median(adapterDistance), 1.5 * median(baseDistance))
    }
}
