import Foundation
import GGUF
import Tensor

/// A base model with an adapter merged into its weights, as a GGUF file llama.cpp
/// loads: every tensor copied byte for byte except the adapted linear weights, which
/// become W + scale·B·A (dequantised to float32, the product added in float32, then
/// quantised with our writer); the metadata is the base's plus what was merged.
public enum Merge {
    public struct Summary: Sendable {
        public var merged: Int, copied: Int
        /// Types of the merged tensors, by name ("Q8_0").
        public var types: [String]
    }

    /// Writes `base` with `adapter` merged to `out` (never over an existing file).
    /// `type` is the merged tensors' type (nil: each keeps its own, where our writer can
    /// write it). Everything that can be refused is refused before the first byte.
    public static func write(
        base path: String, adapter: LoRAAdapter, adapterSha256: String, type: GGMLType?, to out: String,
        progress: (_ written: Int, _ total: Int) -> Void = { _, _ in }
    ) throws -> Summary {
        guard !FileManager.default.fileExists(atPath: out) else {
            throw EngineError(message: "\(out) exists; choose another --out (nothing is overwritten)")
        }
        let file = try GGUFFile(path: path)
        let config = try ModelConfig(file)
        let placed = try Model.place(adapter, config: config, model: path)
        let deltas = Dictionary(uniqueKeysWithValues: placed.joined().map { ($0.weightName, $0) })
        var writer = GGUFWriter()
        writer.alignment = file.alignment
        for key in file.metadataKeys where key != "general.alignment" { writer.set(key, file.metadata[key]!) }
        writer.set("suneung.merged_adapter", .string(URL(fileURLWithPath: adapter.path).lastPathComponent))
        writer.set("suneung.merged_adapter.sha256", .string(adapterSha256))
        writer.set("suneung.merged_adapter.scale", .float32(adapter.scale))
        var summary = Summary(merged: 0, copied: 0, types: [])
        for tensor in file.tensors {
            guard let delta = deltas[tensor.name] else {
                summary.copied += 1
                writer.tensors.append(
                    GGUFWriter.Tensor(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type, byteCount: tensor.byteCount) {
                        defer { file.releasePages(of: tensor) }
                        return Array(file.data(of: tensor))
                    })
                continue
            }
            let target = type ?? tensor.type
            guard GGMLType.writable.contains(target) else {
                throw EngineError(
                    message:
                        "\(path): \(tensor.name) is \(tensor.type.name), which our writer cannot write; choose --type \(GGMLType.writable.map(\.name).joined(separator: "|"))"
                )
            }
            guard tensor.rowLength % target.blockSize == 0 else {
                throw EngineError(
                    message:
                        "\(path): \(tensor.name)'s rows of \(tensor.rowLength) are not whole \(target.name) blocks of \(target.blockSize)")
            }
            summary.merged += 1
            if !summary.types.contains(target.name) { summary.types.append(target.name) }
            let byteCount = tensor.elementCount / target.blockSize * target.blockBytes
            writer.tensors.append(
                GGUFWriter.Tensor(name: tensor.name, dimensions: tensor.dimensions, type: target, byteCount: byteCount) {
                    defer { file.releasePages(of: tensor) }
                    var w = file.dequantize(tensor)
                    w.withUnsafeMutableBufferPointer { w in
                        Kernels.addProduct(
                            delta.b, rows: delta.outputs, inner: delta.rank, delta.a, cols: delta.inputs, scale: delta.scale,
                            into: w.baseAddress!)
                    }
                    guard w.allSatisfy(\.isFinite) else {
                        throw EngineError(
                            message:
                                "\(adapter.path) on \(path): \(tensor.name)'s merged weights are not all finite numbers (is the adapter or the base corrupted?); nothing was written"
                        )
                    }
                    return target.quantize(w)!
                })
        }
        try writer.write(to: out, replacing: false, progress: progress)
        return summary
    }
}
