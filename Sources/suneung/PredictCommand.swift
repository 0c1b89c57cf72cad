import ArgumentParser
import Engine
import Exam
import Foundation
import GGUF
import Store
import Tensor
import Tokenizer
import Training
import Workflow

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract:
            "Score every item of an exam CSV with a GGUF model, or on an OpenAI-compatible server, and store each choice's logit.",
        discussion: """
            Each item's baseline prompt (DESIGN.md) goes through the model's chat template; \
            the logits of the tokens "1".."N" at the last position are kept and the answer \
            is their arg-max. Prompts longer than --max-tokens are shortened by cutting the \
            middle of the passage, never the question, <보기> or choices. With --adapter, a \
            LoRA adapter's deltas (scale·B·A) are merged into the model's float32 weights, or \
            kept as a separate low-rank product beside its codes (q8). An \
            item on the same passage as the item before reuses its keys and values. Items \
            are committed one by one: a run that is killed leaves no prediction set, and \
            the same command again resumes from the items already scored. The set records \
            the model's and the adapter's sha256, the template, engine and limits in its \
            lineage.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @OptionGroup var notes: SetNotesOptions

    @Option(help: ArgumentHelp("The model file (not with --checkpoint, which names its own).", valueName: "FILE.gguf"))
    var model: String?

    @Option(
        help: ArgumentHelp(
            """
            Score on an OpenAI-compatible server instead of the embedded engine (vLLM, llama.cpp's llama-server, llama-cpp-python's \
            server): its base URL, e.g. http://127.0.0.1:8000/v1. Repeat for several servers of the same model: the items are shared \
            between them. See docs/serving.md.
            """,
            valueName: "URL"))
    var endpoint: [String] = []

    @Option(help: ArgumentHelp("With --endpoint: the model's name as the server lists it at /v1/models.", valueName: "NAME"))
    var servedModel: String?

    @Option(
        help: ArgumentHelp(
            "With --endpoint: the environment variable holding the servers' bearer key (never the key itself).", valueName: "VAR"))
    var apiKeyEnv: String?

    @Option(help: ArgumentHelp("With --endpoint: requests in flight per server.", valueName: "N"))
    var concurrency: Int = 4

    @Option(help: ArgumentHelp("With --endpoint: seconds one request may take before it is tried again.", valueName: "SECONDS"))
    var requestTimeout: Double = 300

    @Option(
        help: ArgumentHelp(
            """
            A LoRA adapter for the model: a PEFT folder (adapter_config.json, adapter_model.safetensors) or llama.cpp's adapter GGUF \
            (`export-adapter --format gguf`, convert_lora_to_gguf.py).
            """,
            valueName: "DIR|FILE.gguf"))
    var adapter: String?

    @Option(
        help: ArgumentHelp(
            "A checkpoint of `suneung train` (RUN/step-N, or RUN for its last): its base model and adapter, as the store recorded them.",
            valueName: "RUN/step-N"))
    var checkpoint: String?

    @Option(help: ArgumentHelp("The exam CSV to score.", valueName: "FILE.csv"))
    var dataset: String

    @Option(help: "The prediction set's name.")
    var name: String

    @Option(
        help:
            "Chat template (default: the model's; with --endpoint, the one the served model's name points to): gemma, chatml, llama3, exaone3, plain."
    )
    var template: ChatTemplate?

    @Option(help: "Threads for the engine (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Score only the first N items (they are written to data/ as a dataset of their own).", valueName: "N"))
    var limit: Int?

    @Option(help: ArgumentHelp("Longest prompt in tokens (default: the model's context, at most 4,096).", valueName: "N"))
    var maxTokens: Int?

    @Option(
        help: ArgumentHelp(
            """
            How the engine multiplies: auto (the file's own: float32 for F32/F16/BF16 weights, q8 for quantised ones), q8 (the weights \
            stay in their 4/8-bit codes, activations in 8 bits, integer products: llama.cpp's scheme, ~2.5x less memory and faster), q8x2 \
            (q8 with activations in two 8-bit parts: twice the integer work, answer logits ~0.01 from f32's against q8's ~0.17), f32 \
            (weights dequantised to float32: the exact path, as transformers computes). Recorded in the set's lineage.
            """,
            valueName: "auto|q8|q8x2|f32"))
    var precision: Precision = .auto

    @Option(help: ArgumentHelp("A labelled exam CSV: also record the local accuracy.", valueName: "FILE"))
    var gold: String?

    @Option(
        help: ArgumentHelp(
            """
            Correct the model's preference for answer positions: permute (every cyclic order of the choices, the probabilities of each \
            choice's content averaged: n passes an item) or pride[:FRACTION] (the position prior estimated from the permuted passes of a \
            seeded sample, default 5% of the items, and divided out of the others' single pass). The stored logits are the corrected ones.
            """,
            valueName: "permute|pride[:F]"))
    var debias: String?

    @Option(
        help: ArgumentHelp(
            "With --debias: correct toward this labelled file's answer shares instead of uniform ones (p ∝ p · target / prior).",
            valueName: "LABELLED.csv"))
    var priorTarget: String?

    func request(notes: Store.SetNotes = Store.SetNotes()) -> PredictRequest {
        var request = PredictRequest(
            model: model, adapter: adapter, checkpoint: checkpoint, dataset: dataset, name: name, template: template, threads: threads,
            limit: limit,
            maxTokens: maxTokens, precision: precision, gold: gold, debias: debias, priorTarget: priorTarget, notes: notes,
            commandLine: commandLineText)
        request.endpoints = endpoint
        request.servedModel = servedModel
        request.apiKeyEnv = apiKeyEnv
        request.concurrency = concurrency
        request.requestSeconds = requestTimeout
        return request
    }

    func validate() throws {
        do { try request().check() } catch let error as UsageError { throw ValidationError(error.description) }
    }

    func run() throws {
        let store = try options.openStore()
        var printer = EventPrinter()
        try Predict.run(request(notes: notes.notes), store: store) { printer.show($0) }
    }
}

/// A workflow's events on the terminal: notes on standard output, progress bars on
/// standard error.
struct EventPrinter {
    var items: ProgressBar?
    var training: TrainingProgress?

    mutating func show(_ event: WorkflowEvent) {
        switch event {
        case .note(let text):
            print(text)
            flushStandardOutput()
        case .stage(let title):
            print("\n== \(title)")
            flushStandardOutput()
        case .begin(let total): items = ProgressBar(total: total)
        case .item(let tokens): items?.advance(tokens: tokens)
        case .trainingStart(let steps): training = TrainingProgress(total: steps)
        case .trainingStep(let step): training?.advance(step)
        case .trainingNote(let text): training?.note(text)
        }
    }
}
