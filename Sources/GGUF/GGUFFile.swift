import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// GGUF, read by hand: no Swift package reads it, and the engine needs the tensors in
// place (memory-mapped), not copied. Every read is bounds-checked, so a truncated or
// corrupted file gives an error that names the field and its offset.

public struct GGUFError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var offset: Int?
    public var message: String

    public var description: String {
        "\(file)\(offset.map { " (at byte \($0))" } ?? ""): \(message)"
    }
}

/// A metadata value; arrays keep their element type even when empty. Only arrays are
/// boxed: a vocabulary's 262,144 scores would otherwise be 262,144 allocations.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    indirect case array(GGUFValueType, [GGUFValue])

    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: int.map(Double.init)
        }
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [GGUFValue]? { if case .array(_, let a) = self { a } else { nil } }
}

public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

    /// The fewest bytes one value of the type takes in the file: a string is at least
    /// its length, an array its element type and count.
    var minimumSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }
}

/// Sane sizes for what a GGUF header holds, far above any real model's (Gemma 3's
/// header: 33 keys, 236 tensors, 786,432 array elements, strings under 100 bytes),
/// so that one corrupted length cannot make the reader build gigabytes of values
/// out of tensor data or run for minutes before it fails.
public enum GGUFLimits {
    /// Metadata keys ("gemma3.block_count") and tensor names (ggml allows 63 bytes).
    public static let keyLength = 4096
    public static let nameLength = 256
    /// One metadata string: chat templates are tens of KB.
    public static let stringLength = 16 << 20
    /// Array elements over all metadata (nested ones too): a vocabulary of 262,144
    /// tokens takes 786,432 (tokens, scores, types), 256K merges another 256K.
    public static let arrayElements = 1 << 24
    public static let metadataCount = 1 << 16
    public static let tensorCount = 1 << 20
}

public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// ggml order: dimensions[0] is the length of a row (the fastest-varying index).
    public var dimensions: [Int]
    public var type: GGMLType
    /// Absolute offset of the data in the file.
    public var offset: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
    public var rowLength: Int { dimensions.first ?? 1 }
    public var rowCount: Int { elementCount / rowLength }
    public var byteCount: Int { elementCount / type.blockSize * type.blockBytes }
    public var rowBytes: Int { rowLength / type.blockSize * type.blockBytes }
}

/// The file's bytes, mapped read-only and never copied.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer?
    let count: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError(file: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw GGUFError(file: path, message: "cannot stat: \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw GGUFError(file: path, message: "not a regular file") }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        guard let pointer = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            throw GGUFError(file: path, message: "cannot map: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(pointer)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// Reads little-endian fields, checking each against the end of the file.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var offset = 0
    /// Array elements read so far, against GGUFLimits.arrayElements.
    var arrayElements = 0

    var remaining: Int { bytes.count - offset }

    func fail(_ field: String, _ message: String, at position: Int? = nil) -> GGUFError {
        GGUFError(file: file, offset: position ?? offset, message: "\(Self.shown(field)): \(message)")
    }

    /// A field's name as read from a corrupted file: control characters escaped (they
    /// must not reach the terminal) and at most 200 characters.
    static func shown(_ field: String) -> String {
        var out = ""
        for (index, scalar) in field.unicodeScalars.enumerated() {
            if index == 200 { return out + "…" }
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    // Field names are autoclosures: made only for an error, not for each of the
    // vocabulary's 786,432 values.
    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ field: @autoclosure () -> String) throws(GGUFError) -> T {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count else {
            throw fail(field(), "the file ends after \(bytes.count) bytes (truncated?)")
        }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }

    mutating func count(_ field: @autoclosure () -> String, limit: Int) throws(GGUFError) -> Int {
        let start = offset
        let raw = try read(UInt64.self, field())
        guard raw <= UInt64(max(0, limit)) else {
            throw fail(field(), "count \(raw) is impossible for a file of \(bytes.count) bytes (corrupted?)", at: start)
        }
        return Int(raw)
    }

    /// A length or count no larger than `sane` (the reason is said in the error).
    mutating func count(_ field: @autoclosure () -> String, limit: Int, sane: Int, _ what: String) throws(GGUFError) -> Int {
        let start = offset
        let n = try count(field(), limit: limit)
        guard n <= sane else { throw fail(field(), "\(n) is more than \(sane), the most \(what) (corrupted?)", at: start) }
        return n
    }

    mutating func string(_ field: @autoclosure () -> String, limit sane: Int = GGUFLimits.stringLength) throws(GGUFError) -> String {
        let start = offset
        let length = try count("\(field()) length", limit: remaining - 8, sane: sane, "this reader accepts")
        guard offset + length <= bytes.count else {
            throw fail(field(), "a string of \(length) bytes runs past the end of the file", at: start)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]), as: UTF8.self)
        offset += length
        return text
    }

    mutating func value(_ type: GGUFValueType, _ field: @autoclosure () -> String, depth: Int = 0) throws(GGUFError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, field()))
        case .int8: return .int8(try read(Int8.self, field()))
        case .uint16: return .uint16(try read(UInt16.self, field()))
        case .int16: return .int16(try read(Int16.self, field()))
        case .uint32: return .uint32(try read(UInt32.self, field()))
        case .int32: return .int32(try read(Int32.self, field()))
        case .uint64: return .uint64(try read(UInt64.self, field()))
        case .int64: return .int64(try read(Int64.self, field()))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, field())))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, field())))
        case .bool:
            let start = offset
            let byte = try read(UInt8.self, field())
            guard byte <= 1 else { throw fail(field(), "bool byte is \(byte), not 0 or 1", at: start) }
            return .bool(byte == 1)
        case .string: return .string(try string(field()))
        case .array:
            guard depth < 8 else { throw fail(field(), "arrays nested deeper than 8 levels") }
            let typeOffset = offset
            let raw = try read(UInt32.self, "\(field()) element type")
            guard let elementType = GGUFValueType(rawValue: raw) else {
                throw fail(field(), "unknown array element type \(raw)", at: typeOffset)
            }
            // Each element takes at least its minimum size, which bounds the count;
            // so does the budget of elements over the whole header.
            let n = try count(
                "\(field()) array length", limit: (remaining - 8) / elementType.minimumSize,
                sane: GGUFLimits.arrayElements - arrayElements, "array elements left in the header's budget of \(GGUFLimits.arrayElements)")
            arrayElements += n
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for index in 0..<n { items.append(try value(elementType, "\(field())[\(index)]", depth: depth + 1)) }
            return .array(elementType, items)
        }
    }
}

