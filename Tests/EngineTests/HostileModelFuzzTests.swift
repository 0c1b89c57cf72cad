import Foundation
import GGUF
import TestSupport
import Tokenizer
import XCTest

@testable import Engine

/// Hundreds of corrupted copies of the default Gemma model's header and metadata, and
/// of a PEFT adapter for it: each must load and run, or be refused with an error that
/// names the file, at some stage, in under 10 s; none may crash (a crash ends the test
/// process). SUNEUNG_FUZZ_SEED=N remakes another run's variants.
final class HostileModelFuzzTests: XCTestCase {
    static let defaultSeed: UInt64 = 20_251_201

    /// SUNEUNG_FUZZ_VERBOSE=1 prints each variant's outcome.
    var verbose: Bool { ProcessInfo.processInfo.environment["SUNEUNG_FUZZ_VERBOSE"] != nil }

    var seed: UInt64 { ProcessInfo.processInfo.environment["SUNEUNG_FUZZ_SEED"].flatMap { UInt64($0) } ?? Self.defaultSeed }

    func testCorruptedModelHeadersAreRefusedOrRun() throws {
        var random = SeededGenerator(seed: seed)
        let copy = try HostileCopy()
        defer { copy.remove() }
        let variants = Self.variants(copy, &random)
        XCTAssertGreaterThanOrEqual(variants.count, 500)

        // Past the header, every stage is a function of what the header says (the
        // tensor data is never changed): where a variant's tokenizer keys, or its
        // tensors and other keys, equal the pristine file's, the pristine tokenizer or
        // model, made once, stands in for its own. The forward pass always runs.
        let pristine = try GGUFFile(path: copy.original)
        let pristineTokenizer = try Tokenizer(gguf: pristine)
        let pristineModel = try Model(file: pristine)
        func tokenizerKeys(_ file: GGUFFile) -> [String: GGUFValue] { file.metadata.filter { $0.key.hasPrefix("tokenizer.") } }
        func modelKeys(_ file: GGUFFile) -> [String: GGUFValue] { file.metadata.filter { !$0.key.hasPrefix("tokenizer.") } }
        let pristineTokenizerKeys = tokenizerKeys(pristine), pristineModelKeys = modelKeys(pristine)
        var tokenizersBuilt = 0, modelsLoaded = 0
        // Seconds spent in each stage, over all variants.
        var seconds: [String: Double] = [:]
        func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
            let start = Date()
            defer { seconds[stage, default: 0] += Date().timeIntervalSince(start) }
            return try body()
        }

        func attempt() -> Outcome {
            let file: GGUFFile
            do { file = try timed("gguf") { try GGUFFile(path: copy.path) } } catch { return .refused(stage: "gguf", error: "\(error)") }
            let tokenizer: Tokenizer
            if tokenizerKeys(file) == pristineTokenizerKeys {
                tokenizer = pristineTokenizer
            } else {
                tokenizersBuilt += 1
                do { tokenizer = try timed("tokenizer") { try Tokenizer(gguf: file) } } catch {
                    return .refused(stage: "tokenizer", error: "\(error)")
                }
            }
            do { _ = try timed("config") { try ModelConfig(file) } } catch { return .refused(stage: "config", error: "\(error)") }
            let model: Model
            if file.tensors == pristine.tensors, modelKeys(file) == pristineModelKeys,
                file.metadata["tokenizer.ggml.tokens"]?.array?.count == pristine.metadata["tokenizer.ggml.tokens"]?.array?.count
            {
                model = pristineModel
            } else {
                modelsLoaded += 1
                do { model = try timed("model") { try Model(file: file) } } catch { return .refused(stage: "model", error: "\(error)") }
            }
            return timed("forward") { forward(model, tokenizer) }
        }

