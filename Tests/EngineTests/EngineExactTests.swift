import Exam
import Foundation
import TestSupport
import XCTest

@testable import Engine

/// The engine against Hugging Face transformers in float32 on the same dequantised
/// weights (fixture from scripts/reference/engine_exact_fixtures.py): answer-token
/// logits within 2e-3, and the 10 largest logits and 256 sampled ones within 1e-2.
final class EngineExactTests: XCTestCase {
    struct Reference: Decodable {
        struct Case: Decodable {
            var id: String
            var tokens: Int
            var answer_logits: [Float]
            var top_ids: [Int32]
            var top_logits: [Float]
            var sample_logits: [Float]
        }
        struct AdapterCase: Decodable {
            var id: String
            var answer_logits: [Float]
        }
        struct Adapter: Decodable {
            var folder: String
            var cases: [AdapterCase]
        }
        struct Model: Decodable {
            var template: String
            var answer_ids: [Int32]
            var sample_ids: [Int32]
            var cases: [Case]
            var adapter: Adapter?
        }
    }

    func testLogitsMatchTransformers() throws {
        let url = Bundle.module.url(forResource: "Fixtures/engine_exact", withExtension: "json")!
        let reference = try JSONDecoder().decode([String: Reference.Model].self, from: Data(contentsOf: url))
        for name in [DefaultModels.gemma, DefaultModels.smolLM] {
            let expected = try XCTUnwrap(reference[name])
            let sample = try SampleModel(name, template: expected.template)
            let model = sample.model
            var answerError: Float = 0, otherError: Float = 0
            for reference in expected.cases {
                let tokens = try sample.tokens(item: reference.id)
                XCTAssertEqual(tokens.count, reference.tokens)
                let hidden = try model.forwardToFinalHidden(tokens)
                for (ours, theirs) in zip(model.logits(hidden, tokens: expected.answer_ids), reference.answer_logits) {
                    answerError = max(answerError, abs(ours - theirs))
                    XCTAssertEqual(ours, theirs, accuracy: 2e-3, "\(name) \(reference.id) answer logits")
                }
                let others = model.logits(hidden, tokens: reference.top_ids + expected.sample_ids)
                for (ours, theirs) in zip(others, reference.top_logits + reference.sample_logits) {
                    otherError = max(otherError, abs(ours - theirs))
                    XCTAssertEqual(ours, theirs, accuracy: 1e-2, "\(name) \(reference.id) top and sampled logits")
                }
            }
            print("\(name): largest difference from transformers \(answerError) on answer logits, \(otherError) on the others")
        }
    }

    /// 30 real training items (every 53rd of ../shared/data/train.csv, by id) on both
    /// models, with the same tolerances, where the data is beside the checkout.
    func testRealItemsMatchTransformers() throws {
        let url = Bundle.module.url(forResource: "Fixtures/engine_exact_real", withExtension: "json")!
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let train = try RealData.path("train.csv", sha256: try XCTUnwrap(object["data_sha256"] as? String))
        let items = Dictionary(uniqueKeysWithValues: try ExamSet.load(path: train).items.map { ($0.id, $0) })
        for name in [DefaultModels.gemma, DefaultModels.smolLM] {
            let expected = try JSONDecoder().decode(
                Reference.Model.self, from: JSONSerialization.data(withJSONObject: try XCTUnwrap(object[name])))
            let sample = try SampleModel(name, template: expected.template)
            var answerError: Float = 0, otherError: Float = 0
            for reference in expected.cases {
                let tokens = sample.tokens(try XCTUnwrap(items[reference.id]))
                XCTAssertEqual(tokens.count, reference.tokens)
                let hidden = try sample.model.forwardToFinalHidden(tokens)
                for (ours, theirs) in zip(sample.model.logits(hidden, tokens: expected.answer_ids), reference.answer_logits) {
                    answerError = max(answerError, abs(ours - theirs))
                    XCTAssertEqual(ours, theirs, accuracy: 2e-3, "\(name) \(reference.id) answer logits")
                }
                for (ours, theirs) in zip(
                    sample.model.logits(hidden, tokens: reference.top_ids + expected.sample_ids),
                    reference.top_logits + reference.sample_logits)
                {
                    otherError = max(otherError, abs(ours - theirs))
                    XCTAssertEqual(ours, theirs, accuracy: 1e-2, "\(name) \(reference.id) top and sampled logits")
                }
            }
            print(
                "\(name), \(expected.cases.count) real items: largest difference from transformers \(answerError) on answer logits, \(otherError) on the others"
            )
        }
    }

