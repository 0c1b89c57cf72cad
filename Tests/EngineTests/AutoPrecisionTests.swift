import Foundation
import GGUF
import Tensor
import TestSupport
import XCTest

@testable import Engine

/// `auto` keeps a file's precision class (the hardening issue: an F32 file ran in 8-bit
/// codes, its answer logits 0.056 from f32's): float weights run in float32, quantised
/// ones in their codes.
final class AutoPrecisionTests: XCTestCase {
    func testAutoKeepsTheFilesPrecisionClass() throws {
        let folder = try makeTemporaryFolder("auto-precision")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let (vocabulary, models) = try TinyModelSpec.fixture()
        let spec = models.first { $0.architecture == "llama" }!
        let everyToken = (0..<Int32(vocabulary)).map { $0 }
        let codesRun = QuantizedMatrix.Path.best != .plain
        for type in [GGMLType.f32, .f16, .bf16, .q8_0, .q4_0] {
            // The tiny llama with its linear layers' weights stored in `type`.
            var writer = spec.writer(vocabulary: vocabulary)
            writer.tensors = writer.tensors.map { tensor in
                guard tensor.name.hasPrefix("blk."), tensor.dimensions.count == 2 else { return tensor }
                return GGUFWriter.Tensor(
                    name: tensor.name, dimensions: tensor.dimensions, type: type, data: type.quantize(spec.values(of: tensor.name))!)
            }
            let path = folder.appendingPathComponent("\(type.name).gguf").path
            try writer.write(to: path)
            let file = try GGUFFile(path: path)
            let expected: Precision = type.affineBits != nil && codesRun ? .q8 : .f32
            XCTAssertEqual(Precision.auto.resolved(for: file), expected, type.name)
            let auto = try Model(file: file, precision: .auto), explicit = try Model(file: file, precision: expected)
            XCTAssertEqual(auto.precision, expected, type.name)
            let tokens: [Int32] = [1, 5, 9, 2, 40, 41, 3]
            XCTAssertEqual(
                auto.logits(try auto.forwardToFinalHidden(tokens), tokens: everyToken),
                explicit.logits(try explicit.forwardToFinalHidden(tokens), tokens: everyToken),
                "\(type.name): auto gives \(expected)'s logits bit for bit")
            // An explicit precision is kept, whatever the file.
            XCTAssertEqual(Precision.q8.resolved(for: file), .q8, type.name)
            XCTAssertEqual(Precision.f32.resolved(for: file), .f32, type.name)
        }
        // The default models are quantised (Q4_K_M, Q4_1): their codes.
        for name in [DefaultModels.gemma, DefaultModels.smolLM] {
            XCTAssertEqual(Precision.auto.resolved(for: try GGUFFile(path: try DefaultModels.path(name))), codesRun ? .q8 : .f32, name)
        }
    }
}
