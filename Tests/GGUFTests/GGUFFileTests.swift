import Foundation
import TestSupport
import XCTest

@testable import GGUF

final class GGUFFileTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// A small file with every metadata type, a nested array and tensors of three types.
    func sample() -> GGUFWriter {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("u8", .uint8(7))
        writer.set("i8", .int8(-7))
        writer.set("u16", .uint16(600))
        writer.set("i16", .int16(-600))
        writer.set("u32", .uint32(70000))
        writer.set("i32", .int32(-70000))
        writer.set("u64", .uint64(1 << 40))
        writer.set("i64", .int64(-(1 << 40)))
        writer.set("f32", .float32(0.5))
        writer.set("f64", .float64(-2.25))
        writer.set("flag", .bool(true))
        writer.set("text", .string("지문 ㉠ 😀"))
        writer.set("tokens", .array(.string, [.string("<pad>"), .string("▁안녕"), .string("")]))
        writer.set("nested", .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.int32, [])]))
        writer.tensors = [
            .init(name: "a.weight", dimensions: [4, 3], values: (0..<12).map { Float($0) / 4 }),
            .init(name: "b.weight", dimensions: [32, 2], type: .q8_0, data: (0..<68).map { UInt8($0 % 2 == 0 ? 60 : $0) }),
            .init(name: "c.weight", dimensions: [8], type: .f16, data: (0..<8).flatMap { [UInt8(0), UInt8(0x3C + $0 % 2)] })
        ]
        return writer
    }

    func write(_ bytes: [UInt8], _ name: String = "m.gguf") throws -> String {
        let path = folder.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testWriterAndReaderRoundTrip() throws {
        let writer = sample()
        let path = folder.appendingPathComponent("m.gguf").path
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadataKeys, writer.metadata.map(\.key))
        for entry in writer.metadata { XCTAssertEqual(file.metadata[entry.key], entry.value, entry.key) }
        XCTAssertEqual(file.tensors.map(\.name), ["a.weight", "b.weight", "c.weight"])
        XCTAssertTrue(file.tensors.allSatisfy { $0.offset % 32 == 0 })
        let a = try XCTUnwrap(file.tensor(named: "a.weight"))
        XCTAssertEqual(a.rowLength, 4)
        XCTAssertEqual(a.rowCount, 3)
        XCTAssertEqual(file.dequantize(a), (0..<12).map { Float($0) / 4 })
        XCTAssertEqual(file.dequantizeRow(a, 2), [2, 2.25, 2.5, 2.75])
        XCTAssertEqual(file.dequantize(file.tensor(named: "c.weight")!), [1, 1.25, 1, 1.25, 1, 1.25, 1, 1.25], "f16 0x3C00 and 0x3D00")
        // Q8_0, block 0: d is the f16 of bytes (60, 1); q0 = byte 2 (60), q1 = byte 3 (3).
        let b = file.dequantize(file.tensor(named: "b.weight")!)
        let d = Float(Float16(bitPattern: 0x013C))
        XCTAssertEqual(Array(b.prefix(2)), [60 * d, 3 * d])
    }

    /// GGUF v2 has v3's little-endian layout.
    func testVersion2Reads() throws {
        var bytes = try sample().serialized()
        bytes[4] = 2
        let file = try GGUFFile(path: try write(bytes))
        XCTAssertEqual(file.version, 2)
        XCTAssertEqual(file.metadata["text"], .string("지문 ㉠ 😀"))
    }

    func testCustomAlignment() throws {
        var writer = sample()
        writer.alignment = 64
        let path = folder.appendingPathComponent("a64.gguf").path
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertTrue(file.tensors.allSatisfy { $0.offset % 64 == 0 })
        XCTAssertEqual(file.dequantize(file.tensor(named: "a.weight")!), (0..<12).map { Float($0) / 4 })
    }

    func assertRejected(_ bytes: [UInt8], contains fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(bytes)
        XCTAssertThrowsError(try GGUFFile(path: path), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".hasPrefix(path), "the error names the file: \(error)", file: file, line: line)
        }
    }

    func testClearErrors() throws {
        let good = try sample().serialized()
        try assertRejected(Array("NOPE".utf8) + Array(good.dropFirst(4)), contains: "is not GGUF")
        var version = good
        version[4] = 1
        try assertRejected(version, contains: "GGUF version 1 is not supported")
        try assertRejected(Array(good.prefix(10)), contains: "truncated")
        try assertRejected(Array(good.dropLast(10)), contains: "c.weight: its 16 bytes of data")
        // The type field of the last tensor info: "unsupported type N in tensor X".
        var unknown = good
        let typeOffset = try XCTUnwrap(find(Array("c.weight".utf8), in: unknown)) + 8 + 4 + 8
        unknown[typeOffset] = 99
        try assertRejected(unknown, contains: "unsupported type 99 in tensor c.weight")
        try assertRejected([], contains: "the file ends after 0 bytes")
    }

    func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        (0...(haystack.count - needle.count)).first { Array(haystack[$0..<$0 + needle.count]) == needle }
    }

    /// Truncations at random offsets and flipped bytes anywhere in the header and the
    /// tensor infos: each must open or fail with an error, never crash or hang.
    func testFuzzedFilesFailCleanly() throws {
        let good = try sample().serialized()
        let headerEnd = try GGUFFile(path: try write(good, "good.gguf")).dataOffset
        var generator = SeededGenerator(seed: 42)
        var failures = 0
        for _ in 0..<20 {
            let cut = Int.random(in: 0..<good.count, using: &generator)
            XCTAssertThrowsError(try GGUFFile(path: try write(Array(good.prefix(cut)))), "truncated at \(cut)")
        }
        for round in 0..<2000 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                bytes[Int.random(in: 0..<headerEnd, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            do {
                let file = try GGUFFile(path: try write(bytes))
                // A file that still opens must still be readable in full.
                for tensor in file.tensors { _ = file.dequantize(tensor) }
            } catch {
                failures += 1
                XCTAssertFalse("\(error)".isEmpty, "round \(round)")
            }
        }
        print("fuzz: \(failures) of 2000 corrupted headers refused with an error, the rest read in full")
    }

    func testDefaultModelOpensFast() throws {
        let path = try DefaultModels.path(DefaultModels.gemma)
        let start = Date()
        let file = try GGUFFile(path: path)
        print(
            String(
                format: "opened %@ with %d metadata keys and %d tensors in %.3f s", path, file.metadata.count, file.tensors.count,
                Date().timeIntervalSince(start)))
        XCTAssertEqual(file.metadata["general.architecture"]?.string, "gemma3")
        XCTAssertEqual(file.tensors.count, 236)
        XCTAssertEqual(Set(file.tensors.map(\.type)), [.f32, .q5_0, .q4_K, .q8_0, .q6_K])
    }
}
