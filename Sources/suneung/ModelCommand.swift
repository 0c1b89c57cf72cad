import ArgumentParser
import Engine
import Exam
import Foundation
import GGUF
import Tokenizer
import Workflow

extension ChatTemplate: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Inspect GGUF models (their shape and tokenizer, how prompts tokenize) and merge adapters into them.",
        subcommands: [Info.self, Tokenize.self, MergeAdapter.self]
    )

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                """
                Architecture, sizes, RoPE and sliding window, tensors by type, tokenizer, answer-token ids and chat template of a GGUF \
                model.
                """
        )

        @Argument(help: "The model file (.gguf).")
        var file: String

        func run() throws {
            let model = try GGUFFile(path: file)
            let metadata = model.metadata
            let architecture = metadata["general.architecture"]?.string ?? "?"
            // Strings from the file are shown as excerpts: a corrupted length can make
            // a name megabytes long, and control characters must not reach the terminal.
            func value(_ key: String) -> String? {
                guard let v = metadata["\(architecture).\(key)"] else { return nil }
                if let n = v.int { return "\(n)" }
                if let x = v.double { return String(format: "%g", x) }
                return v.string.map { excerpt($0) }
            }
            var table = TextTable([("", .left), ("", .left)])
            table.showsHeader = false
            table.add(["file", "\(file) (GGUF v\(model.version), \(model.metadata.count) metadata keys)"])
            table.add(["name", excerpt(metadata["general.name"]?.string ?? "-")])
            table.add(["architecture", excerpt(architecture)])
            let parameters = model.tensors.reduce(0) { $0 + $1.elementCount }
            // Not %d: it takes 32 bits, and 9B models have more parameters than that holds.
            table.add(["parameters", String(format: "%.1fM", Double(parameters) / 1e6) + " (\(parameters))"])
            for (label, key) in [
                ("layers", "block_count"), ("embedding", "embedding_length"), ("feed-forward", "feed_forward_length"),
                ("heads", "attention.head_count"), ("kv heads", "attention.head_count_kv"), ("head size", "attention.key_length"),
                ("context", "context_length"), ("rope base", "rope.freq_base"), ("rope dims", "rope.dimension_count"),
                ("rope scaling", "rope.scaling.type"), ("sliding window", "attention.sliding_window"),
                ("norm epsilon", "attention.layer_norm_rms_epsilon")
            ] {
                if let v = value(key) { table.add([label, v]) }
            }
            let byType = Dictionary(grouping: model.tensors, by: \.type)
            let types = byType.keys.sorted { $0.rawValue < $1.rawValue }.map { type in
                "\(type.name) \(byType[type]!.count) (\(String(format: "%.1f", Double(byType[type]!.reduce(0) { $0 + $1.byteCount }) / 1_048_576)) MiB)"
            }
            table.add(["tensors", "\(model.tensors.count): \(types.joined(separator: ", "))"])
            do {
                let tokenizer = try Tokenizer(gguf: model)
                let kind =
                    switch tokenizer.kind {
                    case .sentencePiece: "SentencePiece (llama)"
                    case .bytePairEncoding(let pre): "byte-level BPE (gpt2, pre-tokenizer \(pre.rawValue))"
                    }
                table.add(["vocabulary", "\(tokenizer.vocabularySize) tokens, \(kind)"])
                let answers = (1...5).map { digit in
                    let ids = tokenizer.encode(String(digit))
                    return ids.count == 1 ? "\(digit)=\(ids[0])" : "\(digit)=\(ids) (not one token)"
                }
                table.add(["answer tokens", answers.joined(separator: " ")])
            } catch {
                table.add(["vocabulary", "unusable: \(excerpt(String(describing: error), limit: 400))"])
            }
            table.add(["template", Family.chatTemplate(of: model).rawValue])
            // The checks predict makes before scoring (hyperparameters against the
            // tensors, tokenizer, answer tokens), without loading any weights.
            do {
                try Scorer.check(model)
                table.add(["engine", "can run it"])
            } catch {
                table.add(["engine", "cannot run it: \(excerpt(String(describing: error), limit: 400))"])
            }
            print(table.rendered)
        }
    }

    struct MergeAdapter: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract: "Write a GGUF model with a LoRA adapter merged into its weights, for llama.cpp, Ollama or `predict --model`.",
            discussion: """
                The adapted linear weights (attn_q … ffn_down of each adapted layer) become \
                W + scale·B·A: dequantised to float32, the product added in float32, and written \
                in --type (Q8_0 by default: 8 bits per weight, near the float32 merge; Q4_0 and \
                F16, F32, BF16 too; `same` keeps each tensor's type where our writer can write \
                it, and K-quants (Q4_K, Q5_K, Q6_K) it cannot). Every other tensor and all \
                metadata are copied byte for byte; suneung.merged_adapter and its sha256 record \
                what was merged. The file is written as --out.PID.tmp and linked into place \
                at the end: a failed merge removes it, a killed one (kill -9) leaves only \
                that .tmp file, never a half --out; an existing --out is never overwritten.
                """
        )

        @Option(help: ArgumentHelp("The base model the adapter was trained on.", valueName: "FILE.gguf"))
        var base: String

        @Option(help: ArgumentHelp("A PEFT folder or llama.cpp's adapter GGUF.", valueName: "DIR|FILE.gguf"))
        var adapter: String

        @Option(help: ArgumentHelp("Where to write the merged model.", valueName: "MERGED.gguf"))
        var out: String

        @Option(help: "The merged tensors' type: Q8_0, Q4_0, F16, BF16, F32 or same.")
        var type = "Q8_0"

        func validate() throws {
            let writable = GGMLType.writable.map(\.name)
            guard type == "same" || writable.contains(type.uppercased()) else {
                throw ValidationError("--type \(excerpt(type, limit: 40)) is not one of \((writable + ["same"]).joined(separator: ", "))")
            }
        }

        func run() throws {
            let target = GGMLType.writable.first { $0.name == type.uppercased() }
            let lora = try LoRAAdapter(path: adapter)
            var progress = ByteProgress()
            let summary = try Merge.write(
                base: base, adapter: lora, adapterSha256: try Predict.adapterSha256(adapter), type: target, to: out
            ) {
                progress.update($0, of: $1)
            }
            print(
                "Wrote \(excerpt(out, limit: 1000)): \(summary.merged) tensors merged (\(summary.types.joined(separator: ", "))), \(summary.copied) copied."
            )
        }
    }

    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Token count and ids of a prompt, to check lengths or compare with llama.cpp.",
            discussion:
                """
                With --item, the item's baseline prompt (DESIGN.md) in the model's chat template; with --text, the text as the user \
                message. --raw tokenizes the text (or the item's user message) alone, without a template. Special tokens written in the \
                text become their ids; no BOS is added beyond what the template writes.
                """
        )

        @Argument(help: "The model file (.gguf).")
        var file: String

        @Option(help: "Text to tokenize.")
        var text: String?

        @Option(parsing: .upToNextOption, help: ArgumentHelp("An exam CSV and an item id in it.", valueName: "CSV ID"))
        var item: [String] = []

        @Option(help: "Chat template (default: the model's): gemma, chatml, llama3, exaone3, plain.")
        var template: ChatTemplate?

        @Flag(help: "No chat template.")
        var raw = false

        func validate() throws {
            guard (text == nil) != item.isEmpty else { throw ValidationError("give --text S or --item CSV ID") }
            guard item.isEmpty || item.count == 2 else { throw ValidationError("--item takes a CSV file and an item id") }
        }

        func run() throws {
            let model = try GGUFFile(path: file)
            let tokenizer = try Tokenizer(gguf: model)
            let prompt: Prompt
            if let text {
                prompt = Prompt(system: Prompt.baselineSystem, user: text)
            } else {
                let exam = try ExamSet.load(path: item[0])
                guard let found = exam.items.first(where: { $0.id == item[1] }) else {
                    throw ValidationError("\(item[0]) has no item \(item[1])")
                }
                prompt = Prompt.baseline(found)
            }
            let chosen = template ?? Family.chatTemplate(of: model)
            let rendered = raw ? prompt.user : chosen.render(system: prompt.system, user: prompt.user)
            let ids = tokenizer.encode(rendered)
            print("\(ids.count) tokens\(raw ? "" : " (template \(chosen.rawValue))")")
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
