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

    /// gate[i] = act(gate[i]) · up[i] over the whole buffer, in parallel: GELU (tanh
    /// form, written as x·σ(2z)) or SiLU (x·σ(x)).
    public static func gatedActivation(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, gelu: Bool) {
        let chunks = max(1, min(Parallel.threads * 2, count / 8192))
        nonisolated(unsafe) let (gate, up) = (gate, up)
        Parallel.forEach(chunks) { chunk in
            let start = count * chunk / chunks / 8 * 8
            let end = chunk == chunks - 1 ? count : count * (chunk + 1) / chunks / 8 * 8
            var i = start
            while i + 8 <= end {
                let x = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
                let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
                let z = gelu ? 1.595_769_12 * (x + 0.044_715 * x * x * x) : x
                let y = x / (1 + exp8(-z)) * u
                UnsafeMutableRawPointer(gate + i).storeBytes(of: y, as: SIMD8<Float>.self)
                i += 8
            }
            while i < end {
                gate[i] = (gelu ? Kernels.gelu(gate[i]) : Kernels.silu(gate[i])) * up[i]
                i += 1
            }
        }
    }
}
