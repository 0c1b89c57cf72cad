import Foundation
import XCTest

@testable import Tensor

/// The integer kernels against plain loops: every path this CPU runs, both code widths,
/// on sizes with tails in every direction (outputs past a 16-row panel and its 8-lane
/// halves, rows past the 8- and 4-row blocks and the 64-row chunk, strided inputs).
final class QuantizedMatrixTests: XCTestCase {
    var paths: [QuantizedMatrix.Path] {
        let available = QuantizedMatrix.Path.allCases.filter(\.isAvailable)
        let missing = QuantizedMatrix.Path.allCases.filter { !$0.isAvailable }
        print(
            "QuantizedMatrixTests: checking the \(available.map(\.description).joined(separator: ", ")) paths"
                + (missing.isEmpty ? "" : "; this CPU cannot run \(missing.map(\.description).joined(separator: ", "))"))
        return available
    }

    /// Activations as the kernels must quantise them: d = max|x|/127, q = round-half-even(x/d).
    func plainQuantize(_ x: ArraySlice<Float>) -> (q: [Int8], d: Float) {
        let amax = x.map(abs).max() ?? 0
        let inverse: Float = amax > 0 ? 127 / amax : 0
        return (x.map { Int8(($0 * inverse).rounded(.toNearestOrEven)) }, amax / 127)
    }

    func testActivationsMatchPlainQuantisation() throws {
        var random = SystemRandomNumberGenerator()
        let (rows, inner, stride) = (5, 96, 101)
        var x = (0..<rows * stride).map { _ in Float.random(in: -3...3, using: &random) }
        x[7] = 0
        for k in 32..<64 { x[k] = 0 } // an all-zero block
        for path in paths {
            let a = QuantizedMatrix.Activations(x, rows: rows, inner: inner, stride: stride, path: path)
            for r in 0..<rows {
                for b in 0..<inner / 32 {
                    let (q, d) = plainQuantize(x[(r * stride + 32 * b)..<(r * stride + 32 * b + 32)])
                    XCTAssertEqual((0..<32).map { a.q[r * inner + 32 * b + $0] }, q, "\(path) row \(r) block \(b)")
                    XCTAssertEqual(a.d[r * inner / 32 + b], d, "\(path) scale")
                    for h in 0..<2 {
                        XCTAssertEqual(
                            a.s[2 * (r * inner / 32 + b) + h], d * Float(q[(16 * h)..<(16 * h + 16)].reduce(0) { $0 + Int($1) }),
                            "\(path) sum of half \(h)")
                    }
                }
            }
        }
    }

    /// dx += dy·W from the codes (the trainer's input gradient) against a plain loop over
    /// rows(): every code width, outputs past a panel, strips of unequal width, strided
    /// dy and dx, and the sum added to what dx held.
    func testTransposedProductMatchesPlainLoop() throws {
        var random = SystemRandomNumberGenerator()
        for threads in [1, 3] {
            Parallel.threads = threads
            for codes in QuantizedMatrix.Codes.allCases {
                for (rows, outer, inner) in [(1, 1, 32), (3, 17, 96), (7, 40, 224), (20, 300, 640)] {
                    let top = UInt8((1 << codes.bits) - 1)
                    let matrix = QuantizedMatrix(outer: outer, inner: inner, codes: codes) { _, c, d, m in
                        for k in 0..<inner { c[k] = UInt8.random(in: 0...top) }
                        for g in stride(from: 0, to: inner / 16, by: 2) {
                            d[g] = Float.random(in: 0.001...0.05)
                            m[g] = Float.random(in: -0.5...0.5)
                            (d[g + 1], m[g + 1]) =
                                codes == .four ? (d[g], m[g]) : (Float.random(in: 0.001...0.05), Float.random(in: -0.5...0.5))
                        }
                    }
                    let w = matrix.rows(), strideDY = outer + 3, strideDX = inner + 7
                    let dy = (0..<rows * strideDY).map { _ in Float.random(in: -1...1, using: &random) }
                    var dx = (0..<rows * strideDX).map { _ in Float.random(in: -1...1, using: &random) }
                    var expected = dx.map(Double.init)
                    for r in 0..<rows {
                        for o in 0..<outer {
                            for i in 0..<inner { expected[r * strideDX + i] += Double(dy[r * strideDY + o]) * Double(w[o * inner + i]) }
                        }
                    }
                    matrix.addTransposedProduct(dy, rows: rows, strideDY: strideDY, into: &dx, strideDX: strideDX)
                    let worst = zip(dx, expected).map { abs(Double($0) - $1) }.max()!
                    XCTAssertLessThan(worst, 1e-4 * Double(outer).squareRoot(), "\(codes) \(rows)×\(outer)×\(inner), \(threads) threads")
                }
            }
        }
    }

