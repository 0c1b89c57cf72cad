import Engine
import Ensemble
import Foundation
import TestSupport
import XCTest

@testable import Training

/// Analytic LoRA gradients against central finite differences of the loss, on every
/// family, with and without dropout (which no reference reproduces: its masks are
/// ours). In Float32 single entries drown in rounding, so each check is along a
/// random direction over one module's A or B: (L(θ + hv) − L(θ − hv)) / 2h against
/// g·v, with h = 1e-2 and |v| = 1. The relative error is taken against at least 0.05:
/// the loss (about 10) carries Float32 rounding of ~1e-5, i.e. ~5e-4 in the quotient.
final class GradientCheckTests: XCTestCase {
    func testGradientsMatchFiniteDifferences() throws {
        let (tokens, networks) = try TinyTrainingTests.networks(for: self)
        var random = SplitMix64(seed: 3)
        for (architecture, network) in networks {
            var lora = LoRAWeights(config: network.config, modules: LoRAAdapter.Module.allCases, rank: 3, alpha: 6, rsLoRA: false)
            lora.initialize(seed: 5)
            // B non-zero, or A's gradient is zero.
            for slot in lora.slots {
                for i in slot.b..<slot.b + slot.outputs * lora.rank { lora.values[i] = 0.1 * (2 * random.nextUnit() - 1) }
            }
            let sequence = TrainingSequence(tokens: tokens, targets: [(20, 7), (23, 4)], choices: [1, 2, 3, 4, 5])
            for dropout in [nil, Network.Dropout(probability: 0.2, seed: 9)] {
                func loss(_ weights: LoRAWeights) throws -> Double {
                    var unused = [Float](repeating: 0, count: weights.values.count)
                    return try network.accumulateGradient(sequence, lora: weights, loss: .full, dropout: dropout, into: &unused).loss
                }
                var gradient = [Float](repeating: 0, count: lora.values.count)
                _ = try network.accumulateGradient(sequence, lora: lora, loss: .full, dropout: dropout, into: &gradient)
                var worst = 0.0
                for slot in lora.slots where slot.block == 0 || slot.block == network.config.blocks - 1 {
                    for (start, count) in [(slot.a, lora.rank * slot.inputs), (slot.b, slot.outputs * lora.rank)] {
                        var direction = (0..<count).map { _ in Double(2 * random.nextUnit() - 1) }
                        let length = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
                        direction = direction.map { $0 / length }
                        let h = 1e-2
                        var plus = lora, minus = lora
                        for i in 0..<count {
                            plus.values[start + i] += Float(h * direction[i])
                            minus.values[start + i] -= Float(h * direction[i])
                        }
                        let numeric = (try loss(plus) - loss(minus)) / (2 * h)
                        let analytic = (0..<count).reduce(0.0) { $0 + Double(gradient[start + $1]) * direction[$1] }
                        let error = abs(numeric - analytic) / max(abs(numeric), 0.05)
                        worst = max(worst, error)
                        XCTAssertLessThan(
                            error, 1e-2,
                            "\(architecture) block \(slot.block) \(slot.module) \(start == slot.a ? "A" : "B"), dropout \(dropout != nil): \(analytic) vs \(numeric)"
                        )
                    }
                }
                print(
                    "\(architecture)\(dropout == nil ? "" : " with dropout"): largest relative error against finite differences \(worst)"
                )
            }
        }
    }
}
