import Engine
import Foundation
import TestSupport
import XCTest

@testable import Training

/// The backward pass, the losses and the optimiser on tiny random models of every
/// family, against PyTorch + PEFT (scripts/reference/training_fixtures.py).
final class TinyTrainingTests: XCTestCase {
    struct Fixture: Decodable {
        struct Summary: Decodable { var norm: Double, head: [Float] }
        struct Optimiser: Decodable {
            var lr: Float, betas: [Float], eps: Float, weight_decay: Float
            var warmup: Int, total: Int, max_norm: Float, steps: Int
        }
        struct Model: Decodable {
            var architecture: String
            var adapter: String
            var full_loss: Double
            var full_gradients: [String: [Float]]
            var choice_loss: Double
            var choice_gradients: [String: Summary]
            var step_losses: [Double]
            var final: [String: Summary]
        }
        var tokens: [Int32]
        var vocabulary: Int
        var full_targets: [[Int32]]
        var choices: [Int32]
        var choice_target: [Int32]
        var optimiser: Optimiser
        var models: [Model]
    }

    static let fixtureURL = Bundle.module.url(forResource: "Fixtures/tiny_training", withExtension: "json")!

    /// The fixture's tokens and every tiny family's network, its model written to a
    /// temporary folder that `test` removes when it ends.
    static func networks(for test: XCTestCase) throws -> (tokens: [Int32], networks: [(architecture: String, network: Network)]) {
        struct Specs: Decodable { var vocabulary: Int, tokens: [Int32], models: [TinyModelSpec] }
        let fixture = try JSONDecoder().decode(Specs.self, from: Data(contentsOf: fixtureURL))
        let folder = try makeTemporaryFolder("tiny-networks")
        test.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let networks = try fixture.models.map { spec in
            (spec.architecture, Network(model: try Model(path: try spec.write(vocabulary: fixture.vocabulary, in: folder))))
        }
        return (fixture.tokens, networks)
    }

    func load() throws -> (Fixture, [TinyModelSpec]) {
        struct Specs: Decodable { var models: [TinyModelSpec] }
        let data = try Data(contentsOf: Self.fixtureURL)
        return (try JSONDecoder().decode(Fixture.self, from: data), try JSONDecoder().decode(Specs.self, from: data).models)
    }

    /// The network and the fixture's adapter for one family.
    func setUp(_ spec: TinyModelSpec, _ expected: Fixture.Model, vocabulary: Int) throws -> (Network, LoRAWeights) {
        let folder = try makeTemporaryFolder("tiny-training")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let model = try Model(path: try spec.write(vocabulary: vocabulary, in: folder))
        let adapterFolder = Bundle.module.url(forResource: "Fixtures/\(expected.adapter)", withExtension: nil)!.path
        return (Network(model: model), try LoRAWeights(adapter: try LoRAAdapter(folder: adapterFolder), config: model.config))
    }

    /// A gradient laid out as the weights, as PEFT's named tensors.
    func named(_ gradient: [Float], like lora: LoRAWeights, config: ModelConfig) -> [String: [Float]] {
        var copy = lora
        copy.values = gradient
        return Dictionary(uniqueKeysWithValues: copy.peftTensors(config: config).map { ($0.name, $0.values) })
    }

    func norm(_ values: [Float]) -> Double { values.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }

