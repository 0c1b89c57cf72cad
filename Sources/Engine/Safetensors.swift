import Foundation
import GGUF

/// A safetensors file (Hugging Face's format, PEFT's adapter_model.safetensors): an
/// 8-byte little-endian header length, a JSON header naming each tensor's dtype,
/// shape and byte range, then the data. Hand-written: no Swift package on our list
/// reads it, and an adapter needs only this much. Values are returned as Float32.
public struct Safetensors: Sendable {
    public struct Tensor: Sendable {
        public var shape: [Int]
        public var values: [Float]
    }

    public let path: String
    public let tensors: [String: Tensor]

    /// The dtypes adapters are saved in, as the GGUF types that dequantise them.
    static let types: [String: GGMLType] = ["F32": .f32, "F16": .f16, "BF16": .bf16]
    /// The reference reader's limit on the JSON header.
    static let headerLimit = 100_000_000

    public init(path: String) throws {
        self.path = path
        func problem(_ message: String) -> EngineError { EngineError(message: "\(path): \(message)") }
        // Mapped, not read: the values are copied out below, only as far as the
        // header's byte ranges (checked against the file) reach.
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { throw problem("cannot be read") }
        guard data.count >= 8 else { throw problem("is \(data.count) bytes, too short for a safetensors header") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(min(data.count - 8, Self.headerLimit)) else {
            throw problem(
                "its header claims \(headerLength) bytes but the file has \(data.count - 8) after the length (and headers are at most \(Self.headerLimit)): truncated or not safetensors"
            )
        }
        let body = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data[8..<body]) as? [String: Any] else {
            throw problem("the header is not a JSON object")
        }
        var tensors: [String: Tensor] = [:]
        for (name, entry) in header where name != "__metadata__" {
            guard let entry = entry as? [String: Any], let dtype = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw problem("tensor \(name): the header entry lacks dtype, shape or data_offsets")
            }
            guard let type = Self.types[dtype] else {
                throw problem("tensor \(name) is \(dtype); supported: \(Self.types.keys.sorted().joined(separator: ", "))")
            }
            // The byte range first, so that nothing below can overflow: it bounds the
            // values the shape may claim by the file's size.
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= data.count - body else {
                throw problem(
                    "tensor \(name): bytes \(offsets[0])..<\(offsets[1]) of the data are outside the file (\(data.count - body) bytes of data): truncated?"
                )
            }
            let begin = body + offsets[0], end = body + offsets[1]
            // A shape of [2^40, 2^40] overflows Int: multiply with a check, and stop
            // as soon as the count passes what the byte range holds.
            var count = 1
            for size in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard size >= 0, !overflow, product <= end - begin else {
                    throw problem("tensor \(name): shape \(shape) holds more \(dtype) values than its \(end - begin) bytes")
                }
                count = product
            }
            guard end - begin == count * type.blockBytes else {
                throw problem("tensor \(name): \(end - begin) bytes for \(count) \(dtype) values of shape \(shape)")
            }
            let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                data[begin..<end].withUnsafeBytes { type.dequantize($0.baseAddress!, count: count, into: buffer.baseAddress!) }
                initialized = count
            }
            tensors[name] = Tensor(shape: shape, values: values)
        }
        self.tensors = tensors
    }
}

extension Safetensors {
    /// Writes F32 tensors as a safetensors file (names sorted, the header padded with
    /// spaces to 8 bytes as the reference writer does), atomically: a temporary file,
    /// flushed, then renamed.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], to url: URL) throws {
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for tensor in sorted {
            precondition(tensor.shape.reduce(1, *) == tensor.values.count)
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + 4 * tensor.values.count]]
            offset += 4 * tensor.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for tensor in sorted {
            tensor.values.withUnsafeBufferPointer {
                data.append(
                    UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: 4 * $0.count))
            }
        }
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        try data.write(to: temporary)
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.synchronize()
        try handle.close()
        if rename(temporary.path, url.path) != 0 {
            throw EngineError(message: "\(url.path): cannot write: \(String(cString: strerror(errno)))")
        }
    }
}
