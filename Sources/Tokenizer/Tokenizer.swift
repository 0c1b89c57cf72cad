import Foundation
import GGUF
import HeapModule

// Tokenizers built from GGUF metadata, written to give exactly llama.cpp's tokens
// (llama-vocab.cpp and unicode.cpp of the llama-cpp-python release we test against):
// special tokens are cut out of the text first, longest first; the rest goes through
// SentencePiece-style merging by score (tokenizer.ggml.model = llama, as in Gemma) or
// byte-level BPE by merge rank after a pre-tokenizer split (gpt2: SmolLM2, Llama 3,
// Qwen2). No Swift package does either on GGUF vocabularies.

public struct TokenizerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

public final class Tokenizer: Sendable {
    public enum Kind: Sendable, Equatable {
        /// SentencePiece-style: merges by token score, byte fallback.
        case sentencePiece
        /// Byte-level BPE with the named pre-tokenizer.
        case bytePairEncoding(PreTokenizer)
    }

    public let kind: Kind
    public let tokens: [String]
    public let bos: Int32?
    public let eos: Int32?
    public let addBOS: Bool
    let addSpacePrefix: Bool
    let scores: [Float]
    /// Token text to id, keyed by bytes: Swift's String equality is canonical
    /// equivalence, which would merge tokens such as "·" (U+00B7) and U+0387.
    let ids: [[UInt8]: Int32]
    let mergeRanks: [String: Int]
    /// Byte values 0...255 to their `<0xXX>` token (SentencePiece byte fallback).
    let byteTokens: [Int32?]
    let specials: SpecialTokens

    public var vocabularySize: Int { tokens.count }

    public init(gguf file: GGUFFile) throws {
        let metadata = file.metadata
        guard let model = metadata["tokenizer.ggml.model"]?.string else {
            throw TokenizerError(message: "\(file.path) has no tokenizer (tokenizer.ggml.model is missing)")
        }
        guard let tokenValues = metadata["tokenizer.ggml.tokens"]?.array, !tokenValues.isEmpty else {
            throw TokenizerError(message: "\(file.path) has no vocabulary (tokenizer.ggml.tokens)")
        }
        // Ids are Int32, as in llama.cpp.
        guard tokenValues.count <= Int(Int32.max) else {
            throw TokenizerError(
                message: "\(file.path): tokenizer.ggml.tokens has \(tokenValues.count) tokens, more than 32-bit ids can name")
        }
        // As llama.cpp: an empty token text becomes [EMPTY_i], and of two equal texts
        // the later id wins.
        tokens = tokenValues.enumerated().map { index, value in
            let text = value.string ?? ""
            return text.isEmpty ? "[EMPTY_\(index)]" : text
        }
        let types =
            try Self.perToken(file, "tokenizer.ggml.token_type", count: tokens.count)?.map { $0.int ?? 1 }
            ?? Array(repeating: 1, count: tokens.count)
        scores =
            try Self.perToken(file, "tokenizer.ggml.scores", count: tokens.count)?.map { Float($0.double ?? 0) }
            ?? Array(repeating: 0, count: tokens.count)
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() { ids[Array(token.utf8)] = Int32(index) }
        self.ids = ids
        try Self.checkTokenIds(file, vocabulary: tokens.count)
        bos = metadata["tokenizer.ggml.bos_token_id"]?.int.map(Int32.init)
        eos = metadata["tokenizer.ggml.eos_token_id"]?.int.map(Int32.init)

        switch model {
        case "llama":
            kind = .sentencePiece
            addBOS = metadata["tokenizer.ggml.add_bos_token"]?.bool ?? true
            addSpacePrefix = metadata["tokenizer.ggml.add_space_prefix"]?.bool ?? true
            mergeRanks = [:]
        case "gpt2":
            let preName = metadata["tokenizer.ggml.pre"]?.string ?? "default"
            guard let pre = PreTokenizer(name: preName) else {
                throw TokenizerError(
                    message:
                        "\(file.path): pre-tokenizer '\(preName)' is not supported (supported: \(PreTokenizer.supportedNames.joined(separator: ", ")))"
                )
            }
            kind = .bytePairEncoding(pre)
            addBOS = metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false
            addSpacePrefix = false
            guard let merges = metadata["tokenizer.ggml.merges"]?.array else {
                throw TokenizerError(message: "\(file.path): a BPE tokenizer needs tokenizer.ggml.merges")
            }
            var ranks: [String: Int] = [:]
            ranks.reserveCapacity(merges.count)
            for (rank, merge) in merges.enumerated() {
                if let text = merge.string, ranks[text] == nil { ranks[text] = rank }
            }
            mergeRanks = ranks
        default:
            throw TokenizerError(message: "\(file.path): tokenizer model '\(model)' is not supported (supported: llama, gpt2)")
        }
        byteTokens = (0...255).map { ids[Array(String(format: "<0x%02X>", $0).utf8)] }
        specials = SpecialTokens(tokens: tokens, types: types)
    }

