import Foundation
import TestSupport
import XCTest

@testable import Engine

/// A 7B-class model on the weights' codes: Qwen2.5-7B's shapes with random Q4_0 weights
/// (scripts/reference/big_model.py writes the 4.3 GB file into the models' cache). The
/// peak resident memory stays under 1.25x the file plus the KV cache, and the logits
/// agree with llama.cpp's on the same file and tokens. Slow (a minute or two, and the
/// file): it runs with SUNEUNG_SLOW_TESTS=1; `make bench` measures the same file.
final class BigModelTests: XCTestCase {
    func testSevenBillionShapeInCodes() throws {
        let path = try DefaultModels.sevenBillionShape()
        let fileBytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let model = try Model(path: path, precision: .q8)
        let tokens = (0..<256).map { Int32((7 * $0 + 3) % 49152) }, ids: [Int32] = [33, 34, 35, 36, 37]
        let logits = model.logits(try model.forwardToFinalHidden(tokens), tokens: ids)
        let c = model.config
        let kvCache = 2 * c.blocks * tokens.count * c.kvHeads * c.headDim * 4
        let peak = try DefaultModels.peakResidentBytes()
        print(
            String(
                format: "7B shape: peak %.2f GB resident; file %.2f GB (limit 1.25x + KV cache %.0f MB = %.2f GB)",
                Double(peak) / 1e9, Double(fileBytes) / 1e9, Double(kvCache) / 1e6, (1.25 * Double(fileBytes) + Double(kvCache)) / 1e9))
        XCTAssertLessThan(Double(peak), 1.25 * Double(fileBytes) + Double(kvCache))

        let reference = try DefaultModels.bigModelScript([
            "llama", path, tokens.map(String.init).joined(separator: ","), ids.map(String.init).joined(separator: ",")
        ])
        guard reference.status == 0, let json = try JSONSerialization.jsonObject(with: reference.output) as? [String: Double] else {
            throw XCTSkip("llama.cpp is not installed (pip install llama-cpp-python==0.3.36): the logits were not compared")
        }
        let difference = logits.indices.map { abs(Double(logits[$0]) - json["logit_\($0 + 1)"]!) }.max()!
        print("7B shape: largest answer-logit difference from llama.cpp \(difference) (logits \(logits))")
        XCTAssertLessThan(difference, 0.05)
    }
}
