import Foundation
import GGUF
import TestSupport
import Tokenizer
import XCTest

@testable import Engine

func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

/// Where each field of a GGUF header is, walked over the pristine file.
struct HeaderMap {
    struct Entry {
        var key: String
        /// The key's length field, the value type field, the value itself.
        var keyAt: Int, typeAt: Int, valueAt: Int
        var type: UInt32
        /// Arrays: the element type's offset, the count's, the count, and the offsets of
        /// string elements' length fields (the first ones).
        var count: Int = 0
        var stringLengths: [Int] = []
        var end: Int
    }

    struct TensorEntry {
        var name: String
        /// The name's length field, the dimension count, each dimension, type, offset.
        var at: Int, dimensionCountAt: Int, dimensionsAt: [Int], typeAt: Int, offsetAt: Int
        var dimensions: [Int]
        var offset: Int
    }

    var entries: [Entry] = []
    var tensors: [TensorEntry] = []
    /// The end of the tensor infos, and where the data starts (aligned).
    var end = 0
    var dataOffset = 0

    init(_ bytes: [UInt8]) {
        var at = 0
        func u32() -> UInt32 {
            defer { at += 4 }
            return bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        func u64() -> Int {
            defer { at += 8 }
            return Int(bytes[at..<at + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
        func string() -> String {
            let n = u64()
            defer { at += n }
            return String(decoding: bytes[at..<at + n], as: UTF8.self)
        }
        let sizes: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
        at = 8
        let tensorCount = u64(), metadataCount = u64()
        for _ in 0..<metadataCount {
            let keyAt = at
            let key = string()
            let typeAt = at
            let type = u32()
            var entry = Entry(key: key, keyAt: keyAt, typeAt: typeAt, valueAt: at, type: type, end: 0)
            switch type {
            case 8: _ = string()
            case 9:
                let elementType = u32()
                entry.count = u64()
                if elementType == 8 {
                    for index in 0..<entry.count {
                        if index < 4096 { entry.stringLengths.append(at) }
                        _ = string()
                    }
                } else {
                    at += entry.count * sizes[elementType]!
                }
            default: at += sizes[type]!
            }
            entry.end = at
            entries.append(entry)
        }
        for _ in 0..<tensorCount {
            let start = at
            let name = string()
            let dimensionCountAt = at
            let count = Int(u32())
            var dimensionsAt: [Int] = [], dimensions: [Int] = []
            for _ in 0..<count {
                dimensionsAt.append(at)
                dimensions.append(u64())
            }
            let typeAt = at
            _ = u32()
            let offsetAt = at
            tensors.append(
                TensorEntry(
                    name: name, at: start, dimensionCountAt: dimensionCountAt, dimensionsAt: dimensionsAt,
                    typeAt: typeAt, offsetAt: offsetAt, dimensions: dimensions, offset: u64()))
        }
        end = at
        dataOffset = (at + 31) / 32 * 32
    }

    func entry(_ key: String) -> Entry { entries.first { $0.key == key }! }
    func tensor(_ name: String) -> TensorEntry { tensors.first { $0.name == name }! }
}

/// A changed copy of a file: bytes written over the original at offsets in the header,
/// and written back afterwards.
struct Variant {
    var label: String
    var edits: [(at: Int, bytes: [UInt8])]

    init(_ label: String, _ edits: [(at: Int, bytes: [UInt8])]) {
        self.label = label
        self.edits = edits
    }

    init(_ label: String, at: Int, _ bytes: [UInt8]) { self.init(label, [(at, bytes)]) }
}

/// A private copy of the default Gemma model in a temporary folder, changed in place
/// per variant (a 253 MB file is not rewritten 500 times), and its header mapped.
final class HostileCopy {
    let folder: URL
    let path: String
    let original: String
    /// The pristine header: everything before the tensor data.
    let header: [UInt8]
    let map: HeaderMap
    let fileSize: Int

    init() throws {
        original = try DefaultModels.path(DefaultModels.gemma)
        folder = try makeTemporaryFolder("hostile")
        path = folder.appendingPathComponent("gemma-copy.gguf").path
        try FileManager.default.copyItem(atPath: original, toPath: path)
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: path))
        defer { try? handle.close() }
        // The header is 6.5 MB of the 253: read a generous prefix, map it, keep what it is.
        let prefix = [UInt8](try handle.read(upToCount: 8 << 20) ?? Data())
        map = HeaderMap(prefix)
        header = Array(prefix[..<map.dataOffset])
        fileSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }

    /// Runs `body` with the variant's bytes in the copy, restoring them whatever happens.
    func with<T>(_ variant: Variant, _ body: () throws -> T) throws -> T {
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        for edit in variant.edits {
            precondition(edit.at >= 0 && edit.at + edit.bytes.count <= header.count, "\(variant.label): an edit outside the header")
            try handle.seek(toOffset: UInt64(edit.at))
            try handle.write(contentsOf: edit.bytes)
        }
        defer {
            for edit in variant.edits.reversed() {
                try? handle.seek(toOffset: UInt64(edit.at))
                try? handle.write(contentsOf: header[edit.at..<edit.at + edit.bytes.count])
            }
        }
        return try body()
    }

    /// An entry replaced by another key, type and value: the rest of the header moves,
    /// within the padding before the aligned data (8 bytes for this file).
    func replaced(_ label: String, _ entry: HeaderMap.Entry, key: String, type: GGUFValueType, _ value: [UInt8]) -> Variant {
        let bytes = littleEndian(UInt64(key.utf8.count)) + Array(key.utf8) + littleEndian(type.rawValue) + value
        let moved = bytes + header[entry.end..<map.end]
        precondition(
            entry.keyAt + moved.count <= map.dataOffset && entry.keyAt + moved.count > map.dataOffset - 32, "\(label): the data would move")
        return Variant(label, at: entry.keyAt, moved)
    }

    /// A 4-byte value replaced by an 8-byte one of another type (2^63 as uint64): the
    /// rest of the header moves 4 bytes on, into the padding before the aligned data.
    func widened(_ label: String, _ entry: HeaderMap.Entry, type: GGUFValueType, _ value: [UInt8]) -> Variant {
        precondition(map.end + 4 <= map.dataOffset && value.count == 8)
        let moved = littleEndian(type.rawValue) + value + header[entry.end..<map.end]
        return Variant(label, at: entry.typeAt, Array(moved))
    }
}

/// What happened to one variant: the stage that refused it (with the error), or that
/// it loaded and ran.
enum Outcome {
    case refused(stage: String, error: String)
    case ran

    var stage: String {
        switch self {
        case .refused(let stage, _): stage
        case .ran: "ran"
        }
    }

    var error: String? {
        if case .refused(_, let error) = self { error } else { nil }
    }
}

/// The whole loading path of a model file, in process: GGUF, tokenizer, config, model
/// (with an adapter, if any), and a forward pass over a few tokens with the answer
/// logits. Each stage's error is caught as the refusal of the variant.
func load(_ path: String, adapter: LoRAAdapter? = nil) -> Outcome {
    let file: GGUFFile
    do { file = try GGUFFile(path: path) } catch { return .refused(stage: "gguf", error: "\(error)") }
    let tokenizer: Tokenizer
    do { tokenizer = try Tokenizer(gguf: file) } catch { return .refused(stage: "tokenizer", error: "\(error)") }
    do { _ = try ModelConfig(file) } catch { return .refused(stage: "config", error: "\(error)") }
    let model: Model
    do { model = try Model(file: file, adapter: adapter) } catch { return .refused(stage: "model", error: "\(error)") }
    return forward(model, tokenizer)
}

/// A forward pass on a short prompt and the logits of its first tokens, as the scorer
/// reads the answer tokens'.
func forward(_ model: Model, _ tokenizer: Tokenizer) -> Outcome {
    let tokens = Array(tokenizer.encode("Answer: 3", addSpecial: true).prefix(8))
    do {
        let hidden = try model.forwardToFinalHidden(tokens)
        _ = model.logits(hidden, tokens: Array(tokens.prefix(3)))
        return .ran
    } catch {
        return .refused(stage: "forward", error: "\(error)")
    }
}

/// A PEFT adapter folder for the default Gemma model, written by the safetensors
/// writer: rank 2 on layer 0's q projection (640 → 1024) and layer 1's down projection
/// (2048 → 640).
func writeGemmaAdapter(in folder: URL, rank: Int = 2) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let config = #"{"peft_type": "LORA", "r": \#(rank), "lora_alpha": 4, "bias": "none", "target_modules": ["q_proj", "down_proj"]}"#
    try Data(config.utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
    var tensors: [(name: String, shape: [Int], values: [Float])] = []
    for (layer, module, inputs, outputs) in [(0, "self_attn.q_proj", 640, 1024), (1, "mlp.down_proj", 2048, 640)] {
        let base = "base_model.model.model.layers.\(layer).\(module)"
        tensors.append((base + ".lora_A.weight", [rank, inputs], (0..<rank * inputs).map { Float($0 % 7) * 0.01 }))
        tensors.append((base + ".lora_B.weight", [outputs, rank], (0..<outputs * rank).map { Float($0 % 5) * 0.01 }))
    }
    try Safetensors.write(tensors, to: folder.appendingPathComponent("adapter_model.safetensors"))
}

/// adapter_model.safetensors split into its JSON header and its data.
func readSafetensors(_ url: URL) throws -> (header: [String: Any], data: Data) {
    let bytes = try Data(contentsOf: url)
    let length = Int(bytes.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    let header = try XCTUnwrap(JSONSerialization.jsonObject(with: bytes[8..<8 + length]) as? [String: Any])
    return (header, bytes[(8 + length)...])
}

/// The file again from a (changed) header and the data.
func writeSafetensors(_ header: [String: Any], _ data: Data, to url: URL) throws {
    try writeSafetensors(raw: JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]), data, to: url)
}

func writeSafetensors(raw json: Data, _ data: Data, to url: URL, claimedLength: UInt64? = nil) throws {
    var bytes = Data(littleEndian(claimedLength ?? UInt64(json.count)))
    bytes.append(json)
    bytes.append(data)
    try bytes.write(to: url)
}