    public func id(of token: String) -> Int32? { ids[Array(token.utf8)] }

    /// An array with one entry per token (scores, types), if the file has it: a
    /// shorter one would be read past its end.
    static func perToken(_ file: GGUFFile, _ key: String, count: Int) throws -> [GGUFValue]? {
        guard let value = file.metadata[key] else { return nil }
        guard let array = value.array, array.count == count else {
            let what = value.array.map { "\($0.count) entries" } ?? "not an array"
            throw TokenizerError(message: "\(file.path): \(key) has \(what) for the \(count) tokens of tokenizer.ggml.tokens")
        }
        return array
    }

    /// Every token id the metadata names (bos, eos, unknown, padding, …) must be a
    /// token of the vocabulary. llama.cpp only warns about an id outside it; a file
    /// that says so is corrupted, and an id of 0xFFFFFFFF used as one would trap.
    static func checkTokenIds(_ file: GGUFFile, vocabulary: Int) throws {
        for key in file.metadataKeys where key.hasPrefix("tokenizer.ggml.") && key.hasSuffix("_token_id") {
            let value = file.metadata[key]!
            guard let id = value.int, (0..<vocabulary).contains(id) else {
                let shown: String =
                    switch value {
                    case .string: "a string"
                    case .array: "an array"
                    default: "\(value.int.map(String.init) ?? "\(value)")"
                    }
                throw TokenizerError(message: "\(file.path): \(key) is \(shown), not a token id of the vocabulary (0 to \(vocabulary - 1))")
            }
        }
    }