public final class GGUFFile: Sendable {
    public static let magic: UInt32 = 0x4655_4747 // "GGUF"
    public static let defaultAlignment = 32

    public let path: String
    public let version: UInt32
    /// Metadata keys in file order, and their values.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Where tensor data starts; tensor offsets are already absolute.
    public let dataOffset: Int
    let mapping: MappedFile
    let tensorIndex: [String: Int]

    public init(path: String) throws {
        self.path = path
        mapping = try MappedFile(path: path)
        var reader = ByteReader(bytes: mapping.bytes, file: path)
        let magic = try reader.read(UInt32.self, "magic")
        guard magic == GGUFFile.magic else {
            throw reader.fail("magic", String(format: "0x%08x is not GGUF (expected the bytes 'GGUF')", magic), at: 0)
        }
        version = try reader.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw reader.fail("version", "GGUF version \(version) is not supported (2 and 3 are)", at: 4)
        }
        // A tensor's info takes at least 40 bytes (name length, one dimension, type,
        // offset, dimension count), a key-value pair 13.
        let tensorCount = try reader.count("tensor count", limit: (reader.remaining - 8) / 40, sane: GGUFLimits.tensorCount, "tensors")
        let metadataCount = try reader.count(
            "metadata count", limit: reader.remaining / 13, sane: GGUFLimits.metadataCount, "metadata keys")

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        for index in 0..<metadataCount {
            let key = try reader.string("metadata[\(index)] key", limit: GGUFLimits.keyLength)
            let typeOffset = reader.offset
            let raw = try reader.read(UInt32.self, "\(key) type")
            guard let type = GGUFValueType(rawValue: raw) else {
                throw reader.fail(key, "unknown metadata value type \(raw)", at: typeOffset)
            }
            let value = try reader.value(type, key)
            if metadata.updateValue(value, forKey: key) == nil { keys.append(key) }
        }
        metadataKeys = keys
        self.metadata = metadata

        let alignmentValue = metadata["general.alignment"]
        let alignment = alignmentValue?.int ?? GGUFFile.defaultAlignment
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= 1 << 20 else {
            throw GGUFError(file: path, message: "general.alignment \(alignmentValue.map { "\($0)" } ?? "") is not a power of two")
        }
        self.alignment = alignment

