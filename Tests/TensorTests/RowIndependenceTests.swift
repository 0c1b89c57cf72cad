import XCTest

@testable import Tensor

/// A row's product does not depend on the rows computed with it (blocks of 8 or 4
/// rows, chunks of 64, bands of panels): bit for bit, on every path this CPU runs, so a
/// prompt's reused keys and values are the ones it would compute itself.
final class RowIndependenceTests: XCTestCase {
    func testLastRowAloneEqualsInBatch() {
        var random = SystemRandomNumberGenerator()
        for codes in [QuantizedMatrix.Codes.four, .eight] {
            let outer = 64, inner = 576, rows = 40
            let matrix = QuantizedMatrix(outer: outer, inner: inner, codes: codes) { r, c, d, m in
                for k in 0..<inner { c[k] = UInt8.random(in: 0...(codes == .four ? 15 : 255), using: &random) }
                for g in 0..<inner / 16 {
                    d[g] = 0.01
                    m[g] = -0.05
                }
            }
            let x = (0..<rows * inner).map { _ in Float.random(in: -2...2, using: &random) }
            for path in QuantizedMatrix.Path.allCases where path.isAvailable {
                var all = [Float](repeating: 0, count: rows * outer), one = [Float](repeating: 0, count: outer)
                matrix.product(x, rows: rows, into: &all, path: path)
                for r in [0, 7, 8, 39] {
                    x.withUnsafeBufferPointer { xb in matrix.product(xb.baseAddress! + r * inner, rows: 1, into: &one, path: path) }
                    XCTAssertEqual(Array(all[(r * outer)..<(r * outer + outer)]), one, "\(codes) \(path) row \(r)")
                }
            }
        }
    }
}
