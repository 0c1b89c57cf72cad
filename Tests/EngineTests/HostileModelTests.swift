import Foundation
import GGUF
import TestSupport
import Tokenizer
import XCTest

@testable import Engine

/// The corruptions found by hand in the default model (the issue "Hostile model
/// files"), one by one: each must end in an error naming the file and the field, fast,
/// where it crashed, hung or tried to allocate hundreds of gigabytes before.
final class HostileModelTests: XCTestCase {
    nonisolated(unsafe) static var copy: HostileCopy?

    override class func tearDown() {
        copy?.remove()
        copy = nil
    }

    /// The copy of the default Gemma model, made once for the class.
    func gemmaCopy() throws -> HostileCopy {
        if let copy = Self.copy { return copy }
        let copy = try HostileCopy()
        Self.copy = copy
        return copy
    }

    /// The variant's outcome, which must be a refusal at `stage` whose message names
    /// the file and contains each of `words`, within `seconds`.
    func assertRefused(
        _ variant: Variant, at stage: String, saying words: [String], within seconds: Double = 5,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let copy = try gemmaCopy()
        let start = Date()
        let outcome = try copy.with(variant) { load(copy.path) }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertLessThan(elapsed, seconds, "\(variant.label) took \(elapsed) s", file: file, line: line)
        guard case .refused(let refusedAt, let error) = outcome else {
            return XCTFail("\(variant.label) loaded and ran", file: file, line: line)
        }
        XCTAssertEqual(refusedAt, stage, "\(variant.label): \(error)", file: file, line: line)
        for word in [copy.path] + words {
            XCTAssertTrue(error.contains(word), "\(variant.label): the error does not say \(word): \(error)", file: file, line: line)
        }
        XCTAssertLessThan(error.count, 600, "\(variant.label): \(error)", file: file, line: line)
    }

    func u32(_ key: String, _ value: UInt32) throws -> Variant {
        let entry = try gemmaCopy().map.entry(key)
        return Variant("\(key) = \(value)", at: entry.valueAt, littleEndian(value))
    }

    func testTheCopyLoadsAndRunsUnchanged() throws {
        let copy = try gemmaCopy()
        let outcome = try copy.with(Variant("none", [])) { load(copy.path) }
        XCTAssertEqual(outcome.stage, "ran")
    }

    func testTokenIdsOutsideTheVocabularyAreRefused() throws {
        for key in [
            "tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.padding_token_id",
            "tokenizer.ggml.unknown_token_id"
        ] {
            try assertRefused(try u32(key, 0xFFFF_FFFF), at: "tokenizer", saying: [key, "4294967295", "262143"])
            // One past the last token.
            try assertRefused(try u32(key, 262_144), at: "tokenizer", saying: [key, "262144"])
        }
        // The last token is one.
        let copy = try gemmaCopy()
        XCTAssertEqual(try copy.with(try u32("tokenizer.ggml.eos_token_id", 262_143)) { load(copy.path) }.stage, "ran")
    }

    func testZeroHeadsAreRefused() throws {
        try assertRefused(try u32("gemma3.attention.head_count", 0), at: "config", saying: ["gemma3.attention.head_count", "is 0"])
        try assertRefused(try u32("gemma3.attention.head_count_kv", 0), at: "config", saying: ["gemma3.attention.head_count_kv", "is 0"])
        // 3 KV heads do not divide 4 heads.
        try assertRefused(
            try u32("gemma3.attention.head_count_kv", 3), at: "config", saying: ["gemma3.attention.head_count_kv", "does not divide"])
    }

    func testHugeWidthLayersAndRopeDimensionAreRefused() throws {
        try assertRefused(try u32("gemma3.embedding_length", 0xFFFF_FFFF), at: "config", saying: ["gemma3.embedding_length", "4294967295"])
        try assertRefused(try u32("gemma3.block_count", 0xFFFF_FFFF), at: "config", saying: ["gemma3.block_count", "4294967295"])
        try assertRefused(try u32("gemma3.feed_forward_length", 0xFFFF_FFFF), at: "config", saying: ["gemma3.feed_forward_length"])
        try assertRefused(try u32("gemma3.attention.key_length", 0xFFFF_FFFF), at: "config", saying: ["gemma3.attention.key_length"])
        // The file has no rope.dimension_count: value_length (29 bytes of key, 256)
        // becomes it (27 bytes), the header 2 bytes shorter.
        let copy = try gemmaCopy()
        let entry = copy.map.entry("gemma3.attention.value_length")
        for (value, words) in [(UInt32(0xFFFF_FFFF), ["4294967295"]), (0, ["is 0"]), (255, ["even"]), (512, ["at most the head size 256"])]
        {
            let variant = copy.replaced(
                "rope.dimension_count = \(value)", entry, key: "gemma3.rope.dimension_count", type: .uint32, littleEndian(value))
            try assertRefused(variant, at: "config", saying: ["gemma3.rope.dimension_count"] + words)
        }
        // A half-rotary head is a model the engine runs.
        let half = copy.replaced(
            "rope.dimension_count = 128", entry, key: "gemma3.rope.dimension_count", type: .uint32, littleEndian(UInt32(128)))
        XCTAssertEqual(try copy.with(half) { load(copy.path) }.stage, "ran")
        // 2^63 as a uint64 is no Int: "missing" to the config's reader, but named.
        let wide = copy.widened("block_count = 2^63", copy.map.entry("gemma3.block_count"), type: .uint64, littleEndian(UInt64(1) << 63))
        try assertRefused(wide, at: "config", saying: ["gemma3.block_count"])
        let wideContext = copy.widened(
            "context_length = 2^63", copy.map.entry("gemma3.context_length"), type: .uint64, littleEndian(UInt64(1) << 63))
        try assertRefused(wideContext, at: "config", saying: ["gemma3.context_length", "not an integer"])
    }

