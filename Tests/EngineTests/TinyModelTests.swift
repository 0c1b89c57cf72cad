import Foundation
import GGUF
import XCTest
@testable import Engine

/// Every family on a tiny random model, against transformers in float32 (fixture and
/// weight recipe from scripts/reference/tiny_models.py; the GGUF is written here by our
/// own writer from the same generator).
final class TinyModelTests: XCTestCase {
    struct Fixture: Decodable {
        struct Model: Decodable {
            var architecture: String
            var keys: [[Value]]
            var tensors: [[Value]]
            var logits: [Float]
        }
        var tokens: [Int32]
        var vocabulary: Int
        var models: [Model]
    }

    enum Value: Decodable {
        case string(String), number(Double), list([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .string(s) } else if let n = try? c.decode(Double.self) { self = .number(n) } else { self = .list(try c.decode([Int].self)) }
        }
        var string: String { if case .string(let s) = self { s } else { "" } }
        var number: Double { if case .number(let n) = self { n } else { 0 } }
        var list: [Int] { if case .list(let l) = self { l } else { [] } }
    }

    /// The generator of the reference script: x = 1664525·x + 1013904223 mod 2^32.
    func lcg(seed: Int, count: Int, scale: Double, offset: Double) -> [Float] {
        var x = UInt64(seed)
        return (0..<count).map { _ in
            x = (1_664_525 &* x &+ 1_013_904_223) % 4_294_967_296
            return Float(offset + scale * (2 * Double(x) / 4_294_967_296 - 1))
        }
    }

    func testEveryFamilyMatchesTransformers() throws {
        let url = Bundle.module.url(forResource: "Fixtures/tiny_models", withExtension: "json")!
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertEqual(Set(fixture.models.map(\.architecture)), Set(ModelConfig.supportedArchitectures))
        for spec in fixture.models {
            var writer = GGUFWriter()
            writer.set("general.architecture", .string(spec.architecture))
            for key in spec.keys {
                writer.set(key[0].string, key[1].string == "u32" ? .uint32(UInt32(key[2].number)) : .float32(Float(key[2].number)))
            }
            writer.set("tokenizer.ggml.model", .string("llama"))
            writer.set("tokenizer.ggml.tokens", .array(.string, (0..<fixture.vocabulary).map { .string("<t\($0)>") }))
            writer.set("tokenizer.ggml.scores", .array(.float32, Array(repeating: .float32(0), count: fixture.vocabulary)))
            writer.set("tokenizer.ggml.token_type", .array(.int32, Array(repeating: .int32(1), count: fixture.vocabulary)))
            writer.tensors = spec.tensors.map { t in
                let dims = t[1].list
                return GGUFWriter.Tensor(name: t[0].string, dimensions: dims, values: lcg(seed: Int(t[2].number), count: dims.reduce(1, *), scale: t[3].number, offset: t[4].number))
            }
            let path = folder.appendingPathComponent("\(spec.architecture).gguf").path
            try writer.write(to: path)
            let model = try Model(path: path)
            let logits = model.logits(try model.lastHidden(fixture.tokens), tokens: (0..<Int32(fixture.vocabulary)).map { $0 })
            let scale = spec.logits.map(abs).max()!
            let worst = zip(logits, spec.logits).map { abs($0 - $1) }.max()!
            print("\(spec.architecture): largest logit difference from transformers \(worst) (largest logit \(scale))")
            XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(spec.architecture): relative difference")
        }
    }
}