        var infos: [(name: String, dimensions: [Int], type: GGMLType, relative: Int, at: Int)] = []
        for index in 0..<tensorCount {
            let start = reader.offset
            let name = try reader.string("tensor[\(index)] name", limit: GGUFLimits.nameLength)
            let dimensionCount = try reader.read(UInt32.self, "\(name) dimension count")
            guard (1...4).contains(dimensionCount) else {
                throw reader.fail(name, "\(dimensionCount) dimensions (1 to 4 are possible)", at: start)
            }
            var dimensions: [Int] = []
            var elements = 1
            for axis in 0..<Int(dimensionCount) {
                let size = try reader.count("\(name) dimension \(axis)", limit: mapping.count * 8)
                guard size > 0 else { throw reader.fail(name, "dimension \(axis) is 0") }
                let (product, overflow) = elements.multipliedReportingOverflow(by: size)
                guard !overflow, product <= mapping.count * 8 else { throw reader.fail(name, "more elements than the file can hold") }
                elements = product
                dimensions.append(size)
            }
            let typeOffset = reader.offset
            let rawType = try reader.read(UInt32.self, "\(name) type")
            guard let type = GGMLType(rawValue: rawType) else {
                throw reader.fail(
                    name,
                    "unsupported type \(rawType) in tensor \(ByteReader.shown(name)) (supported: \(GGMLType.allCases.map(\.name).joined(separator: ", ")))",
                    at: typeOffset)
            }
            guard dimensions[0] % type.blockSize == 0 else {
                throw reader.fail(
                    name, "row length \(dimensions[0]) is not a multiple of the \(type.name) block size \(type.blockSize)", at: typeOffset)
            }
            let relative = try reader.count("\(name) offset", limit: mapping.count)
            infos.append((name, dimensions, type, relative, start))
        }
        dataOffset = (reader.offset + alignment - 1) / alignment * alignment

        var tensors: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for info in infos {
            let tensor = GGUFTensorInfo(name: info.name, dimensions: info.dimensions, type: info.type, offset: dataOffset + info.relative)
            guard info.relative % alignment == 0 else {
                throw GGUFError(
                    file: path, offset: info.at,
                    message: "\(ByteReader.shown(info.name)): data offset \(info.relative) is not aligned to \(alignment)")
            }
            guard tensor.offset + tensor.byteCount <= mapping.count else {
                throw GGUFError(
                    file: path, offset: info.at,
                    message:
                        "\(ByteReader.shown(info.name)): its \(tensor.byteCount) bytes of data at \(tensor.offset) run past the end of the file (\(mapping.count) bytes; truncated?)"
                )
            }
            guard index.updateValue(tensors.count, forKey: info.name) == nil else {
                throw GGUFError(file: path, offset: info.at, message: "two tensors are named \(ByteReader.shown(info.name))")
            }
            tensors.append(tensor)
        }
        self.tensors = tensors
        tensorIndex = index
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes, in place in the mapping.
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapping.bytes[tensor.offset..<tensor.offset + tensor.byteCount])
    }

    /// Drops the tensor's pages from memory once a copy of it is made (the engine's
    /// codes or floats); they are read from the file again if touched. Without this a
    /// 7B model would be resident twice, as the mapping and as the copy.
    public func releasePages(of tensor: GGUFTensorInfo) {
        guard let base = mapping.base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = tensor.offset / page * page, end = min(mapping.count, tensor.offset + tensor.byteCount)
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// The whole tensor as Float32, dequantised in parallel over rows.
    public func dequantize(_ tensor: GGUFTensorInfo) -> [Float] {
        // Each chunk writes its own rows; the pointers are shared read-only/disjointly.
        nonisolated(unsafe) let source = data(of: tensor).baseAddress!
        return [Float](unsafeUninitializedCapacity: tensor.elementCount) { buffer, initialized in
            nonisolated(unsafe) let output = buffer.baseAddress!
            let rows = tensor.rowCount, rowLength = tensor.rowLength, rowBytes = tensor.rowBytes
            let chunks = min(rows, max(1, ProcessInfo.processInfo.activeProcessorCount * 4))
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let first = rows * chunk / chunks, last = rows * (chunk + 1) / chunks
                guard last > first else { return }
                tensor.type.dequantize(source + first * rowBytes, count: (last - first) * rowLength, into: output + first * rowLength)
            }
            initialized = tensor.elementCount
        }
    }

    /// `count` blocks from block `first` (counted over the whole tensor) as Float32.
    public func dequantizeBlocks(_ tensor: GGUFTensorInfo, first: Int, count: Int) -> [Float] {
        let total = tensor.elementCount / tensor.type.blockSize
        precondition(
            first >= 0 && count >= 0 && first + count <= total, "blocks \(first)..<\(first + count) of \(tensor.name) (\(total) blocks)")
        let elements = count * tensor.type.blockSize
        let source = data(of: tensor).baseAddress! + first * tensor.type.blockBytes
        return [Float](unsafeUninitializedCapacity: elements) { buffer, initialized in
            tensor.type.dequantize(source, count: elements, into: buffer.baseAddress!)
            initialized = elements
        }
    }

    /// One row (e.g. one token's embedding) as Float32.
    public func dequantizeRow(_ tensor: GGUFTensorInfo, _ row: Int) -> [Float] {
        precondition(row >= 0 && row < tensor.rowCount, "row \(row) of \(tensor.name) (\(tensor.rowCount) rows)")
        let source = data(of: tensor).baseAddress! + row * tensor.rowBytes
        return [Float](unsafeUninitializedCapacity: tensor.rowLength) { buffer, initialized in
            tensor.type.dequantize(source, count: tensor.rowLength, into: buffer.baseAddress!)
            initialized = tensor.rowLength
        }
    }
}
