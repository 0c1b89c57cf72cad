import Crypto
import Foundation
import TestSupport
import XCTest

@testable import GGUF

/// Dequantisation against the `gguf` package, bit for bit
/// (fixtures from scripts/reference/dequant_fixtures.py).
final class DequantizationTests: XCTestCase {
    struct Reference: Decodable {
        struct RandomCase: Decodable {
            var blocks: String
            var expected: String
        }
        struct Range: Decodable {
            var first: Int
            var blocks: Int
            var sha256: String
            var head: [Float]
        }
        struct Tensor: Decodable {
            var type: String
            var ranges: [Range]
        }
        var random: [String: RandomCase]
        var models: [String: [String: Tensor]]
    }

    static let reference: Reference = {
        let url = Bundle.module.url(forResource: "Fixtures/dequant_reference", withExtension: "json")!
        return try! JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }()

    func testRandomBlocksOfEveryType() throws {
        XCTAssertEqual(Set(Self.reference.random.keys), Set(GGMLType.allCases.map(\.name)))
        for type in GGMLType.allCases {
            let sample = try XCTUnwrap(Self.reference.random[type.name])
            let blocks = [UInt8](Data(base64Encoded: sample.blocks)!)
            let expected = [UInt8](Data(base64Encoded: sample.expected)!)
            let count = blocks.count / type.blockBytes * type.blockSize
            var output = [Float](repeating: .nan, count: count)
            blocks.withUnsafeBytes { source in
                output.withUnsafeMutableBufferPointer { type.dequantize(source.baseAddress!, count: count, into: $0.baseAddress!) }
            }
            XCTAssertEqual(output.withUnsafeBytes { Array($0) }, expected, "\(type.name) differs from gguf.quants.dequantize")
        }
    }

    func testEveryTensorOfBothDefaultModels() throws {
        var compared = 0
        for name in [DefaultModels.gemma, DefaultModels.smolLM] {
            let file = try GGUFFile(path: try DefaultModels.path(name))
            let tensors = try XCTUnwrap(Self.reference.models[name])
            XCTAssertEqual(Set(file.tensors.map(\.name)), Set(tensors.keys), name)
            for tensor in file.tensors {
                let expected = try XCTUnwrap(tensors[tensor.name])
                XCTAssertEqual(tensor.type.name, expected.type, tensor.name)
                for range in expected.ranges {
                    let values = file.dequantizeBlocks(tensor, first: range.first, count: range.blocks)
                    let digest = SHA256.hash(data: values.withUnsafeBytes { Data($0) }).map { String(format: "%02x", $0) }.joined()
                    XCTAssertEqual(
                        digest, range.sha256,
                        "\(name) \(tensor.name) blocks \(range.first)..<\(range.first + range.blocks): first values \(values.prefix(4)) vs gguf \(range.head)"
                    )
                    compared += 1
                }
            }
        }
        print("compared \(compared) block ranges with gguf.quants.dequantize")
    }

    func testRowsAndWholeTensorsAgree() throws {
        let file = try GGUFFile(path: try DefaultModels.path(DefaultModels.gemma))
        for type in Set(file.tensors.map(\.type)) {
            let tensor = file.tensors.filter { $0.type == type }.min { $0.elementCount < $1.elementCount }!
            let whole = file.dequantize(tensor)
            for row in [0, tensor.rowCount / 2, tensor.rowCount - 1] {
                XCTAssertEqual(
                    file.dequantizeRow(tensor, row), Array(whole[row * tensor.rowLength..<(row + 1) * tensor.rowLength]),
                    "\(tensor.name) row \(row)")
            }
        }
    }
}

/// The engine's affine form of each type (codes, d and m per 16) gives back the same
/// values as `dequantize` on the gguf package's random blocks.
final class AffineFormTests: XCTestCase {
    func testAffineFormEqualsDequantisation() throws {
        var checked: [String] = []
        for type in GGMLType.allCases {
            guard let bits = type.affineBits else { continue }
            let sample = try XCTUnwrap(DequantizationTests.reference.random[type.name])
            let blocks = [UInt8](Data(base64Encoded: sample.blocks)!)
            let count = blocks.count / type.blockBytes * type.blockSize
            var expected = [Float](repeating: 0, count: count), codes = [UInt8](repeating: 0, count: count)
            var d = [Float](repeating: 0, count: count / 16), m = d
            blocks.withUnsafeBytes { source in
                type.dequantize(source.baseAddress!, count: count, into: &expected)
                type.affine(source.baseAddress!, count: count, codes: &codes, d: &d, m: &m)
            }
            XCTAssertLessThan(Int(codes.max()!), 1 << bits, type.name)
            for i in 0..<count {
                XCTAssertEqual(
                    d[i / 16] * Float(codes[i]) + m[i / 16], expected[i], accuracy: abs(expected[i]) * 1e-6 + 1e-7,
                    "\(type.name) element \(i)")
            }
            checked.append(type.name)
        }
        print("affine forms checked: \(checked.joined(separator: ", "))")
    }
}
