import PackedKernel

/// A weight matrix (outer × inner, one row per output) for y = x · Wᵀ, packed once into
/// the panels of our AVX-512 kernel where the CPU has it, else kept row-major for
/// OpenBLAS. Immutable after init.
public final class PackedMatrix: @unchecked Sendable {
    public let outer: Int, inner: Int
    /// Whether `storage` holds panels (else the rows as given).
    public let isPacked: Bool
    private let storage: UnsafeMutableBufferPointer<Float>

    /// Whether this CPU runs the packed kernel.
    public static let kernelAvailable = suneung_packed_available() != 0
    private static func panels(_ outer: Int) -> Int { (outer + Int(SUNEUNG_PANEL_ROWS) - 1) / Int(SUNEUNG_PANEL_ROWS) }

    public init(_ w: [Float], outer: Int, inner: Int, pack: Bool = PackedMatrix.kernelAvailable) {
        precondition(w.count == outer * inner && outer > 0 && inner > 0)
        precondition(!pack || Self.kernelAvailable, "the packed kernel needs AVX-512F")
        self.outer = outer
        self.inner = inner
        isPacked = pack
        let count = pack ? Self.panels(outer) * Int(SUNEUNG_PANEL_ROWS) * inner : w.count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        storage = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: count), count: count)
        if pack {
            suneung_pack(w, Int32(outer), Int32(inner), storage.baseAddress!)
        } else {
            _ = storage.initialize(from: w)
        }
    }

    deinit { storage.deallocate() }

    /// The rows as given (the trainer packs their transpose for its input gradients).
    public func rows() -> [Float] {
        guard isPacked else { return Array(storage) }
        let panel = Int(SUNEUNG_PANEL_ROWS)
        var w = [Float](repeating: 0, count: outer * inner)
        for row in 0..<outer {
            let base = row / panel * panel * inner + row % panel
            for k in 0..<inner { w[row * inner + k] = storage[base + k * panel] }
        }
        return w
    }

    /// y = x · Wᵀ: x is rows × inner (rows `stride` apart, default inner), y is rows ×
    /// outer. The outputs are split into one band of panels per thread.
    public func product(_ x: UnsafePointer<Float>, rows: Int, stride: Int? = nil, into y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let stride = stride ?? inner
        guard isPacked else {
            Kernels.matmulTransposed(x, rows: rows, inner: inner, stride: stride, storage.baseAddress!, outer: outer, into: y)
            return
        }
        let panels = Self.panels(outer)
        let bands = rows * outer * inner < 1 << 20 ? 1 : min(Parallel.threads, panels)
        nonisolated(unsafe) let (x, y, w) = (x, y, UnsafePointer(storage.baseAddress!))
        let (outer, inner) = (self.outer, self.inner)
        Parallel.forEach(bands) { band in
            suneung_packed_product(
                x, Int32(rows), Int32(inner), Int32(stride), w, Int32(outer),
                Int32(panels * band / bands), Int32(panels * (band + 1) / bands), y, Int32(outer))
        }
    }
}
