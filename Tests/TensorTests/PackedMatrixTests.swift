import Foundation
import XCTest

@testable import Tensor

/// The packed kernel's product against a plain Double loop, on sizes with tails in
/// every direction: rows past a 12-row block and a 96-row chunk, outputs past a
/// 32-column panel and its 16-lane halves, strided inputs, two threads.
final class PackedMatrixTests: XCTestCase {
    func testProductMatchesPlainLoop() throws {
        if !PackedMatrix.kernelAvailable {
            print("PackedMatrixTests: this CPU has no AVX-512F, so only the OpenBLAS path is checked here")
        }
        Parallel.threads = 2
        for (rows, outer, inner) in [(1, 1, 1), (5, 17, 3), (13, 32, 64), (12, 45, 100), (100, 96, 33), (203, 1000, 70)] {
            let stride = inner + 3
            let w = (0..<(outer * inner)).map { Float(sin(Double($0) * 0.37)) }
            let x = (0..<(rows * stride)).map { Float(cos(Double($0) * 0.11)) }
            for pack in PackedMatrix.kernelAvailable ? [true, false] : [false] {
                let matrix = PackedMatrix(w, outer: outer, inner: inner, pack: pack)
                XCTAssertEqual(matrix.rows(), w, "rows() gives back the weights (packed: \(pack))")
                var y = [Float](repeating: .nan, count: rows * outer)
                matrix.product(x, rows: rows, stride: stride, into: &y)
                for r in 0..<rows {
                    for c in 0..<outer {
                        var expected = 0.0, magnitude = 0.0
                        for k in 0..<inner {
                            expected += Double(x[r * stride + k]) * Double(w[c * inner + k])
                            magnitude += abs(Double(x[r * stride + k]) * Double(w[c * inner + k]))
                        }
                        XCTAssertEqual(
                            Double(y[r * outer + c]), expected, accuracy: 1e-6 * max(1, magnitude),
                            "\(rows)×\(inner) · (\(outer)×\(inner))ᵀ at \(r),\(c) (packed: \(pack))")
                    }
                }
            }
        }
    }
}
