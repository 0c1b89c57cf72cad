import Engine
import Foundation
import TestSupport
import XCTest

@testable import Training

/// One training step on the 7B-shaped file (Qwen2.5-7B's shapes, random Q4_0 weights):
/// the base stays in its codes (q8x2, the reduced precision that keeps float32's gradients), LoRA r=16 on q and v, 256 tokens, gradient
/// checkpointing, the full-vocabulary loss read from the file's rows. The peak resident
/// memory stays under 1.5x the file plus 2 GB. Slow: it runs with SUNEUNG_SLOW_TESTS=1
/// (best alone: the peak is this process's).
final class BigModelTrainingTests: XCTestCase {
    func testSevenBillionShapeTrainingStep() throws {
        let path = try DefaultModels.sevenBillionShape()
        let fileBytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let model = try Model(path: path, precision: .q8x2)
        let network = Network(model: model)
        var lora = LoRAWeights(config: model.config, modules: [.q, .v], rank: 16, alpha: 32, rsLoRA: false)
        lora.initialize(seed: 1)
        let tokens = (0..<256).map { Int32((7 * $0 + 3) % 49152) }
        let sequence = TrainingSequence(tokens: tokens, targets: [(255, 33)], choices: [])
        var gradient = [Float](repeating: 0, count: lora.values.count)
        let start = Date()
        let result = try network.accumulateGradient(sequence, lora: lora, loss: .full, into: &gradient, recompute: true)
        let norm = gradient.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let peak = try DefaultModels.peakResidentBytes()
        print(
            "7B shape, one step in codes: "
                + String(
                    format: "%.1f s, loss %.3f, gradient norm %.3g; peak %.2f GB resident (limit 1.5x the %.2f GB file + 2 GB = %.2f GB)",
                    Date().timeIntervalSince(start), result.loss, norm, Double(peak) / 1e9, Double(fileBytes) / 1e9,
                    (1.5 * Double(fileBytes) + 2e9) / 1e9))
        XCTAssertTrue(result.loss.isFinite && norm.isFinite && norm > 0, "a finite loss and a gradient")
        XCTAssertLessThan(Double(peak), 1.5 * Double(fileBytes) + 2e9)
    }
}
