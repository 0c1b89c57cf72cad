import Foundation

/// Writes GGUF v3: for tiny test models, and for adapters.
public struct GGUFWriter: Sendable {
    public struct Tensor: Sendable {
        public var name: String
        /// ggml order: dimensions[0] is the row length.
        public var dimensions: [Int]
        public var type: GGMLType
        /// Exactly the tensor's bytes in its block format.
        public var data: [UInt8]

        public init(name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.data = data
        }

        /// A Float32 tensor.
        public init(name: String, dimensions: [Int], values: [Float]) {
            self.init(name: name, dimensions: dimensions, type: .f32, data: values.withUnsafeBytes { Array($0) })
        }
    }

    public var metadata: [(key: String, value: GGUFValue)] = []
    public var tensors: [Tensor] = []
    public var alignment = GGUFFile.defaultAlignment

    public init() {}

    public mutating func set(_ key: String, _ value: GGUFValue) {
        metadata.removeAll { $0.key == key }
        metadata.append((key, value))
    }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        func append(_ text: String) { append(UInt64(text.utf8.count)); out += text.utf8 }
        func append(_ value: GGUFValue, typed: Bool) {
            if typed { append(value.valueType.rawValue) }
            switch value {
            case .uint8(let v): append(v)
            case .int8(let v): append(v)
            case .uint16(let v): append(v)
            case .int16(let v): append(v)
            case .uint32(let v): append(v)
            case .int32(let v): append(v)
            case .uint64(let v): append(v)
            case .int64(let v): append(v)
            case .float32(let v): append(v.bitPattern)
            case .float64(let v): append(v.bitPattern)
            case .bool(let v): append(UInt8(v ? 1 : 0))
            case .string(let v): append(v)
            case .array(let type, let items):
                append(type.rawValue)
                append(UInt64(items.count))
                for item in items { append(item, typed: false) }
            }
        }

        append(GGUFFile.magic)
        append(UInt32(3))
        append(UInt64(tensors.count))
        var entries = metadata
        if alignment != GGUFFile.defaultAlignment, !entries.contains(where: { $0.key == "general.alignment" }) {
            entries.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        append(UInt64(entries.count))
        for entry in entries {
            append(entry.key)
            append(entry.value, typed: true)
        }
        var offset = 0
        for tensor in tensors {
            append(tensor.name)
            append(UInt32(tensor.dimensions.count))
            for size in tensor.dimensions { append(UInt64(size)) }
            append(tensor.type.rawValue)
            append(UInt64(offset))
            offset += (tensor.data.count + alignment - 1) / alignment * alignment
        }
        for tensor in tensors {
            out += repeatElement(0, count: (alignment - out.count % alignment) % alignment)
            out += tensor.data
        }
        return out
    }

    /// Writes the file atomically (a temporary file renamed over the target).
    public func write(to path: String) throws {
        let temporary = path + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
        do {
            try Data(serialized()).write(to: URL(fileURLWithPath: temporary))
        } catch {
            // A full disk leaves no partial file behind.
            try? FileManager.default.removeItem(atPath: temporary)
            throw GGUFError(file: path, message: "cannot write: \(error.localizedDescription)")
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw GGUFError(file: path, message: "cannot write: \(String(cString: strerror(errno)))")
        }
    }
}

extension GGUFValue {
    public var valueType: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }
}
