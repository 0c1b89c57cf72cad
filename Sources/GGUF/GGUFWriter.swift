import Foundation

/// Writes GGUF v3: tiny test models, adapters, merged models. A tensor's bytes are
/// made when the file reaches them, so a 7B model is written one tensor at a time.
public struct GGUFWriter: Sendable {
    public struct Tensor: Sendable {
        public var name: String
        /// ggml order: dimensions[0] is the row length.
        public var dimensions: [Int]
        public var type: GGMLType
        public var byteCount: Int
        /// Exactly the tensor's bytes in its block format (byteCount of them).
        public var data: @Sendable () throws -> [UInt8]

        public init(name: String, dimensions: [Int], type: GGMLType, byteCount: Int, data: @escaping @Sendable () throws -> [UInt8]) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.byteCount = byteCount
            self.data = data
        }

        public init(name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) {
            self.init(name: name, dimensions: dimensions, type: type, byteCount: data.count) { data }
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

    /// The whole file in memory (small files: tests).
    public func serialized() throws -> [UInt8] {
        var out = header()
        for tensor in tensors {
            out += repeatElement(0, count: (alignment - out.count % alignment) % alignment)
            out += try checkedData(tensor)
        }
        return out
    }

    func checkedData(_ tensor: Tensor) throws -> [UInt8] {
        let data = try tensor.data()
        guard data.count == tensor.byteCount else {
            throw GGUFError(file: tensor.name, message: "made \(data.count) bytes, its header says \(tensor.byteCount)")
        }
        return data
    }

    /// The header, metadata and tensor infos.
    func header() -> [UInt8] {
        var out: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        func append(_ text: String) {
            append(UInt64(text.utf8.count))
            out += text.utf8
        }
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
            offset += (tensor.byteCount + alignment - 1) / alignment * alignment
        }
        return out
    }

    /// Writes the file atomically (a temporary file beside it, renamed over the
    /// target), tensor by tensor; a failure (a full disk, a tensor that cannot be
    /// made) leaves no partial file. Without `replacing`, an existing file is kept and
    /// an error says so, even when another process made it meanwhile.
    public func write(to path: String, replacing: Bool = true, progress: (_ written: Int, _ total: Int) -> Void = { _, _ in }) throws {
        let temporary = path + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
        do {
            guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
                throw GGUFError(file: path, message: "cannot create \(temporary): \(String(cString: strerror(errno)))")
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            var written = 0
            func put(_ bytes: [UInt8]) throws {
                try handle.write(contentsOf: bytes)
                written += bytes.count
            }
            try put(header())
            let total = tensors.reduce(written) { ($0 + alignment - 1) / alignment * alignment + $1.byteCount }
            for tensor in tensors {
                try put(Array(repeating: 0, count: (alignment - written % alignment) % alignment))
                try put(try checkedData(tensor))
                progress(written, total)
            }
            try handle.synchronize()
        } catch let error as CocoaError {
            try? FileManager.default.removeItem(atPath: temporary)
            throw GGUFError(file: path, message: "cannot write: \(error.localizedDescription)")
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        // link() fails where the target exists: no file is replaced by a race.
        let moved = replacing ? rename(temporary, path) : link(temporary, path)
        let reason = errno
        if !replacing || moved != 0 { try? FileManager.default.removeItem(atPath: temporary) }
        guard moved == 0 else {
            throw GGUFError(
                file: path,
                message: reason == EEXIST ? "exists; nothing is overwritten" : "cannot write: \(String(cString: strerror(reason)))")
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
