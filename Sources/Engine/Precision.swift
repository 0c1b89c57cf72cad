import GGUF
import Tensor

/// How the engine multiplies by the large weight matrices.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// The file's own precision class (`resolved(for:)`): floating-point weights in
    /// float32, quantised ones in their codes.
    case auto
    /// Weights kept in their 4- or 8-bit codes, activations quantised to 8 bits per block
    /// of 32, integer dot products with float32 scales (llama.cpp's scheme).
    case q8
    /// q8's codes and kernels with each activation block in two 8-bit parts, the value
    /// and its remainder (about 15 bits): twice q8's integer work, products within ~1e-4
    /// of f32's (closer than bf16), a quarter of f32's memory or less.
    case q8x2
    /// Weights dequantised to float32 at load: the exact path, as transformers computes.
    case f32

    /// What `auto` means for a model file, the one rule every loader follows: weights
    /// stored as floats (F32, F16, BF16) run in float32, never lowered to 8-bit codes; a
    /// file whose linear layers are quantised (Q4_0, Q4_K, Q8_0, …) runs in those codes
    /// (`q8`), or in float32 where only the plain C integer kernel runs (slower than
    /// float32's there). A quantised file with some float layers runs in codes.
    public func resolved(for file: GGUFFile) -> Precision {
        guard self == .auto else { return self }
        let linearWeights = LoRAAdapter.Module.allCases.map { ".\($0.tensorName).weight" }
        let quantised = file.tensors.contains { tensor in
            tensor.type.affineBits != nil && linearWeights.contains { tensor.name.hasSuffix($0) }
        }
        return quantised && QuantizedMatrix.Path.best != .plain ? .q8 : .f32
    }

    /// What `auto` means for training: f32. q8's 8-bit activations move the gradients
    /// further from float32's than PyTorch's bf16 autocast does, and q8x2 is no faster
    /// than f32 (PEFTFormatTests, BENCHMARKS.md); a run records and resumes with what it ran.
    public var resolvedForTraining: Precision { self == .auto ? .f32 : self }

    /// What runs, for the lineage and the run key: the precision and its kernel.
    public var kernelDescription: String {
        switch self {
        case .auto: preconditionFailure("auto is resolved for a file first (resolved(for:))")
        case .f32: PackedMatrix.kernelAvailable ? "float32, packed AVX-512 product" : "float32, OpenBLAS sgemm"
        case .q8, .q8x2:
            "q8 activations\(self == .q8x2 ? " in two parts" : "") × 4/8-bit weight codes, \(QuantizedMatrix.Path.best) integer product"
        }
    }
}