    func testZeroLayersAreRefused() throws {
        try assertRefused(try u32("gemma3.block_count", 0), at: "config", saying: ["gemma3.block_count", "is 0", "at least 1"])
        // More layers than the tensors have.
        try assertRefused(try u32("gemma3.block_count", 19), at: "config", saying: ["blk.18.", "missing"])
    }

    func testNonFiniteNumbersAreRefused() throws {
        let copy = try gemmaCopy()
        for key in ["gemma3.attention.layer_norm_rms_epsilon", "gemma3.rope.freq_base"] {
            for value in [Float.nan, .infinity, 0, -1] {
                let variant = Variant("\(key) = \(value)", at: copy.map.entry(key).valueAt, littleEndian(value.bitPattern))
                try assertRefused(variant, at: "config", saying: [key, "positive finite"])
            }
        }
        // A sliding window of 0 would see no key at all.
        try assertRefused(try u32("gemma3.attention.sliding_window", 0), at: "config", saying: ["gemma3.attention.sliding_window", "is 0"])
    }

    /// The corrupted length byte: the scores' count grown by 2^27 made the reader box
    /// 62 million floats out of tensor data (76 s); a name's length by 2^16 swallows
    /// the next keys.
    func testCorruptedLengthsFailFast() throws {
        let copy = try gemmaCopy()
        let scores = copy.map.entry("tokenizer.ggml.scores")
        // The count is after the element type.
        let count = scores.valueAt + 4
        try assertRefused(
            Variant("scores count + 2^27", at: count + 3, [copy.header[count + 3] | 0x08]), at: "gguf",
            saying: ["tokenizer.ggml.scores array length"], within: 2)
        try assertRefused(
            Variant("scores count + 2^24", at: count + 3, [copy.header[count + 3] | 0x01]), at: "gguf",
            saying: ["tokenizer.ggml.scores array length"], within: 2)
        let name = copy.map.entry("general.name")
        try assertRefused(Variant("name length + 2^16", at: name.valueAt + 2, [0x01]), at: "gguf", saying: ["at byte"], within: 2)
        try assertRefused(Variant("name length 2^40", at: name.valueAt + 5, [0x01]), at: "gguf", saying: ["general.name length"], within: 2)
        let tokens = copy.map.entry("tokenizer.ggml.tokens")
        try assertRefused(
            Variant("a token's length + 2^20", at: tokens.stringLengths[100] + 2, [0x10]), at: "gguf", saying: ["at byte"], within: 2)
    }

    func testHugeAdapterTensorIsRefused() throws {
        let folder = try makeTemporaryFolder("hostile-adapter")
        defer { try? FileManager.default.removeItem(at: folder) }
        try writeGemmaAdapter(in: folder)
        let weights = folder.appendingPathComponent("adapter_model.safetensors")
        var (header, data) = try readSafetensors(weights)
        let name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        var entry = try XCTUnwrap(header[name] as? [String: Any])
        for shape in [[1 << 40, 1 << 40], [1 << 62, 4], [-1, 640], [2, 1 << 40]] {
            entry["shape"] = shape
            header[name] = entry
            try writeSafetensors(header, data, to: weights)
            let start = Date()
            XCTAssertThrowsError(try LoRAAdapter(folder: folder.path), "\(shape)") { error in
                XCTAssertTrue("\(error)".contains(weights.path) && "\(error)".contains(name), "\(error)")
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        }
        // Offsets past the end of the file, or near Int.max.
        (header, data) = try readSafetensors(weights)
        entry["shape"] = [2, 640]
        for offsets in [[0, 1 << 62], [Int.max - 8, Int.max], [-8, 0], [16, 8]] {
            entry["data_offsets"] = offsets
            header[name] = entry
            try writeSafetensors(header, data, to: weights)
            XCTAssertThrowsError(try LoRAAdapter(folder: folder.path), "\(offsets)") { error in
                XCTAssertTrue("\(error)".contains(name) && "\(error)".contains("outside the file"), "\(error)")
            }
        }
        // A header length past the file, and a layer number past any model's.
        try writeSafetensors(raw: Data("{}".utf8), data, to: weights, claimedLength: UInt64.max)
        XCTAssertThrowsError(try LoRAAdapter(folder: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("header claims"), "\(error)")
        }
        try writeGemmaAdapter(in: folder)
        (header, data) = try readSafetensors(weights)
        for (old, new) in [("layers.0.", "layers.99999999999999999999."), ("layers.0.", "layers.-1.")] {
            var renamed = header
            for key in header.keys where key.contains(old) {
                renamed[key.replacingOccurrences(of: old, with: new)] = renamed.removeValue(forKey: key)
            }
            try writeSafetensors(renamed, data, to: weights)
            XCTAssertThrowsError(try LoRAAdapter(folder: folder.path)) { error in
                XCTAssertTrue("\(error)".contains("not a supported layer"), "\(error)")
            }
        }
        // And the adapter as written loads, merges into the model and runs.
        try writeGemmaAdapter(in: folder)
        let original = try DefaultModels.path(DefaultModels.gemma)
        XCTAssertEqual(load(original, adapter: try LoRAAdapter(folder: folder.path)).stage, "ran")
    }
}