    func testGradientsMatchPEFT() throws {
        let (fixture, specs) = try load()
        XCTAssertEqual(Set(fixture.models.map(\.architecture)), Set(ModelConfig.supportedArchitectures))
        for expected in fixture.models {
            let spec = try XCTUnwrap(specs.first { $0.architecture == expected.architecture })
            let (network, lora) = try setUp(spec, expected, vocabulary: fixture.vocabulary)
            let full = TrainingSequence(
                tokens: fixture.tokens, targets: fixture.full_targets.map { (Int($0[0]), $0[1]) }, choices: fixture.choices)
            for recompute in [false, true] {
                var gradient = [Float](repeating: 0, count: lora.values.count)
                let result = try network.accumulateGradient(full, lora: lora, loss: .full, into: &gradient, recompute: recompute)
                XCTAssertEqual(result.loss, expected.full_loss, accuracy: 1e-4 * expected.full_loss, "\(expected.architecture): loss")
                let ours = named(gradient, like: lora, config: network.config)
                XCTAssertEqual(Set(ours.keys), Set(expected.full_gradients.keys), expected.architecture)
                var worst = 0.0
                for (name, reference) in expected.full_gradients {
                    let difference = norm(zip(ours[name]!, reference).map { $0 - $1 }) / max(norm(reference), 1e-6)
                    worst = max(worst, difference)
                    XCTAssertLessThan(difference, 1e-3, "\(expected.architecture) \(name): relative difference of the gradient")
                }
                if !recompute {
                    print(
                        "\(expected.architecture): loss \(result.loss) vs \(expected.full_loss); largest relative gradient difference \(worst)"
                    )
                }
            }

            // The loss over the answer tokens only.
            let choice = TrainingSequence(
                tokens: fixture.tokens, targets: [(Int(fixture.choice_target[0]), fixture.choice_target[1])], choices: fixture.choices)
            var gradient = [Float](repeating: 0, count: lora.values.count)
            let result = try network.accumulateGradient(choice, lora: lora, loss: .choices, into: &gradient)
            XCTAssertEqual(
                result.loss, expected.choice_loss, accuracy: 1e-4 * expected.choice_loss, "\(expected.architecture): choice loss")
            for (name, values) in named(gradient, like: lora, config: network.config) {
                let reference = try XCTUnwrap(expected.choice_gradients[name])
                XCTAssertEqual(
                    norm(values), reference.norm, accuracy: 1e-3 * reference.norm + 1e-7, "\(expected.architecture) \(name): norm")
                let head = norm(zip(values.prefix(16), reference.head).map { $0 - $1 })
                XCTAssertLessThan(head, 1e-3 * reference.norm + 1e-7, "\(expected.architecture) \(name): first values")
            }
        }
    }

    /// Three AdamW steps with weight decay, a linear schedule with warm-up and gradient
    /// clipping: the losses on the way and the weights at the end.
    func testOptimiserStepsMatchPyTorch() throws {
        let (fixture, specs) = try load()
        let o = fixture.optimiser
        for expected in fixture.models {
            let spec = try XCTUnwrap(specs.first { $0.architecture == expected.architecture })
            var (network, lora) = try setUp(spec, expected, vocabulary: fixture.vocabulary)
            let sequence = TrainingSequence(
                tokens: fixture.tokens, targets: fixture.full_targets.map { (Int($0[0]), $0[1]) }, choices: fixture.choices)
            var optimiser = AdamW(
                count: lora.values.count, beta1: o.betas[0], beta2: o.betas[1], epsilon: o.eps, weightDecay: o.weight_decay)
            let schedule = LearningRateSchedule(peak: o.lr, shape: .linear, warmupSteps: o.warmup, totalSteps: o.total)
            for step in 0..<o.steps {
                var gradient = [Float](repeating: 0, count: lora.values.count)
                let result = try network.accumulateGradient(sequence, lora: lora, loss: .full, into: &gradient)
                XCTAssertEqual(
                    result.loss, expected.step_losses[step], accuracy: 1e-4 * expected.step_losses[step],
                    "\(expected.architecture): loss before step \(step + 1)")
                clipGlobalNorm(&gradient, maxNorm: o.max_norm)
                optimiser.update(&lora.values, gradient: gradient, learningRate: schedule.rate(at: step))
            }
            _ = network
            for (name, values) in Dictionary(uniqueKeysWithValues: lora.peftTensors(config: network.config).map { ($0.name, $0.values) }) {
                let reference = try XCTUnwrap(expected.final[name])
                XCTAssertEqual(
                    norm(values), reference.norm, accuracy: 1e-4 * reference.norm, "\(expected.architecture) \(name): norm after the steps")
                let head = norm(zip(values.prefix(16), reference.head).map { $0 - $1 })
                XCTAssertLessThan(head, 1e-4 * reference.norm, "\(expected.architecture) \(name): first values after the steps")
            }
        }
    }
}
