import Foundation

// Element-wise maths over SIMD lanes: the GELU of a 2,048-wide FFN on every token is
// tens of millions of calls per prompt, where the C library's tanhf and expf cost more
// than the matrix products around them.

extension Kernels {
    /// e^x for 8 lanes: range reduction x = n·ln2 + r and Cephes' degree-6 polynomial
    /// for e^r (within 2 ulp of expf over the float range); saturates beyond ±88.
    @inline(__always)
    public static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // Clamped by masks: the generic clamped(lowerBound:upperBound:) is not inlined.
        let low = SIMD8<Float>(repeating: -87.3), high = SIMD8<Float>(repeating: 88.3)
        let x = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        // n = round(x·log2 e), read from the low mantissa bits after adding 1.5·2^23:
        // the generic SIMD rounding and Int32 conversions cost more than the rest.
        let shifted = x * 1.442_695_04 + 12_582_912
        let n = shifted - 12_582_912
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let y = p * r * r + r + 1
        let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        return y * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }

    /// For each row of x, [gate | up] with `width` values each: gate[i] becomes
    /// act(gate[i]) · up[i], in place, rows in parallel: GELU (tanh form, written as
    /// x·σ(2z)) or SiLU (x·σ(x)).
    public static func gatedActivation(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, gelu: Bool) {
        let chunks = max(1, min(Parallel.threads * 2, rows * width / 8192))
        nonisolated(unsafe) let x = x
        Parallel.forEach(chunks) { chunk in
            for r in rows * chunk / chunks..<rows * (chunk + 1) / chunks {
                let gate = x + r * 2 * width, up = gate + width
                var i = 0
                while i + 8 <= width {
                    let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
                    let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
                    let z = gelu ? 1.595_769_12 * (g + 0.044_715 * g * g * g) : g
                    UnsafeMutableRawPointer(gate + i).storeBytes(of: g / (1 + exp8(-z)) * u, as: SIMD8<Float>.self)
                    i += 8
                }
                while i < width {
                    gate[i] = (gelu ? Kernels.gelu(gate[i]) : Kernels.silu(gate[i])) * up[i]
                    i += 1
                }
            }
        }
    }
}