    /// Token ids of `text`. `addSpecial` adds BOS (and EOS) where the model asks for
    /// them; `parseSpecial` turns special tokens written in the text into their ids.
    public func encode(_ text: String, addSpecial: Bool = false, parseSpecial: Bool = true) -> [Int32] {
        let bytes = Array(text.utf8)
        var output: [Int32] = []
        if addSpecial, addBOS, let bos { output.append(bos) }
        var previousWasSpecial = true
        for fragment in specials.partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                output.append(id)
                previousWasSpecial = true
            case .text(let range):
                switch kind {
                case .sentencePiece:
                    var piece: [UInt8] = addSpacePrefix && previousWasSpecial ? [0x20] : []
                    piece += bytes[range]
                    sentencePiece(escapeWhitespace(piece), into: &output)
                case .bytePairEncoding(let pre):
                    for word in pre.split(Array(String(decoding: bytes[range], as: UTF8.self).unicodeScalars)) {
                        bytePairEncoding(word, into: &output)
                    }
                }
                previousWasSpecial = false
            }
        }
        return output
    }

    /// The text of the tokens, for display.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0, Int(id) < tokens.count else { continue }
            let token = tokens[Int(id)]
            switch kind {
            case .sentencePiece:
                if let byte = byteTokens.firstIndex(of: id) {
                    bytes.append(UInt8(byte))
                } else {
                    bytes += token.replacingOccurrences(of: "\u{2581}", with: " ").utf8
                }
            case .bytePairEncoding:
                if specials.contains(id) {
                    bytes += token.utf8
                } else {
                    for scalar in token.unicodeScalars {
                        if let byte = ByteLevel.byte(for: scalar) { bytes.append(byte) } else { bytes += String(scalar).utf8 }
                    }
                }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - SentencePiece

    func escapeWhitespace(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 4)
        for byte in bytes {
            if byte == 0x20 { out += [0xE2, 0x96, 0x81] } else { out.append(byte) } // U+2581
        }
        return out
    }

    struct Bigram: Comparable {
        var score: Float
        var left: Int
        var right: Int
        var size: Int

        // The best bigram is the largest: higher score, then the leftmost.
        static func < (a: Bigram, b: Bigram) -> Bool {
            a.score < b.score || (a.score == b.score && a.left > b.left)
        }
    }

    /// llama.cpp's SPM session: start from UTF-8 characters, repeatedly merge the
    /// adjacent pair whose concatenation is the best-scoring token, then map each
    /// symbol to its token, or its bytes to byte tokens.
    func sentencePiece(_ text: [UInt8], into output: inout [Int32]) {
        guard !text.isEmpty else { return }
        var start: [Int] = [], length: [Int] = [], previous: [Int] = [], next: [Int] = []
        var offset = 0
        while offset < text.count {
            let n = min(utf8Length(text[offset]), text.count - offset)
            previous.append(start.count - 1)
            start.append(offset)
            length.append(n)
            offset += n
            next.append(offset == text.count ? -1 : start.count)
        }
        var queue = Heap<Bigram>()
        var reverseMerge: [ArraySlice<UInt8>: (Int, Int)] = [:]
        func tryBigram(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let piece = text[start[left]..<start[left] + length[left] + length[right]]
            guard let id = ids[Array(piece)] else { return }
            queue.insert(Bigram(score: scores[Int(id)], left: left, right: right, size: piece.count))
            reverseMerge[piece] = (left, right)
        }
        for i in 1..<start.count { tryBigram(i - 1, i) }
        while let bigram = queue.popMax() {
            guard length[bigram.left] > 0, length[bigram.right] > 0, length[bigram.left] + length[bigram.right] == bigram.size else {
                continue
            }
            length[bigram.left] += length[bigram.right]
            length[bigram.right] = 0
            next[bigram.left] = next[bigram.right]
            if next[bigram.right] >= 0 { previous[next[bigram.right]] = bigram.left }
            tryBigram(previous[bigram.left], bigram.left)
            tryBigram(bigram.left, next[bigram.left])
        }
        func resegment(_ symbol: Int) {
            let piece = text[start[symbol]..<start[symbol] + length[symbol]]
            if let id = ids[Array(piece)] {
                output.append(id)
                return
            }
            if let (left, right) = reverseMerge[piece] {
                resegment(left)
                resegment(right)
                return
            }
            for byte in piece { if let id = byteTokens[Int(byte)] { output.append(id) } }
        }
        var symbol = 0
        while symbol != -1 {
            resegment(symbol)
            symbol = next[symbol]
        }
    }

    // MARK: - Byte-level BPE

    /// llama.cpp's BPE session for one pre-tokenized word: byte-encode it, then merge
    /// the adjacent pair of lowest merge rank (leftmost first) until none is left.
    /// Symbols stay Strings here: over GPT-2's byte alphabet (precomposed Latin
    /// letters, no combining marks) canonical equivalence is plain equality.
    func bytePairEncoding(_ word: [Unicode.Scalar], into output: inout [Int32]) {
        var symbols: [String] = []
        for byte in String(String.UnicodeScalarView(word)).utf8 { symbols.append(ByteLevel.characters[Int(byte)]) }
        guard !symbols.isEmpty else { return }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)?
            for i in 0..<(symbols.count - 1) {
                if let rank = mergeRanks[symbols[i] + " " + symbols[i + 1]], rank < (best?.rank ?? .max) {
                    best = (rank, i)
                }
            }
            guard let best else { break }
            symbols[best.index] += symbols[best.index + 1]
            symbols.remove(at: best.index + 1)
        }
        for symbol in symbols {
            if let id = ids[Array(symbol.utf8)] {
                output.append(id)
            } else {
                // Not a token: its characters one by one (each is a byte's character).
                for character in symbol.unicodeScalars { if let id = ids[Array(String(character).utf8)] { output.append(id) } }
            }
        }
    }
}

func utf8Length(_ first: UInt8) -> Int {
    // As llama.cpp's unicode_len_utf8: from the high bits of the first byte.
    let lookup = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4]
    return lookup[Int(first >> 4)]
}

/// GPT-2's byte-to-character table: printable bytes map to themselves, the rest to
/// code points from U+0100 on.
enum ByteLevel {
    static let characters: [String] = {
        var table = [String](repeating: "", count: 256)
        var extra: UInt32 = 256
        for byte in 0..<256 {
            if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                table[byte] = String(Unicode.Scalar(UInt32(byte))!)
            } else {
                table[byte] = String(Unicode.Scalar(extra)!)
                extra += 1
            }
        }
        return table
    }()

    static let bytes: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (byte, text) in characters.enumerated() { map[text.unicodeScalars.first!] = UInt8(byte) }
        return map
    }()

    static func byte(for scalar: Unicode.Scalar) -> UInt8? { bytes[scalar] }
}
