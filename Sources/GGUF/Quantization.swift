// ggml's block formats and their dequantisation to Float32, written from the block
// layouts in llama.cpp's ggml-common.h. The arithmetic follows the reference order
// (e.g. (d·scale)·q − dmin·m), so results are bit-identical to the `gguf` package's
// `gguf.quants.dequantize` (checked in the tests against fixtures it produced).

public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    /// What ggml's `type_traits` says of a type, and what the engine adds: one row per type.
    public struct Traits: Sendable {
        public let name: String
        /// Elements per block, and the bytes they take.
        public let blockSize: Int, blockBytes: Int
        /// Bits of the exact affine form w = d·code + m (codes in 0..<2^bits) that the
        /// quantised engine keeps: 4 for Q4_0, Q4_1 and Q4_K (d and m per 32, two codes a
        /// byte), 5, 6 or 8 for the others (a code a byte, d and m per 16: Q6_K's scales
        /// cover 16); nil for floats, which the engine requantises to 8 bits.
        public let affineBits: Int?
        /// Where the type is symmetric, w = d·(code − offset) (m is −offset·d): how
        /// `dequantize` computes it, as ggml does (d·0 keeps d's sign, d·code + m not).
        public let codeOffset: Int?
        /// Whether `quantize` writes it (the K-quants need llama.cpp's search for scales).
        public let writable: Bool
    }

    public var traits: Traits {
        switch self {
        case .f32: Traits(name: "F32", blockSize: 1, blockBytes: 4, affineBits: nil, codeOffset: nil, writable: true)
        case .f16: Traits(name: "F16", blockSize: 1, blockBytes: 2, affineBits: nil, codeOffset: nil, writable: true)
        case .bf16: Traits(name: "BF16", blockSize: 1, blockBytes: 2, affineBits: nil, codeOffset: nil, writable: true)
        case .q4_0: Traits(name: "Q4_0", blockSize: 32, blockBytes: 18, affineBits: 4, codeOffset: 8, writable: true)
        case .q4_1: Traits(name: "Q4_1", blockSize: 32, blockBytes: 20, affineBits: 4, codeOffset: nil, writable: false)
        case .q5_0: Traits(name: "Q5_0", blockSize: 32, blockBytes: 22, affineBits: 5, codeOffset: 16, writable: false)
        case .q5_1: Traits(name: "Q5_1", blockSize: 32, blockBytes: 24, affineBits: 5, codeOffset: nil, writable: false)
        case .q8_0: Traits(name: "Q8_0", blockSize: 32, blockBytes: 34, affineBits: 8, codeOffset: 128, writable: true)
        case .q4_K: Traits(name: "Q4_K", blockSize: 256, blockBytes: 144, affineBits: 4, codeOffset: nil, writable: false)
        case .q5_K: Traits(name: "Q5_K", blockSize: 256, blockBytes: 176, affineBits: 5, codeOffset: nil, writable: false)
        case .q6_K: Traits(name: "Q6_K", blockSize: 256, blockBytes: 210, affineBits: 6, codeOffset: 32, writable: false)
        }
    }

    public var name: String { traits.name }
    public var blockSize: Int { traits.blockSize }
    public var blockBytes: Int { traits.blockBytes }
    public var affineBits: Int? { traits.affineBits }

    /// The types `quantize` writes.
    public static let writable = allCases.filter(\.traits.writable)

    /// The bytes of `values` (a whole number of blocks) in this type, as ggml's
    /// quantize_row_*_ref writes them (the gguf package's quants.py is the same
    /// arithmetic): nil for the types we cannot write (the K-quants need llama.cpp's
    /// search for scales).
    public func quantize(_ values: [Float]) -> [UInt8]? {
        precondition(values.count % blockSize == 0)
        var out: [UInt8] = []
        out.reserveCapacity(values.count / blockSize * blockBytes)
        func append(_ x: UInt16) { out += [UInt8(x & 0xFF), UInt8(x >> 8)] }
        switch self {
        case .f32:
            values.withUnsafeBytes { out += $0 }
        case .f16:
            for x in values { append(Float16(x).bitPattern) }
        case .bf16:
            for x in values {
                let n = x.bitPattern
                // A NaN stays a (quiet) NaN; others round to nearest, ties to even.
                append(n & 0x7FFF_FFFF > 0x7F80_0000 ? UInt16(n >> 16) | 64 : UInt16((n + 0x7FFF + ((n >> 16) & 1)) >> 16))
            }
        case .q8_0:
            for block in stride(from: 0, to: values.count, by: 32) {
                let x = values[block..<block + 32]
                let d = x.reduce(0) { max($0, abs($1)) } / 127, inverse: Float = d == 0 ? 0 : 1 / d
                append(Float16(d).bitPattern)
                for v in x { out.append(UInt8(bitPattern: Int8((v * inverse).rounded(.toNearestOrAwayFromZero)))) }
            }
        case .q4_0:
            for block in stride(from: 0, to: values.count, by: 32) {
                let x = values[block..<block + 32]
                // The value of largest magnitude (the first such), with its sign: d = it/−8.
                var largest: Float = 0
                for v in x where abs(v) > abs(largest) { largest = v }
                let d = largest / -8, inverse: Float = d == 0 ? 0 : 1 / d
                append(Float16(d).bitPattern)
                func code(_ v: Float) -> UInt8 { UInt8(min(15, Int8(v * inverse + 8.5))) }
                for j in block..<block + 16 { out.append(code(values[j]) | code(values[j + 16]) << 4) }
            }
        default:
            return nil
        }
        return out
    }

    /// Dequantises `count` elements (a whole number of blocks) starting at `source`.
    public func dequantize(_ source: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        let blocks = count / blockSize
        switch self {
        case .f32:
            // A byte copy: the source may be unaligned (a safetensors header has any
            // length); the data is little-endian, as is every platform Swift runs on.
            UnsafeMutableRawPointer(output).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count { output[i] = half(source, 2 * i) }
        case .bf16:
            for i in 0..<count { output[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K:
            // Through the affine form, a chunk of blocks at a time, in ggml's arithmetic:
            // d·(q − offset) for the symmetric types, (d·scale)·q − dmin·min for the others.
            let chunk = 256, perChunk = chunk / blockSize, offset = traits.codeOffset
            var codes = [UInt8](repeating: 0, count: chunk), d = [Float](repeating: 0, count: chunk / 16), m = d
            for first in stride(from: 0, to: blocks, by: perChunk) {
                let n = min(perChunk, blocks - first) * blockSize
                affine(source + first * blockBytes, count: n, codes: &codes, d: &d, m: &m)
                let y = output + first * blockSize
                if let offset {
                    for i in 0..<n { y[i] = d[i / 16] * Float(Int(codes[i]) - offset) }
                } else {
                    for i in 0..<n { y[i] = d[i / 16] * Float(codes[i]) + m[i / 16] }
                }
            }
        }
    }
}

@inline(__always)
func half(_ pointer: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// The 6-bit scale and min of sub-block j (0..<8) in the 12 packed bytes of Q4_K/Q5_K.
@inline(__always)
func scaleMin(_ scales: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
    func byte(_ i: Int) -> UInt8 { scales.load(fromByteOffset: i, as: UInt8.self) }
    if j < 4 { return (byte(j) & 63, byte(j + 4) & 63) }
    return ((byte(j + 4) & 0x0F) | (byte(j - 4) >> 6) << 4, (byte(j + 4) >> 4) | (byte(j) >> 6) << 4)
}

extension GGMLType {
    /// The affine form of `count` elements (whole blocks) starting at `source`: a code per
    /// element, and d and m per 16 (the same values as `dequantize`, with the K types'
    /// d·scale and dmin·min computed in float32). Needs `affineBits`.
    public func affine(
        _ source: UnsafeRawPointer, count: Int, codes: UnsafeMutablePointer<UInt8>,
        d: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>
    ) {
        let blocks = count / blockSize, offset = traits.codeOffset
        /// d and m of the 32 elements from `first`.
        func set32(_ first: Int, _ scale: Float, _ min: Float) {
            d[first / 16] = scale
            d[first / 16 + 1] = scale
            m[first / 16] = min
            m[first / 16 + 1] = min
        }
        switch self {
        case .q4_0, .q4_1:
            let bytes = blockBytes, first = self == .q4_0 ? 2 : 4
            for b in 0..<blocks {
                let block = source + b * bytes, c = codes + b * 32
                let scale = half(block, 0)
                set32(32 * b, scale, offset.map { -Float($0) * scale } ?? half(block, 2))
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: first + j, as: UInt8.self)
                    c[j] = q & 0x0F
                    c[j + 16] = q >> 4
                }
            }
        case .q5_0, .q5_1:
            let bytes = blockBytes, high = self == .q5_0 ? 2 : 4
            for b in 0..<blocks {
                let block = source + b * bytes, c = codes + b * 32
                let scale = half(block, 0)
                set32(32 * b, scale, offset.map { -Float($0) * scale } ?? half(block, 2))
                let qh = block.loadUnaligned(fromByteOffset: high, as: UInt32.self)
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: high + 4 + j, as: UInt8.self)
                    c[j] = (q & 0x0F) | UInt8((qh >> UInt32(j)) & 1) << 4
                    c[j + 16] = (q >> 4) | UInt8((qh >> UInt32(j + 16)) & 1) << 4
                }
            }
        case .q8_0:
            for b in 0..<blocks {
                let block = source + b * 34, c = codes + b * 32
                let scale = half(block, 0)
                set32(32 * b, scale, -Float(offset!) * scale)
                for j in 0..<32 { c[j] = block.load(fromByteOffset: 2 + j, as: UInt8.self) ^ 0x80 }
            }
        case .q4_K, .q5_K:
            let five = self == .q5_K
            for b in 0..<blocks {
                let block = source + b * blockBytes
                let scale = half(block, 0), dmin = half(block, 2)
                let scales = block + 4, qh = block + 16, qs = block + (five ? 48 : 16)
                for group in 0..<4 {
                    for part in 0..<2 {
                        let sub = 8 * b + 2 * group + part, (sc, mn) = scaleMin(scales, 2 * group + part)
                        set32(32 * sub, scale * Float(sc), -(dmin * Float(mn)))
                        let c = codes + 32 * sub
                        for l in 0..<32 {
                            let q = qs.load(fromByteOffset: 32 * group + l, as: UInt8.self)
                            var code = part == 0 ? q & 0x0F : q >> 4
                            if five { code |= ((qh.load(fromByteOffset: l, as: UInt8.self) >> UInt8(2 * group + part)) & 1) << 4 }
                            c[l] = code
                        }
                    }
                }
            }
        case .q6_K:
            // w = d·scale·(q − 32) per 16: code q, m = −32·d·scale.
            for b in 0..<blocks {
                let block = source + b * 210, c = codes + b * 256
                let ql = block, qh = block + 128, scales = block + 192
                let scale = half(block, 208)
                for half128 in 0..<2 {
                    let l0 = ql + 64 * half128, h0 = qh + 32 * half128, c0 = c + 128 * half128
                    for l in 0..<32 {
                        let a = l0.load(fromByteOffset: l, as: UInt8.self), e = l0.load(fromByteOffset: l + 32, as: UInt8.self)
                        let h = h0.load(fromByteOffset: l, as: UInt8.self)
                        c0[l] = (a & 0x0F) | (h & 3) << 4
                        c0[l + 32] = (e & 0x0F) | ((h >> 2) & 3) << 4
                        c0[l + 64] = (a >> 4) | ((h >> 4) & 3) << 4
                        c0[l + 96] = (e >> 4) | ((h >> 6) & 3) << 4
                    }
                    for group in 0..<8 {
                        let sixteen = 16 * b + 8 * half128 + group
                        let ds = scale * Float(scales.load(fromByteOffset: 8 * half128 + group, as: Int8.self))
                        d[sixteen] = ds
                        m[sixteen] = -Float(offset!) * ds
                    }
                }
            }
        case .f32, .f16, .bf16:
            preconditionFailure("\(name) has no affine form")
        }
    }
}
