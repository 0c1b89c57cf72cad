/// The pre-tokenizers of byte-level BPE models, named by `tokenizer.ggml.pre`: each a
/// sequence of splitting stages, as llama.cpp runs them (its hand-written matchers for
/// the GPT-2, Llama 3 and Qwen2 regexes, ported here step by step, and the simple
/// "isolate every match" regexes of the other stages).
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// SmolLM, StarCoder: every number character alone, then the GPT-2 regex.
    case smollm
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`.
    case gpt2
    /// Llama 3 (`llama-bpe`): letters with one leading non-letter, numbers in threes.
    case llama3
    /// Qwen2: as Llama 3 with every number character alone.
    case qwen2
    /// llama.cpp's default for BPE: punctuation runs, GPT-2, number runs, digit triples.
    case standard

    public static let supportedNames = ["smollm", "starcoder", "gpt-2", "llama-bpe", "llama3", "qwen2", "default"]

    public init?(name: String) {
        switch name {
        case "smollm", "starcoder": self = .smollm
        case "gpt-2": self = .gpt2
        case "llama-bpe", "llama3": self = .llama3
        case "qwen2": self = .qwen2
        case "default": self = .standard
        default: return nil
        }
    }

    /// The words of a text fragment, in order.
    func split(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        guard !text.isEmpty else { return [] }
        let flags = text.map(CodepointFlags.init)
        var segments = [0..<text.count]
        func stage(_ split: (Range<Int>) -> [Range<Int>]) { segments = segments.flatMap(split) }
        switch self {
        case .smollm:
            stage { isolateRuns($0, single: true) { flags[$0].isNumber } }
            stage { splitGPT2($0, text, flags) }
        case .gpt2:
            stage { splitGPT2($0, text, flags) }
        case .llama3:
            stage { splitLlama3($0, text, flags, digitsPerWord: 3) }
        case .qwen2:
            stage { splitLlama3($0, text, flags, digitsPerWord: 1) }
        case .standard:
            stage { isolateRuns($0, single: false) { flags[$0].isPunctuation || "$+<=>^~|".unicodeScalars.contains(text[$0]) } }
            stage { splitGPT2($0, text, flags) }
            stage { isolateRuns($0, single: false) { flags[$0].isNumber } }
            stage { digitTriples($0, text) }
        }
        return segments.map { Array(text[$0]) }
    }
}

struct CodepointFlags {
    var isLetter = false, isNumber = false, isWhitespace = false, isPunctuation = false
    /// False past the end of the segment (llama.cpp's empty flags).
    var inRange = false

    init() {}

    init(_ scalar: Unicode.Scalar) {
        inRange = true
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: isLetter = true
        case .decimalNumber, .letterNumber, .otherNumber: isNumber = true
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            isPunctuation = true
        default: break
        }
        // llama.cpp's own whitespace set.
        switch scalar.value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: isWhitespace = true
        default: break
        }
    }

    var isOther: Bool { inRange && !(isWhitespace || isLetter || isNumber) }
}

/// Splits a segment into the runs matching `predicate` (each character alone when
/// `single`) and the text between them, all kept.
func isolateRuns(_ segment: Range<Int>, single: Bool, _ predicate: (Int) -> Bool) -> [Range<Int>] {
    var pieces: [Range<Int>] = []
    var position = segment.lowerBound, pending = segment.lowerBound
    while position < segment.upperBound {
        guard predicate(position) else {
            position += 1
            continue
        }
        if position > pending { pieces.append(pending..<position) }
        var end = position + 1
        if !single { while end < segment.upperBound && predicate(end) { end += 1 } }
        pieces.append(position..<end)
        position = end
        pending = end
    }
    if pending < segment.upperBound { pieces.append(pending..<segment.upperBound) }
    return pieces
}

/// `[0-9][0-9][0-9]`, leftmost non-overlapping matches isolated.
func digitTriples(_ segment: Range<Int>, _ text: [Unicode.Scalar]) -> [Range<Int>] {
    func digit(_ i: Int) -> Bool { i < segment.upperBound && ("0"..."9").contains(text[i]) }
    var pieces: [Range<Int>] = []
    var position = segment.lowerBound, pending = segment.lowerBound
    while position < segment.upperBound {
        guard digit(position) && digit(position + 1) && digit(position + 2) else {
            position += 1
            continue
        }
        if position > pending { pieces.append(pending..<position) }
        pieces.append(position..<position + 3)
        position += 3
        pending = position
    }
    if pending < segment.upperBound { pieces.append(pending..<segment.upperBound) }
    return pieces
}

/// A segment's reader with llama.cpp's out-of-range conventions.
struct SegmentCursor {
    let segment: Range<Int>
    let text: [Unicode.Scalar]
    let flagsOf: [CodepointFlags]
    var pieces: [Range<Int>] = []
    var previousEnd: Int

    init(_ segment: Range<Int>, _ text: [Unicode.Scalar], _ flags: [CodepointFlags]) {
        self.segment = segment
        self.text = text
        flagsOf = flags
        previousEnd = segment.lowerBound
    }

    func scalar(_ i: Int) -> Unicode.Scalar? { segment.contains(i) ? text[i] : nil }
    func flags(_ i: Int) -> CodepointFlags { segment.contains(i) ? flagsOf[i] : CodepointFlags() }

    mutating func add(_ end: Int) {
        if end > previousEnd { pieces.append(previousEnd..<end) }
        previousEnd = end
    }

    /// Where the word starting with `count` whitespace characters at `pos` ends:
    /// `\s+(?!\S)` leaves the last space to the next word, `\s+` takes the run, and
    /// anything else is a word of one character.
    func endOfWhitespace(_ pos: Int, count: Int) -> Int {
        if count > 1 && scalar(pos + count) != nil { return pos + count - 1 }
        return pos + max(count, 1)
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (optionally case-insensitive): its length.
    func contraction(_ pos: Int, ignoringCase: Bool) -> Int? {
        guard scalar(pos) == "'", pos + 1 < segment.upperBound else { return nil }
        func lower(_ i: Int) -> Unicode.Scalar? {
            guard let s = scalar(i) else { return nil }
            return ignoringCase && ("A"..."Z").contains(s) ? Unicode.Scalar(s.value + 32) : s
        }
        let next = lower(pos + 1)
        if next == "s" || next == "t" || next == "m" || next == "d" { return 2 }
        guard pos + 2 < segment.upperBound else { return nil }
        let pair = (next, lower(pos + 2))
        if pair == ("r", "e") || pair == ("v", "e") || pair == ("l", "l") { return 3 }
        return nil
    }
}

/// llama.cpp's unicode_regex_split_custom_gpt2.
func splitGPT2(_ segment: Range<Int>, _ text: [Unicode.Scalar], _ flags: [CodepointFlags]) -> [Range<Int>] {
    var c = SegmentCursor(segment, text, flags)
    var pos = segment.lowerBound
    while pos < segment.upperBound {
        let cpt = c.scalar(pos)
        if let length = c.contraction(pos, ignoringCase: false) {
            pos += length
            c.add(pos)
            continue
        }
        let space = cpt == " "
        var f2 = space ? c.flags(pos + 1) : c.flags(pos)
        if f2.isLetter || f2.isNumber || f2.isOther {
            let letter = f2.isLetter, number = f2.isNumber
            if space { pos += 1 }
            while letter ? f2.isLetter : number ? f2.isNumber : f2.isOther {
                pos += 1
                f2 = c.flags(pos)
            }
            c.add(pos)
            continue
        }
        var whitespace = 0
        while c.flags(pos + whitespace).isWhitespace { whitespace += 1 }
        pos = c.endOfWhitespace(pos, count: whitespace)
        c.add(pos)
    }
    return c.pieces
}

/// llama.cpp's unicode_regex_split_custom_llama3 (digitsPerWord 3) and _qwen2 (1).
func splitLlama3(_ segment: Range<Int>, _ text: [Unicode.Scalar], _ flags: [CodepointFlags], digitsPerWord: Int) -> [Range<Int>] {
    var c = SegmentCursor(segment, text, flags)
    var pos = segment.lowerBound
    while pos < segment.upperBound {
        let cpt = c.scalar(pos)!
        let f = c.flags(pos)
        if let length = c.contraction(pos, ignoringCase: true) {
            pos += length
            c.add(pos)
            continue
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(cpt == "\r" || cpt == "\n" || f.isNumber), f.isLetter || c.flags(pos + 1).isLetter {
            pos += 1
            while c.flags(pos).isLetter { pos += 1 }
            c.add(pos)
            continue
        }
        // \p{N}{1,3} (or \p{N})
        if f.isNumber {
            var start = pos
            while c.flags(pos).isNumber {
                pos += 1
                if pos - start >= digitsPerWord {
                    c.add(pos)
                    start = pos
                }
            }
            c.add(pos)
            continue
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        var f2 = cpt == " " ? c.flags(pos + 1) : f
        if !(f2.isWhitespace || f2.isLetter || f2.isNumber) && f.inRange {
            if cpt == " " { pos += 1 }
            while !(f2.isWhitespace || f2.isLetter || f2.isNumber) && f2.inRange {
                pos += 1
                f2 = c.flags(pos)
            }
            while let next = c.scalar(pos), next == "\r" || next == "\n" { pos += 1 }
            c.add(pos)
            continue
        }
        var whitespace = 0, lastLineEnd = 0
        while c.flags(pos + whitespace).isWhitespace {
            let s = c.scalar(pos + whitespace)
            if s == "\r" || s == "\n" { lastLineEnd = pos + whitespace + 1 }
            whitespace += 1
        }
        // \s*[\r\n]+
        if lastLineEnd > 0 {
            pos = lastLineEnd
            c.add(pos)
            continue
        }
        pos = c.endOfWhitespace(pos, count: whitespace)
        c.add(pos)
    }
    return c.pieces
}