        let start = Date()
        var counts: [String: Int] = [:]
        for (index, variant) in variants.enumerated() {
            let variantStart = Date(), loadsBefore = (tokenizersBuilt, modelsLoaded)
            let outcome = try copy.with(variant) { attempt() }
            let elapsed = Date().timeIntervalSince(variantStart)
            counts[outcome.stage, default: 0] += 1
            let label = "seed \(seed), variant \(index): \(variant.label)"
            if verbose {
                let built =
                    (tokenizersBuilt > loadsBefore.0 ? " (tokenizer built)" : "") + (modelsLoaded > loadsBefore.1 ? " (model loaded)" : "")
                print(
                    "\(label): \(outcome.stage)\(built) in \(String(format: "%.2f", elapsed)) s\(outcome.error.map { ": \($0.prefix(200))" } ?? "")"
                )
            }
            XCTAssertLessThan(elapsed, 10, "\(label) took \(elapsed) s")
            if case .refused(let stage, let error) = outcome {
                // Loading errors name the file; the forward pass's, the token.
                if stage != "forward" { XCTAssertTrue(error.contains(copy.path), "\(label): \(error)") }
                XCTAssertLessThan(error.count, 2000, "\(label): \(error.prefix(300))…")
            }
        }
        print(
            "hostile model fuzz (seed \(seed)): \(variants.count) variants in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; "
                + "refused at gguf \(counts["gguf", default: 0]), tokenizer \(counts["tokenizer", default: 0]), config \(counts["config", default: 0]), "
                + "model \(counts["model", default: 0]), forward \(counts["forward", default: 0]); ran \(counts["ran", default: 0]) "
                + "(tokenizers built \(tokenizersBuilt), models loaded \(modelsLoaded); the rest equal to the pristine file's); seconds in "
                + seconds.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value))" }.joined(separator: ", "))
        // Some variants must get past the reader, or the later checks go untested.
        XCTAssertGreaterThan(counts["config", default: 0], 50)
        XCTAssertGreaterThan(counts["tokenizer", default: 0], 10)
        XCTAssertGreaterThan(counts["ran", default: 0], 10)
    }

    func testCorruptedAdaptersAreRefusedOrRun() throws {
        var random = SeededGenerator(seed: seed)
        let folder = try makeTemporaryFolder("hostile-adapters")
        defer { try? FileManager.default.removeItem(at: folder) }
        try writeGemmaAdapter(in: folder)
        let weights = folder.appendingPathComponent("adapter_model.safetensors")
        let configURL = folder.appendingPathComponent("adapter_config.json")
        let pristineConfig = try Data(contentsOf: configURL), pristineWeights = try Data(contentsOf: weights)
        let (header, data) = try readSafetensors(weights)
        let file = try GGUFFile(path: try DefaultModels.path(DefaultModels.gemma))
        let tokenizer = try Tokenizer(gguf: file)

        // Each variant: a change to the config's JSON or to the weights' header (or its bytes).
        var variants: [(label: String, config: Data, weights: Data)] = []
        func config(_ label: String, _ json: String) { variants.append((label, Data(json.utf8), pristineWeights)) }
        func weightsHeader(_ label: String, _ change: (inout [String: Any]) -> Void) throws {
            var changed = header
            change(&changed)
            try writeSafetensors(changed, data, to: weights)
            variants.append((label, pristineConfig, try Data(contentsOf: weights)))
        }
        for r in ["0", "-1", "3", "1", "1099511627776", "1e300", "\"2\"", "null"] {
            config("r = \(r)", #"{"peft_type": "LORA", "r": \#(r), "lora_alpha": 4}"#)
        }
        for alpha in ["1e308", "-1e308", "0", "1e-300"] {
            config("lora_alpha = \(alpha)", #"{"peft_type": "LORA", "r": 2, "lora_alpha": \#(alpha), "use_rslora": true}"#)
        }
        config("not JSON", "{\"r\": 2, ")
        config("empty", "")
        let names = header.keys.filter { $0 != "__metadata__" }.sorted()
        let dims = [0, 1, 2, 3, 640, 1024, 2048, -1, 1 << 31, 1 << 40, 1 << 62, Int.max]
        for name in names {
            let entry = header[name] as! [String: Any]
            let shape = entry["shape"] as! [Int], offsets = entry["data_offsets"] as! [Int]
            for _ in 0..<6 {
                var newShape = shape
                newShape[Int.random(in: 0..<shape.count, using: &random)] = dims.randomElement(using: &random)!
                try weightsHeader("\(name) shape \(newShape)") { $0[name] = entry.merging(["shape": newShape]) { $1 } }
            }
            for newShape in [[1 << 40, 1 << 40], [shape[0]], shape + [1], [Int](), [shape[1], shape[0]]] {
                try weightsHeader("\(name) shape \(newShape)") { $0[name] = entry.merging(["shape": newShape]) { $1 } }
            }
            for dtype in ["F64", "I8", "F16", "BF16", "Q4", ""] {
                try weightsHeader("\(name) dtype \(dtype)") { $0[name] = entry.merging(["dtype": dtype]) { $1 } }
            }
            for newOffsets in [
                [0, 0], [offsets[1], offsets[0]], [offsets[0] + 4, offsets[1] + 4], [offsets[0], 1 << 62], [-4, offsets[1]], [0, Int.max],
                [offsets[0]]
            ] {
                try weightsHeader("\(name) offsets \(newOffsets)") { $0[name] = entry.merging(["data_offsets": newOffsets]) { $1 } }
            }
            for layer in ["-1", "18", "99999999999999999999", "x"] {
                let renamed = name.replacingOccurrences(of: #"layers\.\d+\."#, with: "layers.\(layer).", options: .regularExpression)
                try weightsHeader("\(name) in layer \(layer)") { $0[renamed] = $0.removeValue(forKey: name) }
            }
            try weightsHeader("\(name) removed") { $0.removeValue(forKey: name) }
        }
        // Bytes of the weights' header changed at random, and its length.
        let length = Int(pristineWeights.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        for _ in 0..<80 {
            var bytes = pristineWeights
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                bytes[Int.random(in: 0..<(8 + length), using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            variants.append(("random header bytes", pristineConfig, bytes))
        }
        for claimed in [0, 1, length - 1, length + 1, Int(UInt32.max), 1 << 62] {
            variants.append(
                ("header length \(claimed)", pristineConfig, Data(littleEndian(UInt64(claimed))) + pristineWeights.dropFirst(8)))
        }
        variants.append(("truncated", pristineConfig, pristineWeights.prefix(pristineWeights.count / 2)))
        variants.append(("pristine", pristineConfig, pristineWeights))

        var counts: [String: Int] = [:]
        let start = Date()
        for (index, variant) in variants.enumerated() {
            try variant.config.write(to: configURL)
            try variant.weights.write(to: weights)
            let label = "seed \(seed), adapter variant \(index): \(variant.label)"
            let variantStart = Date()
            let outcome: Outcome
            do {
                let adapter = try LoRAAdapter(folder: folder.path)
                do { outcome = forward(try Model(file: file, adapter: adapter), tokenizer) } catch {
                    outcome = .refused(stage: "model", error: "\(error)")
                }
            } catch {
                outcome = .refused(stage: "adapter", error: "\(error)")
            }
            let elapsed = Date().timeIntervalSince(variantStart)
            XCTAssertLessThan(elapsed, 10, "\(label) took \(elapsed) s")
            if case .refused(let stage, let error) = outcome, stage != "forward" {
                XCTAssertTrue(error.contains(folder.path), "\(label): \(error)")
                XCTAssertLessThan(error.count, 2000, "\(label): \(error.prefix(300))…")
            }
            counts[outcome.stage, default: 0] += 1
        }
        print(
            "hostile adapter fuzz (seed \(seed)): \(variants.count) variants in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; "
                + "refused reading the adapter \(counts["adapter", default: 0]), merging it \(counts["model", default: 0]), forward \(counts["forward", default: 0]); ran \(counts["ran", default: 0])"
        )
        XCTAssertGreaterThan(counts["adapter", default: 0], 100)
        XCTAssertGreaterThanOrEqual(counts["ran", default: 0], 1)
    }

    // MARK: - The model variants

    static func variants(_ copy: HostileCopy, _ random: inout SeededGenerator) -> [Variant] {
        let map = copy.map, header = copy.header
        var variants: [Variant] = []
        func u32(_ label: String, _ at: Int, _ value: UInt32) { variants.append(Variant(label, at: at, littleEndian(value))) }
        func u64(_ label: String, _ at: Int, _ value: UInt64) { variants.append(Variant(label, at: at, littleEndian(value))) }
        func original64(_ at: Int) -> UInt64 { header[at..<at + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        /// Values for a 64-bit count, length, dimension or offset that was `n`.
        func counts(_ n: UInt64) -> [UInt64] {
            [0, 1, n &- 1, n + 1, n * 2, n | 1 << 24, n | 1 << 27, 0xFFFF_FFFF, 1 << 40, 1 << 63, .max]
        }

        // Hyperparameters: chosen values, as uint32, int32 (negative), float32 (NaN),
        // and widened to 8 bytes (2^63).
        let u32Values: [UInt32] = [0, 1, 3, 0x8000_0000, 0xFFFF_FFFF, 1 << 20, 1 << 24 + 1]
        let sizes = map.entries.filter { $0.key.hasPrefix("gemma3.") && $0.type == GGUFValueType.uint32.rawValue }
        for entry in sizes {
            for value in u32Values { u32("\(entry.key) = \(value)", entry.valueAt, value) }
            for value in [Int32(-1), .min] {
                variants.append(
                    Variant(
                        "\(entry.key) = int32 \(value)",
                        [(entry.typeAt, littleEndian(GGUFValueType.int32.rawValue)), (entry.valueAt, littleEndian(value))]))
            }
            for value in [Float.nan, 1.5] {
                variants.append(
                    Variant(
                        "\(entry.key) = float32 \(value)",
                        [(entry.typeAt, littleEndian(GGUFValueType.float32.rawValue)), (entry.valueAt, littleEndian(value.bitPattern))]))
            }
            for (type, value) in [
                (GGUFValueType.uint64, UInt64(1) << 63), (.uint64, .max), (.int64, UInt64(bitPattern: -1)), (.uint64, 1 << 40)
            ] {
                variants.append(copy.widened("\(entry.key) = \(type) \(value)", entry, type: type, littleEndian(value)))
            }
        }
        for key in ["gemma3.attention.layer_norm_rms_epsilon", "gemma3.rope.freq_base"] {
            let entry = map.entry(key)
            for value in [Float.nan, .infinity, -.infinity, 0, -0.0, -1, 1e-45, 3e38, 1, 1e-30] {
                u32("\(key) = \(value)", entry.valueAt, value.bitPattern)
            }
            for value in [Double.nan, 1e300, -1, 0] {
                variants.append(copy.widened("\(key) = float64 \(value)", entry, type: .float64, littleEndian(value.bitPattern)))
            }
        }
        // Token ids.
        for entry in map.entries where entry.key.hasSuffix("_token_id") {
            for value: UInt32 in [0xFFFF_FFFF, 262_144, 262_143, 0] { u32("\(entry.key) = \(value)", entry.valueAt, value) }
            variants.append(
                Variant(
                    "\(entry.key) = int32 -1",
                    [(entry.typeAt, littleEndian(GGUFValueType.int32.rawValue)), (entry.valueAt, littleEndian(Int32(-1)))]))
            variants.append(copy.widened("\(entry.key) = uint64 2^63", entry, type: .uint64, littleEndian(UInt64(1) << 63)))
        }
        // Value types, key lengths, string lengths, array element types and counts.
        let types: [UInt32] = Array(0...13) + [0xFFFF_FFFF]
        for entry in map.entries {
            let type = types.randomElement(using: &random)!
            u32("\(entry.key) type \(type)", entry.typeAt, type)
            let keyLength = original64(entry.keyAt)
            do {
                let value = (counts(keyLength) + [4097]).randomElement(using: &random)!
                u64("\(entry.key) key length \(value)", entry.keyAt, value)
            }
            if entry.type == GGUFValueType.string.rawValue {
                for value in counts(original64(entry.valueAt)).shuffled(using: &random).prefix(4) {
                    u64("\(entry.key) length \(value)", entry.valueAt, value)
                }
            }
            if entry.type == GGUFValueType.array.rawValue {
                for type in [GGUFValueType.uint8.rawValue, GGUFValueType.array.rawValue, types.randomElement(using: &random)!] {
                    u32("\(entry.key) element type \(type)", entry.valueAt, type)
                }
                for value in counts(UInt64(entry.count)).shuffled(using: &random).prefix(6) {
                    u64("\(entry.key) count \(value)", entry.valueAt + 4, value)
                }
                for _ in 0..<(entry.stringLengths.isEmpty ? 0 : 6) {
                    let index = Int.random(in: 0..<entry.stringLengths.count, using: &random), at = entry.stringLengths[index]
                    let value = counts(original64(at)).randomElement(using: &random)!
                    u64("\(entry.key)[\(index)] length \(value)", at, value)
                }
            }
        }
        // Tensor infos: names' lengths, dimension counts, dimensions, types, offsets.
        let chosen =
            ["token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k_norm.weight", "blk.17.ffn_down.weight"].map {
                map.tensor($0)
            }
            + (0..<35).map { _ in map.tensors.randomElement(using: &random)! }
        for tensor in chosen {
            for _ in 0..<3 {
                switch Int.random(in: 0..<5, using: &random) {
                case 0:
                    let value = counts(original64(tensor.at)).randomElement(using: &random)!
                    u64("\(tensor.name) name length \(value)", tensor.at, value)
                case 1:
                    let value = ([0, 1, 2, 3, 4, 5, 0xFFFF_FFFF] as [UInt32]).randomElement(using: &random)!
                    u32("\(tensor.name) dimension count \(value)", tensor.dimensionCountAt, value)
                case 2:
                    let axis = Int.random(in: 0..<tensor.dimensions.count, using: &random), n = UInt64(tensor.dimensions[axis])
                    let value = (counts(n) + [n / 2, n + 256, n - 256]).randomElement(using: &random)!
                    u64("\(tensor.name) dimension \(axis) = \(value)", tensor.dimensionsAt[axis], value)
                case 3:
                    let value = (Array(0...40) + [0xFFFF_FFFF] as [UInt32]).randomElement(using: &random)!
                    u32("\(tensor.name) type \(value)", tensor.typeAt, value)
                default:
                    let other = UInt64(map.tensors.randomElement(using: &random)!.offset), n = UInt64(tensor.offset)
                    let value = ([other, n + 1, n + 32, 0, UInt64(copy.fileSize), 1 << 63] as [UInt64]).randomElement(using: &random)!
                    u64("\(tensor.name) offset \(value)", tensor.offsetAt, value)
                }
            }
        }
        // The header's counts, version and magic.
        for (name, at) in [("tensor count", 8), ("metadata count", 16)] {
            for value in counts(original64(at)).prefix(6) + [1 << 63] { u64("\(name) \(value)", at, value) }
        }
        for version: UInt32 in [1, 2, 4, 0xFFFF_FFFF] { u32("version \(version)", 4, version) }
        u32("magic", 0, 0x4655_4746)
        // Bytes changed at random: mostly where the structure is (keys, array headers,
        // the tail of the metadata, the tensor infos), some anywhere in the header
        // (most of it is the vocabulary's text, scores and types).
        let tokens = map.entry("tokenizer.ggml.tokens"), scores = map.entry("tokenizer.ggml.scores"),
            types_ = map.entry("tokenizer.ggml.token_type")
        let structural = [
            0..<(tokens.valueAt + 12), scores.keyAt..<(scores.valueAt + 12), types_.keyAt..<(types_.valueAt + 12), types_.end..<map.end
        ]
        for index in 0..<120 {
            let range = index % 5 == 4 ? 0..<map.end : structural.randomElement(using: &random)!
            var edits: [(at: Int, bytes: [UInt8])] = []
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                edits.append((Int.random(in: range, using: &random), [UInt8.random(in: 0...255, using: &random)]))
            }
            variants.append(Variant("random bytes at \(edits.map(\.at))", edits))
        }
        return variants
    }
}
