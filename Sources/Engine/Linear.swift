import Foundation
import GGUF
import Tensor

/// One linear layer's weight (several GGUF tensors stacked by rows, as q, k and v are),
/// in the form its precision keeps: float32 panels, or groups of rows in 4- or 8-bit
/// codes (a stack may mix types, e.g. Q4_K q and k with a Q6_K v). A LoRA adapter on
/// quantised weights stays a separate low-rank product (its deltas in float32, exact),
/// as llama.cpp applies adapters; on float32 weights it is merged.
package final class Linear: Sendable {
    package let outer: Int, inner: Int
    /// The float32 form (the `f32` precision), which the trainer also uses.
    package let float: PackedMatrix?
    /// Row groups in codes and the first output of each.
    let groups: [(matrix: QuantizedMatrix, firstOutput: Int)]
    /// Unmerged deltas: y[:, first..<first+outputs] += scale·(x·Aᵀ)·Bᵀ.
    let deltas: [(firstOutput: Int, outputs: Int, rank: Int, a: [Float], b: [Float], scale: Float)]
    /// The parts each activation block is quantised in (2 for `q8x2`).
    let activationParts: Int

    package init(float: PackedMatrix) {
        outer = float.outer
        inner = float.inner
        self.float = float
        groups = []
        deltas = []
        activationParts = 1
    }

    /// The tensors' rows in codes, grouped while consecutive tensors share a code width.
    init(
        file: GGUFFile, stacking tensors: [GGUFTensorInfo],
        deltas: [(firstOutput: Int, outputs: Int, rank: Int, a: [Float], b: [Float], scale: Float)], activationParts: Int
    ) {
        inner = tensors[0].rowLength
        outer = tensors.reduce(0) { $0 + $1.rowCount }
        float = nil
        self.deltas = deltas
        self.activationParts = activationParts
        var groups: [(QuantizedMatrix, Int)] = [], first = 0, start = 0
        func bits(_ t: GGUFTensorInfo) -> Int { t.type.affineBits ?? 8 }
        while start < tensors.count {
            // A group shares the layout (4-bit codes, or a code a byte) and takes its widest codes.
            var end = start + 1
            while end < tensors.count, (bits(tensors[end]) == 4) == (bits(tensors[start]) == 4) { end += 1 }
            let members = Array(tensors[start..<end])
            let rows = members.reduce(0) { $0 + $1.rowCount }
            let codes = QuantizedMatrix.Codes(bits: members.map(bits).max()!)
            let matrix = QuantizedMatrix(outer: rows, inner: inner, codes: codes) { row, codes, d, m in
                // The tensor holding this row of the stack.
                var row = row, index = 0
                while row >= members[index].rowCount {
                    row -= members[index].rowCount
                    index += 1
                }
                let tensor = members[index]
                let source = file.data(of: tensor).baseAddress! + row * tensor.rowBytes
                if tensor.type.affineBits != nil {
                    tensor.type.affine(source, count: tensor.rowLength, codes: codes, d: d, m: m)
                } else {
                    var values = [Float](repeating: 0, count: tensor.rowLength)
                    tensor.type.dequantize(source, count: tensor.rowLength, into: &values)
                    QuantizedMatrix.requantize(values, inner: tensor.rowLength, codes: codes, d: d, m: m)
                }
            }
            groups.append((matrix, first))
            first += rows
            start = end
        }
        self.groups = groups
    }

    /// Bytes of weights held in memory.
    package var byteCount: Int {
        (float.map { $0.outer * $0.inner * 4 } ?? 0) + groups.reduce(0) { $0 + $1.matrix.byteCount }
    }

    /// y = x · Wᵀ (+ the deltas): x is rows × inner, rows `stride` apart; y is rows × outer.
    package func product(_ x: UnsafePointer<Float>, rows: Int, stride: Int? = nil, into y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        if let float {
            float.product(x, rows: rows, stride: stride, into: y)
            return
        }
        let stride = stride ?? inner, path = QuantizedMatrix.Path.best
        let activations = QuantizedMatrix.Activations(x, rows: rows, inner: inner, stride: stride, path: path, parts: activationParts)
        for (matrix, first) in groups { matrix.product(activations, into: y + first, strideY: outer, path: path) }
        for delta in deltas {
            var u = [Float](repeating: 0, count: rows * delta.rank), v = [Float](repeating: 0, count: rows * delta.outputs)
            Kernels.matmulTransposed(x, rows: rows, inner: inner, stride: stride, delta.a, outer: delta.rank, into: &u)
            Kernels.matmulTransposed(u, rows: rows, inner: delta.rank, delta.b, outer: delta.outputs, into: &v)
            for r in 0..<rows {
                let row = y + r * outer + delta.firstOutput
                for c in 0..<delta.outputs { row[c] += delta.scale * v[r * delta.outputs + c] }
            }
        }
    }

    /// dx += dy · W, the input gradient (the trainer's): from the codes, a strip of W
    /// unpacked at a time (`QuantizedMatrix.addTransposedProduct`). Float32 layers and
    /// unmerged deltas have no such product: the trainer keeps its own transposed copy of
    /// float32 weights and loads its base without an adapter.
    package func addTransposedProduct(_ dy: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>) {
        precondition(float == nil && deltas.isEmpty)
        for (matrix, first) in groups { matrix.addTransposedProduct(dy + first, rows: rows, strideDY: outer, into: dx, strideDX: inner) }
    }
}
