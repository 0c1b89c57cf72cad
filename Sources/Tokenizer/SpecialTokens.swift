/// Special tokens written in the text, cut out before the tokenizer proper runs, as
/// llama.cpp's tokenizer_st_partition does: tokens are tried longest first, each
/// taking its non-overlapping occurrences, left to right, in what earlier (longer)
/// tokens left of the text.
struct SpecialTokens: Sendable {
    enum Fragment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Token ids, longest text first (equal lengths: lower id first).
    let ordered: [Int32]
    let texts: [Int32: [UInt8]]
    /// Byte trie of the texts, to find every occurrence in one pass over the text.
    let trie: [[UInt8: Int]]
    let terminal: [Int: Int32]
    /// USER_DEFINED tokens are cut out even when special tokens are not parsed.
    let userDefined: Set<Int32>

    /// Texts llama.cpp marks as control tokens whatever their type (end-of-turn and
    /// fill-in-the-middle markers it recognises by name), in llama-vocab.cpp's lists.
    static let controlTexts: Set<String> = [
        "</s>", "<EOT>", "<MID>", "<PAD>", "<PRE>", "<REPO>", "<SUF>", "<end_of_turn>", "<end_of_utterance>", "<eos>",
        "<fim-middle>", "<fim-pad>", "<fim-prefix>", "<fim-repo>", "<fim-suffix>", "<fim_middle>", "<fim_pad>", "<fim_prefix>",
        "<fim_suffix>", "<reponame>", "<turn|>", "<|calls|>", "<|call|>", "<|code_middle|>", "<|code_prefix|>", "<|code_suffix|>",
        "<|end_of_text|>", "<|endoftext|>", "<|end|>", "<|eom_id|>", "<|eot_id|>", "<|file_sep|>", "<|fim_middle|>", "<|fim_pad|>",
        "<|fim_prefix|>", "<|fim_repo|>", "<|fim_suffix|>", "<|flush|>", "<|im_end|>", "<|middle|>", "<|prefix|>", "<|repo_name|>",
        "<|return|>", "<|suffix|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>", "<｜fim▁hole｜>",
        "[EOS]", "[EOT]", "[PAD]", "[e~[", "_<EOT>", "▁<MID>", "▁<PRE>", "▁<SUF>"
    ]

    /// From the vocabulary and its token types: UNKNOWN (2), CONTROL (3) and
    /// USER_DEFINED (4) tokens are special.
    init(tokens: [String], types: [Int]) {
        let ids = types.indices.filter { [2, 3, 4].contains(types[$0]) }.map(Int32.init)
        userDefined = Set(ids.filter { types[Int($0)] == 4 && !SpecialTokens.controlTexts.contains(tokens[Int($0)]) })
        var texts: [Int32: [UInt8]] = [:]
        for id in ids { texts[id] = Array(tokens[Int(id)].utf8) }
        self.texts = texts
        ordered = ids.sorted { (texts[$0]!.count, -$0) > (texts[$1]!.count, -$1) }
        var trie: [[UInt8: Int]] = [[:]]
        var terminal: [Int: Int32] = [:]
        for id in ids {
            var node = 0
            for byte in texts[id]! {
                if let child = trie[node][byte] {
                    node = child
                } else {
                    trie.append([:])
                    trie[node][byte] = trie.count - 1
                    node = trie.count - 1
                }
            }
            terminal[node] = id
        }
        self.trie = trie
        self.terminal = terminal
    }

    func contains(_ id: Int32) -> Bool { texts[id] != nil }

    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        guard !bytes.isEmpty else { return [] }
        guard !texts.isEmpty else { return [.text(0..<bytes.count)] }
        // Every occurrence of every special token.
        var occurrences: [Int32: [Int]] = [:]
        for start in bytes.indices {
            var node = 0, position = start
            while position < bytes.count, let child = trie[node][bytes[position]] {
                node = child
                position += 1
                if let id = terminal[node] { occurrences[id, default: []].append(start) }
            }
        }
        guard !occurrences.isEmpty else { return [.text(0..<bytes.count)] }
        var claimed = [Bool](repeating: false, count: bytes.count)
        var matches: [(start: Int, id: Int32)] = []
        for id in ordered where parseSpecial || userDefined.contains(id) {
            guard let starts = occurrences[id] else { continue }
            let length = texts[id]!.count
            for start in starts where !claimed[start..<start + length].contains(true) {
                for i in start..<start + length { claimed[i] = true }
                matches.append((start, id))
            }
        }
        matches.sort { $0.start < $1.start }
        var fragments: [Fragment] = []
        var position = 0
        for match in matches {
            if match.start > position { fragments.append(.text(position..<match.start)) }
            fragments.append(.token(match.id))
            position = match.start + texts[match.id]!.count
        }
        if position < bytes.count { fragments.append(.text(position..<bytes.count)) }
        return fragments
    }
}
