import Foundation
import GGUF

/// The tiny random models of scripts/reference/tiny_models.py: each fixture carries
/// the recipe (metadata keys, tensor shapes, generator seeds), and the GGUF is written
/// here with our own writer from the same generator.
public struct TinyModelSpec: Decodable, Sendable {
    public var architecture: String
    public var keys: [[Value]]
    public var tensors: [[Value]]

    public enum Value: Decodable, Sendable {
        case string(String), number(Double), list([Int])
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                self = .string(s)
            } else if let n = try? c.decode(Double.self) {
                self = .number(n)
            } else {
                self = .list(try c.decode([Int].self))
            }
        }
        var string: String { if case .string(let s) = self { s } else { "" } }
        var number: Double { if case .number(let n) = self { n } else { 0 } }
        var list: [Int] { if case .list(let l) = self { l } else { [] } }
    }

    /// The generator of the reference script: x = 1664525·x + 1013904223 mod 2^32.
    public static func lcg(seed: Int, count: Int, scale: Double, offset: Double) -> [Float] {
        var x = UInt64(seed)
        return (0..<count).map { _ in
            x = (1_664_525 &* x &+ 1_013_904_223) % 4_294_967_296
            return Float(offset + scale * (2 * Double(x) / 4_294_967_296 - 1))
        }
    }

    /// The model, written with our GGUF writer into `folder` as ARCH.gguf.
    public func write(vocabulary: Int, in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("\(architecture).gguf").path
        try writer(vocabulary: vocabulary).write(to: path)
        return path
    }

    /// The model's writer, for a test to change before writing. Its tokens are <t0>,
    /// <t1>, …, or with `scorable` a vocabulary `predict` can score with
    /// (`scorableTokens`, no space prefix: "1" is one token).
    public func writer(vocabulary: Int, scorable: Bool = false) -> GGUFWriter {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string(architecture))
        for key in keys {
            writer.set(key[0].string, key[1].string == "u32" ? .uint32(UInt32(key[2].number)) : .float32(Float(key[2].number)))
        }
        writer.set("tokenizer.ggml.model", .string("llama"))
        let tokens = scorable ? Self.scorableTokens(count: vocabulary) : (0..<vocabulary).map { "<t\($0)>" }
        writer.set("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) }))
        if scorable { writer.set("tokenizer.ggml.add_space_prefix", .bool(false)) }
        writer.set("tokenizer.ggml.scores", .array(.float32, Array(repeating: .float32(0), count: vocabulary)))
        writer.set("tokenizer.ggml.token_type", .array(.int32, Array(repeating: .int32(1), count: vocabulary)))
        writer.tensors = tensors.map { t in
            let dims = t[1].list
            return GGUFWriter.Tensor(name: t[0].string, dimensions: dims, values: values(of: t[0].string))
        }
        return writer
    }

    /// A tensor's values, from the recipe's generator.
    public func values(of name: String) -> [Float] {
        let t = tensors.first { $0[0].string == name }!
        return Self.lcg(seed: Int(t[2].number), count: t[1].list.reduce(1, *), scale: t[3].number, offset: t[4].number)
    }

    /// The recipes of scripts/reference/tiny_models.py (EngineTests' fixture), for test
    /// targets without that bundle.
    public static func fixture() throws -> (vocabulary: Int, models: [TinyModelSpec]) {
        struct Fixture: Decodable { var vocabulary: Int, models: [TinyModelSpec] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("EngineTests/Fixtures/tiny_models.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        return (fixture.vocabulary, fixture.models)
    }

    /// A vocabulary of `count` tokens that `predict` can score with: "▁" (a space) and
    /// the printable ASCII characters, "1".."5" among them, one token each (other
    /// characters are dropped); <tN> past those.
    public static func scorableTokens(count: Int) -> [String] {
        let characters = ["<unk>", "▁"] + (0x21...0x7E).map { String(UnicodeScalar(UInt8($0))) }
        return (0..<count).map { $0 < characters.count ? characters[$0] : "<t\($0)>" }
    }
}

/// A fresh temporary folder; the caller removes it (tests: in a teardown block).
public func makeTemporaryFolder(_ prefix: String) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}
