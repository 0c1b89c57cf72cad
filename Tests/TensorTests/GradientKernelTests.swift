import Foundation
import XCTest

@testable import Tensor

/// The backward kernels against central differences of their forward kernels (in
/// Double, through the scalar formulas), on widths with a tail past the SIMD lanes.
final class GradientKernelTests: XCTestCase {
    func testGatedActivationBackward() {
        let rows = 3, width = 13
        let gateUp = (0..<(rows * 2 * width)).map { Float(sin(Double($0) * 0.7) * 3) }
        let dy = (0..<(rows * width)).map { Float(cos(Double($0) * 1.3)) }
        for gelu in [true, false] {
            var dGateUp = [Float](repeating: .nan, count: gateUp.count)
            Kernels.gatedActivationBackward(gateUp, rows: rows, width: width, gelu: gelu, gradient: dy, into: &dGateUp)
            func act(_ x: Double) -> Double {
                gelu ? 0.5 * x * (1 + tanh(0.797_884_56 * (x + 0.044_715 * x * x * x))) : x / (1 + exp(-x))
            }
            for r in 0..<rows {
                for i in 0..<width {
                    let g = Double(gateUp[r * 2 * width + i]), u = Double(gateUp[r * 2 * width + width + i]), d = Double(dy[r * width + i])
                    let h = 1e-5, slope = (act(g + h) - act(g - h)) / (2 * h)
                    XCTAssertEqual(Double(dGateUp[r * 2 * width + i]), d * u * slope, accuracy: 1e-4, "gate \(r),\(i) gelu \(gelu)")
                    XCTAssertEqual(Double(dGateUp[r * 2 * width + width + i]), d * act(g), accuracy: 1e-4, "up \(r),\(i) gelu \(gelu)")
                }
            }
        }
    }

    func testRMSNormBackward() {
        let rows = 2, dim = 11, epsilon: Float = 1e-6
        let x = (0..<(rows * dim)).map { Float(sin(Double($0) * 0.9) + 0.3) }
        let weight = (0..<dim).map { Float(1 + 0.1 * Double($0)) }
        let dy = (0..<(rows * dim)).map { Float(cos(Double($0) * 0.4)) }
        var dx = [Float](repeating: 0, count: x.count)
        Kernels.rmsNormBackward(x, rows: rows, dim: dim, weight: weight, epsilon: epsilon, gradient: dy, into: &dx)
        // L = Σ dy · norm(x): its derivative in each x by central differences.
        func loss(_ row: [Double], _ r: Int) -> Double {
            let rms = (row.reduce(0) { $0 + $1 * $1 } / Double(dim) + Double(epsilon)).squareRoot()
            return (0..<dim).reduce(0) { $0 + Double(dy[r * dim + $1]) * Double(weight[$1]) * row[$1] / rms }
        }
        for r in 0..<rows {
            let row = (0..<dim).map { Double(x[r * dim + $0]) }
            for i in 0..<dim {
                var plus = row, minus = row
                plus[i] += 1e-6
                minus[i] -= 1e-6
                XCTAssertEqual(Double(dx[r * dim + i]), (loss(plus, r) - loss(minus, r)) / 2e-6, accuracy: 1e-4, "\(r),\(i)")
            }
        }
    }
}
