import ArgumentParser
import Exam
import Foundation
import Store
import Workflow

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a set's CSV, byte for byte as recorded: a submission's id,answer file, or any other set's canonical CSV.",
        discussion: """
            The file is written through a temporary file and a rename, never onto the store, \
            its WAL, a file in predictions/ or checkpoints/, a dataset's exam file or another \
            set's submission. A subset (`import --subset`) is never exported. It says when the \
            answers equal another set's or an uploaded submission's.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME, NAME@vK or a submission name.")
    var ref: String

    @Option(help: ArgumentHelp("Where to write the CSV.", valueName: "FILE"))
    var out: String

    func run() throws {
        let store = try options.openStore()
        let set = try store.predictionSet(ref)
        try store.export(set, to: URL(fileURLWithPath: out))
        print("Wrote \(set.ref) to \(excerpt(out, limit: 1000)).")
        warnIfAnswered(try store.table(of: set), dataset: try store.dataset(id: set.datasetId), store: store, except: set.name)
    }
}

struct ExportAdapterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-adapter",
        abstract: "Write a training checkpoint's LoRA adapter for other tools: llama.cpp's adapter GGUF, or the PEFT folder.",
        discussion: """
            gguf: llama.cpp's LoRA format (general.type adapter, tensors blk.N.attn_q.weight.lora_a \
            and .lora_b in float32, adapter.lora.alpha set so that llama.cpp's alpha/r is the \
            adapter's scale, rsLoRA included), for `llama-cli -m BASE.gguf --lora FILE.gguf`, \
            llama-cpp-python's lora_path or an Ollama ADAPTER; it records the base model's name and \
            sha256. `predict --adapter FILE.gguf` reads it back. peft: a copy of the checkpoint's \
            folder (adapter_config.json, adapter_model.safetensors) for transformers + PEFT. The \
            checkpoint's files are checked against the store's sha256 first; an existing --out is \
            never overwritten.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The checkpoint: RUN/step-N, or RUN for its last (`suneung list --checkpoints`).")
    var checkpoint: String

    @Option(help: "gguf (llama.cpp) or peft (a PEFT folder).")
    var format: Train.AdapterFormat = .gguf

    @Option(help: ArgumentHelp("Where to write it: a new file (gguf) or folder (peft).", valueName: "PATH"))
    var out: String

    func run() throws {
        let store = try options.openStore()
        let name = try Train.exportAdapter(checkpoint, format: format, to: out, store: store)
        print("Wrote \(name)'s adapter as \(format.rawValue) to \(excerpt(out, limit: 1000)).")
    }
}

extension Train.AdapterFormat: ExpressibleByArgument {}
