import Crypto
import Foundation
import TestSupport
import XCTest

@testable import GGUF

/// Our quantisers against the gguf package's (scripts/reference/quantize_fixtures.py,
/// which also checks them against ggml's own quantize_row_*_ref): the same bytes, on
/// random rows and on the edge cases (all zero, one huge value, ties of the largest
/// magnitude, values exactly at rounding halves, F16 overflow, subnormal scales).
final class QuantizeTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            struct Generator: Decodable { var seed: Int, scale: Double, offset: Double, count: Int }
            var name: String, type: String, sha256: String, bytes: Int
            var lcg: Generator?
            var values: [Float]?
            var overrides: [[Double]]?
        }
        var cases: [Case]
    }

    func testBytesEqualTheGGUFPackage() throws {
        let url = Bundle.module.url(forResource: "Fixtures/quantize", withExtension: "json")!
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 50)
        var checked: Set<String> = []
        for item in fixture.cases {
            let type = try XCTUnwrap(GGMLType.allCases.first { $0.name == item.type }, item.type)
            var values =
                item.values ?? item.lcg.map { TinyModelSpec.lcg(seed: $0.seed, count: $0.count, scale: $0.scale, offset: $0.offset) } ?? []
            for override in item.overrides ?? [] { values[Int(override[0])] = Float(override[1]) }
            let bytes = try XCTUnwrap(type.quantize(values), "\(item.name) \(item.type)")
            XCTAssertEqual(bytes.count, item.bytes, "\(item.name) \(item.type)")
            XCTAssertEqual(SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined(), item.sha256, "\(item.name) \(item.type)")
            checked.insert(item.type)
        }
        XCTAssertEqual(checked, ["Q8_0", "Q4_0", "F16", "BF16"])
        XCTAssertNil(GGMLType.q4_K.quantize([Float](repeating: 0, count: 256)), "K-quants are not written")
    }
}
