import Foundation

// The backward halves of the forward kernels, for the trainer: each takes the gradient
// of a kernel's output and gives the gradient of its input (the base weights are
// frozen, so no weight gradients here; LoRA's small products are plain sgemm calls).

extension Kernels {
    /// The gradient of RMS normalisation times `weight` (y = w ⊙ x / rms(x)) for each
    /// row: dx = (w ⊙ dy − x · mean(x ⊙ w ⊙ dy) / ms) / rms, with ms = mean(x²) + ε.
    /// Added to dx when `accumulate`.
    public static func rmsNormBackward(
        _ x: UnsafePointer<Float>, rows: Int, dim: Int, weight: UnsafePointer<Float>, epsilon: Float,
        gradient dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        let chunks = min(rows, rows * dim < 1 << 16 ? 1 : Parallel.threads * 4)
        nonisolated(unsafe) let (x, weight, dy, dx) = (x, weight, dy, dx)
        Parallel.forEach(chunks) { chunk in
            for r in rows * chunk / chunks..<rows * (chunk + 1) / chunks {
                let row = x + r * dim, g = dy + r * dim, out = dx + r * dim
                var squares: Float = 0, dot: Float = 0
                for j in 0..<dim {
                    squares += row[j] * row[j]
                    dot += row[j] * weight[j] * g[j]
                }
                let ms = squares / Float(dim) + epsilon, inverse = 1 / ms.squareRoot()
                let correction = dot / Float(dim) / ms
                for j in 0..<dim {
                    let value = (weight[j] * g[j] - row[j] * correction) * inverse
                    out[j] = accumulate ? out[j] + value : value
                }
            }
        }
    }

    /// The gradient of `gatedActivation`: from the pre-activation [gate | up] rows and
    /// the gradient of act(gate) · up (rows × width), the gradient of [gate | up].
    /// Eight lanes at a time with `exp8` (tanh(z) = 2σ(2z) − 1): the C library's tanhf
    /// on every FFN value cost more than the products around it.
    public static func gatedActivationBackward(
        _ gateUp: UnsafePointer<Float>, rows: Int, width: Int, gelu: Bool,
        gradient dy: UnsafePointer<Float>, into dGateUp: UnsafeMutablePointer<Float>
    ) {
        let chunks = max(1, min(Parallel.threads * 2, rows * width / 8192))
        nonisolated(unsafe) let (gateUp, dy, dGateUp) = (gateUp, dy, dGateUp)
        @inline(__always) func valueAndSlope(_ x: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
            if gelu {
                let c: Float = 0.797_884_56, a: Float = 0.044_715
                let x2 = x * x
                let z = c * (x + a * x2 * x)
                let t = 2 / (1 + exp8(-2 * z)) - 1
                let half = 0.5 * (1 + t)
                let dz = c * (1 + 3 * a * x2)
                return (x * half, half + 0.5 * x * (1 - t * t) * dz)
            }
            let s = 1 / (1 + exp8(-x))
            return (x * s, s * (1 + x * (1 - s)))
        }
        Parallel.forEach(chunks) { chunk in
            for r in rows * chunk / chunks..<rows * (chunk + 1) / chunks {
                let gate = gateUp + r * 2 * width, up = gate + width, g = dy + r * width
                let dGate = dGateUp + r * 2 * width, dUp = dGate + width
                var i = 0
                while i + 8 <= width {
                    let x = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
                    let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
                    let gradient = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
                    let (value, slope) = valueAndSlope(x)
                    UnsafeMutableRawPointer(dGate + i).storeBytes(of: gradient * u * slope, as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(dUp + i).storeBytes(of: gradient * value, as: SIMD8<Float>.self)
                    i += 8
                }
                // The tail through the same lanes, padded with zeros.
                if i < width {
                    var x = SIMD8<Float>.zero, u = x, gradient = x
                    for j in 0..<(width - i) {
                        x[j] = gate[i + j]
                        u[j] = up[i + j]
                        gradient[j] = g[i + j]
                    }
                    let (value, slope) = valueAndSlope(x)
                    for j in 0..<(width - i) {
                        dGate[i + j] = gradient[j] * u[j] * slope[j]
                        dUp[i + j] = gradient[j] * value[j]
                    }
                }
            }
        }
    }
}