    /// Two questions on one passage: the second reuses the first's keys and values
    /// over the shared prompt start and scores as it does alone.
    func testReusedPassageScoresAsAlone() throws {
        let sample = try SampleModel(DefaultModels.gemma, template: "gemma")
        var item = try XCTUnwrap(SampleModel.items.values.min { $0.id < $1.id })
        let first = sample.tokens(item)
        item.question = "윗글의 내용과 일치하지 않는 것은?"
        let second = sample.tokens(item)
        var cache = PrefixCache()
        _ = try sample.model.forwardToFinalHidden(first, cache: &cache)
        let reused = try sample.model.forwardToFinalHidden(second, cache: &cache)
        XCTAssertEqual(cache.reused, zip(first, second).prefix { $0 == $1 }.count, "the prompt start up to the question")
        XCTAssertGreaterThan(cache.reused, 50)
        let alone = try sample.model.forwardToFinalHidden(second)
        let answers: [Int32] = [236770, 236778, 236800, 236812, 236810]
        for (a, b) in zip(sample.model.logits(reused, tokens: answers), sample.model.logits(alone, tokens: answers)) {
            XCTAssertEqual(a, b, accuracy: 1e-4)
        }
    }

    /// SmolLM2 with a PEFT adapter (F16 tensors) against transformers + PEFT.
    func testAdapterLogitsMatchTransformersWithPEFT() throws {
        let url = Bundle.module.url(forResource: "Fixtures/engine_exact", withExtension: "json")!
        let reference = try JSONDecoder().decode([String: Reference.Model].self, from: Data(contentsOf: url))
        let expected = try XCTUnwrap(reference[DefaultModels.smolLM])
        let adapter = try XCTUnwrap(expected.adapter)
        let sample = try SampleModel(DefaultModels.smolLM, template: expected.template)
        let folder = Bundle.module.url(forResource: "Fixtures/\(adapter.folder)", withExtension: nil)!.path
        let model = try Model(file: sample.model.file, adapter: try LoRAAdapter(folder: folder))
        var worst: Float = 0
        for reference in adapter.cases {
            let logits = model.logits(try model.forwardToFinalHidden(try sample.tokens(item: reference.id)), tokens: expected.answer_ids)
            for (ours, theirs) in zip(logits, reference.answer_logits) {
                worst = max(worst, abs(ours - theirs))
                XCTAssertEqual(ours, theirs, accuracy: 2e-3, "\(reference.id) answer logits with the adapter")
            }
        }
        print("\(DefaultModels.smolLM) with a PEFT adapter: largest answer-logit difference from transformers + PEFT \(worst)")
    }

    /// On the weights' codes (q8) the adapter stays a separate float32 low-rank product:
    /// with it, the answers are transformers + PEFT's and the answer logits are as close
    /// to theirs as q8's without it are to transformers' alone (8-bit activations move
    /// the logits by up to ~0.2 on SmolLM2, llama.cpp's too; the adapter adds nothing).
    func testAdapterOnQuantisedWeights() throws {
        let url = Bundle.module.url(forResource: "Fixtures/engine_exact", withExtension: "json")!
        let reference = try JSONDecoder().decode([String: Reference.Model].self, from: Data(contentsOf: url))
        let expected = try XCTUnwrap(reference[DefaultModels.smolLM])
        let adapter = try XCTUnwrap(expected.adapter)
        let sample = try SampleModel(DefaultModels.smolLM, template: expected.template)
        let folder = Bundle.module.url(forResource: "Fixtures/\(adapter.folder)", withExtension: nil)!.path
        let base = try Model(file: sample.model.file, precision: .q8)
        let adapted = try Model(file: sample.model.file, adapter: try LoRAAdapter(folder: folder), precision: .q8)
        let bases = Dictionary(uniqueKeysWithValues: expected.cases.map { ($0.id, $0.answer_logits) })
        func answer(_ values: [Float]) -> Int { values.indices.max { values[$0] < values[$1] }! }
        var withAdapter: Float = 0, without: Float = 0
        for reference in adapter.cases {
            let tokens = try sample.tokens(item: reference.id), theirBase = try XCTUnwrap(bases[reference.id])
            let ours = adapted.logits(try adapted.forwardToFinalHidden(tokens), tokens: expected.answer_ids)
            let ourBase = base.logits(try base.forwardToFinalHidden(tokens), tokens: expected.answer_ids)
            XCTAssertEqual(answer(ours), answer(reference.answer_logits), "\(reference.id): the answer with the adapter")
            withAdapter = max(withAdapter, zip(ours, reference.answer_logits).map { abs($0 - $1) }.max()!)
            without = max(without, zip(ourBase, theirBase).map { abs($0 - $1) }.max()!)
        }
        print(
            "\(DefaultModels.smolLM), q8: largest answer-logit difference from transformers + PEFT \(withAdapter) with the adapter, \(without) without"
        )
        XCTAssertLessThanOrEqual(withAdapter, 1.5 * without + 0.05)
    }
}
