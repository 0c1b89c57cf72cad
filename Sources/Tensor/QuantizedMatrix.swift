import CBLAS
import PackedKernel

/// A weight matrix (outer × inner, one row per output) for y = x · Wᵀ kept in 4- or
/// 8-bit codes, w = d·code + m per row and group of inputs (32 for 4-bit codes, 16 for
/// 8-bit ones), packed once into the
/// panels of our integer kernels (PackedKernel/quantized.c). x is quantised to 8 bits per
/// block of 32 at each product. Immutable after init.
public final class QuantizedMatrix: @unchecked Sendable {
    /// 4-bit codes (two per byte, d and m per 32 inputs), or one code per byte (d and m
    /// per 16 inputs) of 8 bits or known to fit in 5 or 6 (the AVX2 kernel sums those
    /// in fewer steps; the layout is the same).
    public enum Codes: Sendable, CaseIterable {
        case four, eight, five, six
        /// The kernels' name for the form (quantized_kernel.h's enum).
        var kernelCode: Int32 {
            let code =
                switch self {
                case .four: SUNEUNG_Q_CODES4
                case .five: SUNEUNG_Q_CODES5
                case .six: SUNEUNG_Q_CODES6
                case .eight: SUNEUNG_Q_CODES8
                }
            return Int32(code)
        }

        public var bits: Int {
            switch self {
            case .four: 4
            case .five: 5
            case .six: 6
            case .eight: 8
            }
        }

        /// The narrowest form that holds codes of `bits` bits.
        public init(bits: Int) {
            self =
                switch bits {
                case ...4: .four
                case 5: .five
                case 6: .six
                default: .eight
                }
        }
    }

    /// The kernels, by the instructions they need.
    public enum Path: Sendable, CaseIterable, CustomStringConvertible {
        case plain, avx2, avx512vnni
        /// The kernels' name for the path (quantized_kernel.h's enum).
        var kernelCode: Int32 {
            let code =
                switch self {
                case .plain: SUNEUNG_Q_PLAIN
                case .avx2: SUNEUNG_Q_AVX2
                case .avx512vnni: SUNEUNG_Q_AVX512VNNI
                }
            return Int32(code)
        }
        public var isAvailable: Bool { suneung_q_available(kernelCode) != 0 }
        public var description: String {
            switch self {
            case .plain: "plain C"
            case .avx2: "AVX2"
            case .avx512vnni: "AVX-512 VNNI"
            }
        }
        /// The fastest this CPU runs.
        public static let best = allCases.last { $0.isAvailable }!
    }

    public static let blockSize = Int(SUNEUNG_Q_BLOCK)
    public let outer: Int, inner: Int, codes: Codes
    private let storage: UnsafeMutableRawBufferPointer
    private static let panelRows = Int(SUNEUNG_Q_PANEL)
    private var panels: Int { (outer + Self.panelRows - 1) / Self.panelRows }
    public var byteCount: Int { storage.count }