    func testProductMatchesPlainLoop() throws {
        Parallel.threads = 2
        var random = SystemRandomNumberGenerator()
        let paths = self.paths
        for codes in QuantizedMatrix.Codes.allCases {
            // `extreme`: every code at its largest and every activation at ±127, the sums
            // the AVX2 path keeps in 16 bits at their largest (saturation would show).
            for (rows, outer, inner, extreme) in [
                (1, 1, 32, false), (3, 9, 64, false), (9, 17, 96, false), (70, 40, 640, false), (5, 300, 2048, false),
                (5, 17, 256, true)
            ] {
                // Scales and mins per 16 inputs (8-bit codes) or 32 (4-bit).
                let stride = inner + 5, blocks = inner / 32, groups = inner / 16, span = codes == .four ? 2 : 1
                let top = UInt8((1 << codes.bits) - 1)
                let code = (0..<outer * inner).map { _ in extreme ? top : UInt8.random(in: 0...top, using: &random) }
                var d = (0..<outer * groups).map { _ in Float.random(in: 0.001...0.05, using: &random) }
                var m = (0..<outer * groups).map { _ in Float.random(in: -0.5...0.5, using: &random) }
                for g in 0..<d.count where g % span != 0 {
                    d[g] = d[g - 1]
                    m[g] = m[g - 1]
                }
                let matrix = QuantizedMatrix(outer: outer, inner: inner, codes: codes) { r, c, dr, mr in
                    for k in 0..<inner { c[k] = code[r * inner + k] }
                    for g in 0..<groups {
                        dr[g] = d[r * groups + g]
                        mr[g] = m[r * groups + g]
                    }
                }
                // The weights as stored: scales and mins in fp16.
                let w = (0..<outer * inner).map { i in
                    let g = i / inner * groups + i % inner / 16
                    return Float(Float16(d[g])) * Float(code[i]) + Float(Float16(m[g]))
                }
                XCTAssertEqual(matrix.rows(), w, "rows() gives back d·code + m (\(codes))")
                let x = (0..<rows * stride).map { i in
                    extreme ? (i % stride / 32 % 2 == 0 ? -2 : 2) : Float.random(in: -2...2, using: &random)
                }
                var expected = [Double](repeating: 0, count: rows * outer), exact = expected, magnitude = expected, twoPart = expected
                for r in 0..<rows {
                    let quantised = (0..<blocks).map { plainQuantize(x[(r * stride + 32 * $0)..<(r * stride + 32 * $0 + 32)]) }
                    // q8x2's second part: the remainder x − d·q, quantised the same way.
                    let remainders = (0..<blocks).map { b in
                        plainQuantize((0..<32).map { x[r * stride + 32 * b + $0] - quantised[b].d * Float(quantised[b].q[$0]) }[...])
                    }
                    for c in 0..<outer {
                        for k in 0..<inner {
                            let (q, dx) = quantised[k / 32], (q2, d2) = remainders[k / 32]
                            expected[r * outer + c] += Double(w[c * inner + k]) * Double(q[k % 32]) * Double(dx)
                            twoPart[r * outer + c] +=
                                Double(w[c * inner + k]) * (Double(q[k % 32]) * Double(dx) + Double(q2[k % 32]) * Double(d2))
                            exact[r * outer + c] += Double(w[c * inner + k]) * Double(x[r * stride + k])
                            magnitude[r * outer + c] += abs(Double(w[c * inner + k]) * Double(x[r * stride + k]))
                        }
                    }
                }
                for path in paths {
                    var y = [Float](repeating: .nan, count: rows * (outer + 3))
                    matrix.product(x, rows: rows, stride: stride, into: &y, strideY: outer + 3, path: path)
                    for r in 0..<rows {
                        for c in 0..<outer {
                            let got = Double(y[r * (outer + 3) + c])
                            XCTAssertEqual(
                                got, expected[r * outer + c], accuracy: 1e-5 * max(1, magnitude[r * outer + c]),
                                "\(path) \(codes): \(rows)×\(inner) · (\(outer)×\(inner))ᵀ at \(r),\(c)")
                            // And within 8-bit activations' error of the unquantised product.
                            XCTAssertEqual(
                                got, exact[r * outer + c], accuracy: 0.02 * max(1, magnitude[r * outer + c]), "\(path) \(codes) vs float")
                        }
                        for c in outer..<outer + 3 { XCTAssertTrue(y[r * (outer + 3) + c].isNaN, "\(path) wrote past its columns") }
                    }
                    // In two parts (q8x2): the plain loop's value, and within ~15 bits' error of the float product.
                    y = [Float](repeating: .nan, count: rows * (outer + 3))
                    matrix.product(x, rows: rows, stride: stride, into: &y, strideY: outer + 3, path: path, parts: 2)
                    for r in 0..<rows {
                        for c in 0..<outer {
                            let got = Double(y[r * (outer + 3) + c]), scale = max(1, magnitude[r * outer + c])
                            XCTAssertEqual(got, twoPart[r * outer + c], accuracy: 1e-5 * scale, "\(path) \(codes) two parts at \(r),\(c)")
                            XCTAssertEqual(got, exact[r * outer + c], accuracy: 1e-4 * scale, "\(path) \(codes) two parts vs float")
                        }
                        for c in outer..<outer + 3 {
                            XCTAssertTrue(y[r * (outer + 3) + c].isNaN, "\(path) wrote past its columns (two parts)")
                        }
                    }
                }
            }
        }
    }

    func testRequantisedRowsStayWithinHalfAStep() {
        var random = SystemRandomNumberGenerator()
        let inner = 256
        let w = (0..<inner).map { _ in Float.random(in: -1...1, using: &random) }
        var codes = [UInt8](repeating: 0, count: inner), d = [Float](repeating: 0, count: inner / 16), m = d
        QuantizedMatrix.requantize(w, inner: inner, codes: &codes, d: &d, m: &m)
        for k in 0..<inner {
            let b = k / 16
            XCTAssertEqual(Float(Float16(d[b])), d[b], "d is an fp16 value")
            XCTAssertEqual(d[b] * Float(codes[k]) + m[b], w[k], accuracy: d[b] * 0.5001 + 1e-7, "element \(k)")
        }
    }
}