    /// A matrix whose row r is written by `row(r, codes, d, m)`: inner codes, and a scale
    /// and a min per 16 inputs (for 4-bit codes both halves of a block of 32 must be
    /// equal). Rows are filled in parallel (each writes only its own bytes).
    public init(
        outer: Int, inner: Int, codes: Codes,
        row: (Int, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) {
        precondition(outer > 0 && inner > 0 && inner % Self.blockSize == 0)
        self.outer = outer
        self.inner = inner
        self.codes = codes
        let blocks = inner / Self.blockSize
        let count = (outer + Self.panelRows - 1) / Self.panelRows * blocks * suneung_q_block_bytes(codes.kernelCode)
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        // Zeros past the last row: their codes, scales and mins give zero outputs.
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        nonisolated(unsafe) let packed = storage.baseAddress!.assumingMemoryBound(to: UInt8.self)
        withoutActuallyEscaping(row) { row in
            nonisolated(unsafe) let row = row
            let chunks = min(outer, Parallel.threads * 8)
            Parallel.forEach(chunks) { chunk in
                var code = [UInt8](repeating: 0, count: inner), d = [Float](repeating: 0, count: 2 * blocks), m = d
                for r in outer * chunk / chunks..<outer * (chunk + 1) / chunks {
                    row(r, &code, &d, &m)
                    suneung_q_pack_row(codes.kernelCode, code, d, m, Int32(inner), Int32(r), packed)
                }
            }
        }
    }

    deinit { storage.deallocate() }

    /// The 8-bit affine form of a row of floats per 16 inputs: d and m in fp16, codes
    /// rounded to nearest.
    public static func requantize(
        _ w: UnsafePointer<Float>, inner: Int, codes: UnsafeMutablePointer<UInt8>,
        d: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>
    ) {
        suneung_q_requantize_row(w, Int32(inner), codes, d, m)
    }

    /// Activations quantised per block of 32 (the kernels' input), for one product: in
    /// one part (8 bits), or two (each row, then its remainder: about 15 bits, twice the
    /// integer work; the product's rows come in pairs to be summed).
    public struct Activations: ~Copyable {
        /// Rows as the kernel sees them: `parts` per row of x.
        let rows: Int, inner: Int
        public let parts: Int
        let q: UnsafeMutablePointer<Int8>
        let d: UnsafeMutablePointer<Float>, s: UnsafeMutablePointer<Float>

        public init(_ x: UnsafePointer<Float>, rows: Int, inner: Int, stride: Int, path: Path, parts: Int = 1) {
            precondition(inner % QuantizedMatrix.blockSize == 0 && (parts == 1 || parts == 2))
            self.rows = rows * parts
            self.inner = inner
            self.parts = parts
            let blocks = inner / QuantizedMatrix.blockSize
            q = .allocate(capacity: parts * rows * inner)
            d = .allocate(capacity: parts * rows * blocks)
            s = .allocate(capacity: 2 * parts * rows * blocks)
            nonisolated(unsafe) let (x, q, d, s) = (x, q, d, s)
            let chunks = rows * inner < 1 << 16 ? 1 : min(rows, Parallel.threads)
            Parallel.forEach(chunks) { chunk in
                let first = rows * chunk / chunks, last = rows * (chunk + 1) / chunks, at = parts * first
                if parts == 1 {
                    suneung_q_quantize(
                        path.kernelCode, x + first * stride, Int32(last - first), Int32(inner), Int32(stride), q + at * inner,
                        d + at * blocks, s + 2 * at * blocks)
                } else {
                    suneung_q_quantize_two_part(
                        path.kernelCode, x + first * stride, Int32(last - first), Int32(inner), Int32(stride), q + at * inner,
                        d + at * blocks, s + 2 * at * blocks)
                }
            }
        }

        deinit {
            q.deallocate()
            d.deallocate()
            s.deallocate()
        }
    }

    /// y = x · Wᵀ: x is rows × inner (rows `stride` apart, default inner), y is rows ×
    /// outer with rows `strideY` apart (default outer), x quantised in `parts` parts.
    /// Outputs are split into bands of panels, one per worker.
    public func product(
        _ x: UnsafePointer<Float>, rows: Int, stride: Int? = nil, into y: UnsafeMutablePointer<Float>,
        strideY: Int? = nil, path: Path = .best, parts: Int = 1
    ) {
        guard rows > 0 else { return }
        let activations = Activations(x, rows: rows, inner: inner, stride: stride ?? inner, path: path, parts: parts)
        product(activations, into: y, strideY: strideY ?? outer, path: path)
    }

    /// The same from activations quantised once (several matrices share an input). Two
    /// parts are multiplied as twice the rows, into a buffer, then summed pairwise.
    public func product(_ x: borrowing Activations, into y: UnsafeMutablePointer<Float>, strideY: Int, path: Path = .best) {
        guard x.parts == 2 else { return productOfRows(x, into: y, strideY: strideY, path: path) }
        let rows = x.rows / 2
        var parts = [Float](repeating: 0, count: x.rows * outer)
        parts.withUnsafeMutableBufferPointer { parts in
            productOfRows(x, into: parts.baseAddress!, strideY: outer, path: path)
            for r in 0..<rows {
                let (value, remainder, out) = (
                    parts.baseAddress! + 2 * r * outer, parts.baseAddress! + (2 * r + 1) * outer, y + r * strideY
                )
                for c in 0..<outer { out[c] = value[c] + remainder[c] }
            }
        }
    }

    /// The kernel over the activations' rows as they are stored.
    private func productOfRows(_ x: borrowing Activations, into y: UnsafeMutablePointer<Float>, strideY: Int, path: Path) {
        precondition(x.inner == inner && path.isAvailable)
        let panels = self.panels, rows = x.rows
        let bands = rows * outer * inner < 1 << 18 ? 1 : min(Parallel.threads * 2, panels)
        nonisolated(unsafe) let (q, d, s, y, w) = (
            x.q, x.d, x.s, y, UnsafePointer(storage.baseAddress!.assumingMemoryBound(to: UInt8.self))
        )
        let (outer, inner, codes) = (self.outer, self.inner, self.codes)
        Parallel.forEach(bands) { band in
            suneung_q_product(
                path.kernelCode, codes.kernelCode, q, d, s, Int32(rows), Int32(inner), w, Int32(outer),
                Int32(panels * band / bands), Int32(panels * (band + 1) / bands), y, Int32(strideY))
        }
    }

    /// dx += dy · W, the input gradient of y = x·Wᵀ: dy is rows × outer (rows `strideDY`
    /// apart), dx rows × inner (rows `strideDX` apart). Float32 products over the exact
    /// weights, a strip of input blocks unpacked at a time, so that no transposed copy is
    /// kept; strips are split among the workers (disjoint columns of dx).
    public func addTransposedProduct(
        _ dy: UnsafePointer<Float>, rows: Int, strideDY: Int, into dx: UnsafeMutablePointer<Float>, strideDX: Int
    ) {
        guard rows > 0 else { return }
        let blocks = inner / Self.blockSize, strips = min(blocks, Parallel.threads * 4)
        nonisolated(unsafe) let (dy, dx, w) = (dy, dx, UnsafePointer(storage.baseAddress!.assumingMemoryBound(to: UInt8.self)))
        let (outer, inner, codes) = (self.outer, self.inner, self.codes)
        Parallel.forEach(strips) { strip in
            let first = blocks * strip / strips, count = blocks * (strip + 1) / strips - first, width = count * Self.blockSize
            var columns = [Float](repeating: 0, count: outer * width)
            suneung_q_unpack_columns(codes.kernelCode, w, Int32(outer), Int32(inner), Int32(first), Int32(count), &columns)
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(width), Int32(outer), 1, dy, Int32(strideDY),
                columns, Int32(width), 1, dx + first * Self.blockSize, Int32(strideDX))
        }
    }

    /// The weights as float32 rows (d·code + m), read back from the panels (for tests).
    public func rows() -> [Float] {
        let blocks = inner / Self.blockSize, bytes = suneung_q_block_bytes(codes.kernelCode)
        let halves = codes == .four ? 1 : 2, codeBytes = bytes - 4 * halves * Self.panelRows
        var w = [Float](repeating: 0, count: outer * inner)
        for r in 0..<outer {
            let lane = r % Self.panelRows
            for b in 0..<blocks {
                let block = UnsafeRawPointer(storage.baseAddress!) + ((r / Self.panelRows) * blocks + b) * bytes
                func half(_ index: Int) -> Float {
                    Float(
                        Float16(
                            bitPattern: block.loadUnaligned(
                                fromByteOffset: codeBytes + 2 * (index * Self.panelRows + lane), as: UInt16.self)))
                }
                for k in 0..<Self.blockSize {
                    let code: UInt8, h = codes == .four ? 0 : k / 16
                    if codes == .four {
                        let byte = block.load(fromByteOffset: 64 * ((k % 16) / 4) + 4 * lane + k % 4, as: UInt8.self)
                        code = k < 16 ? byte & 15 : byte >> 4
                    } else {
                        code = block.load(fromByteOffset: 64 * (k / 4) + 4 * lane + k % 4, as: UInt8.self)
                    }
                    w[r * inner + b * Self.blockSize + k] = half(h) * Float(code) + half(halves + h)
                }
            }
        }
        return w
    }
}
