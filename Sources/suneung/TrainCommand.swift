import ArgumentParser
import Engine
import Exam
import Foundation
import GGUF
import Store
import Tensor
import Training
import Workflow

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a LoRA adapter on a labelled exam CSV, on the CPU, saving PEFT checkpoints into the store.",
        discussion: """
            Settings come from --config (YAML, keys as in config/train.yaml) and from \
            flags, which win: every key is also a flag (learning_rate is \
            --learning-rate). The loss is completion-only: the cross-entropy of the \
            answer token after the baseline prompt (DESIGN.md) in the model's chat \
            template. Checkpoints go to checkpoints/RUN/step-N/ in PEFT's format \
            (adapter_config.json, adapter_model.safetensors) with the optimiser's state, \
            and into the store with their config, data hashes and metrics: see \
            `suneung list --checkpoints` and `suneung predict --checkpoint RUN/step-N`. \
            A killed run continues with --resume RUN from its last checkpoint and ends \
            with the weights an uninterrupted run would have.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: ArgumentHelp("A YAML file of settings (see config/train.yaml).", valueName: "FILE.yaml"))
    var config: String?

    @Option(help: ArgumentHelp("Continue the run RUN from its last checkpoint, with its stored settings.", valueName: "RUN"))
    var resume: String?

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("model"), help: ArgumentHelp("The base model (GGUF).", valueName: "FILE.gguf"))
    var model: String?

    @Option(name: .customLong("train"), help: ArgumentHelp("The labelled train CSV.", valueName: "FILE.csv"))
    var train: String?

    @Option(name: .customLong("validation"), help: ArgumentHelp("A labelled CSV to validate on (default: validation_ratio of the train file, held out by id).", valueName: "FILE.csv"))
    var validation: String?

    @Option(name: .customLong("validation-ratio"), help: ArgumentHelp("Share of train items held out by a hash of their id (default 0.1).", valueName: "R"))
    var validationRatio: String?

    @Option(name: .customLong("epochs"), help: ArgumentHelp("Passes over the train items (default 1; fractions allowed).", valueName: "N"))
    var epochs: String?

    @Option(name: .customLong("max-steps"), help: ArgumentHelp("Optimiser steps (overrides epochs).", valueName: "N"))
    var maxSteps: String?

    @Option(name: .customLong("rank"), help: ArgumentHelp("LoRA rank r (default 16).", valueName: "R"))
    var rank: String?

    @Option(name: .customLong("alpha"), help: ArgumentHelp("LoRA alpha (default 32); the scale is alpha/r, or alpha/√r with rslora.", valueName: "A"))
    var alpha: String?

    @Option(name: .customLong("dropout"), help: ArgumentHelp("LoRA dropout on the adapted layers' inputs (default 0.05).", valueName: "P"))
    var dropout: String?

    @Option(name: .customLong("rslora"), help: ArgumentHelp("Rank-stabilised scale alpha/√r (default false).", valueName: "BOOL"))
    var rslora: String?

    @Option(name: .customLong("target-modules"), help: ArgumentHelp("Comma-separated: q,k,v,o,gate,up,down or PEFT's q_proj,... (default all seven).", valueName: "LIST"))
    var targetModules: String?

    @Option(name: .customLong("learning-rate"), help: ArgumentHelp("Peak learning rate (default 1e-4).", valueName: "LR"))
    var learningRate: String?

    @Option(name: .customLong("schedule"), help: ArgumentHelp("constant, linear or cosine, after the warm-up (default linear).", valueName: "S"))
    var schedule: String?

    @Option(name: .customLong("warmup-steps"), help: ArgumentHelp("Warm-up steps from 0 (default: warmup_ratio of the steps).", valueName: "N"))
    var warmupSteps: String?

    @Option(name: .customLong("warmup-ratio"), help: ArgumentHelp("Warm-up as a share of all steps (default 0).", valueName: "R"))
    var warmupRatio: String?

    @Option(name: .customLong("weight-decay"), help: ArgumentHelp("AdamW's decoupled weight decay (default 0).", valueName: "W"))
    var weightDecay: String?

    @Option(name: .customLong("beta1"), help: ArgumentHelp("AdamW β1 (default 0.9).", valueName: "B"))
    var beta1: String?

    @Option(name: .customLong("beta2"), help: ArgumentHelp("AdamW β2 (default 0.999).", valueName: "B"))
    var beta2: String?

    @Option(name: .customLong("epsilon"), help: ArgumentHelp("AdamW ε (default 1e-8).", valueName: "E"))
    var epsilon: String?

    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Sequences per micro-batch (default 1).", valueName: "N"))
    var batchSize: String?

    @Option(name: .customLong("gradient-accumulation"), help: ArgumentHelp("Micro-batches per optimiser step (default 4).", valueName: "N"))
    var gradientAccumulation: String?

    @Option(name: .customLong("max-grad-norm"), help: ArgumentHelp("Clip the gradient to this global norm (default 1).", valueName: "N"))
    var maxGradNorm: String?

    @Option(name: .customLong("max-length"), help: ArgumentHelp("Longest sequence in tokens; longer passages are cut in the middle (default 2048).", valueName: "N"))
    var maxLength: String?

    @Option(name: .customLong("loss"), help: ArgumentHelp("full (cross-entropy over the vocabulary, default) or choices (over the answer tokens).", valueName: "KIND"))
    var loss: String?

    @Option(name: .customLong("end-of-turn"), help: ArgumentHelp("Also train the end-of-turn token after the answer (default false).", valueName: "BOOL"))
    var endOfTurn: String?

    @Option(name: .customLong("seed"), help: ArgumentHelp("Seed of the initialisation, data order and dropout (default 42).", valueName: "N"))
    var seed: String?

    @Option(name: .customLong("save-steps"), help: ArgumentHelp("Save a checkpoint every N steps (default 0: only per epoch and at the end).", valueName: "N"))
    var saveSteps: String?

    @Option(name: .customLong("save-each-epoch"), help: ArgumentHelp("Save at the end of each epoch (default true).", valueName: "BOOL"))
    var saveEachEpoch: String?

    @Option(name: .customLong("eval-steps"), help: ArgumentHelp("Validate every N steps (default 0).", valueName: "N"))
    var evalSteps: String?

    @Option(name: .customLong("eval-each-epoch"), help: ArgumentHelp("Validate at the end of each epoch (default true).", valueName: "BOOL"))
    var evalEachEpoch: String?

    @Option(name: .customLong("eval-limit"), help: ArgumentHelp("Validate on the first N held-out items only (default 0: all).", valueName: "N"))
    var evalLimit: String?

    @Option(name: .customLong("gradient-checkpointing"), help: ArgumentHelp("auto (when activations would pass 1.5 GB), true or false.", valueName: "MODE"))
    var gradientCheckpointing: String?

    @Option(name: .customLong("template"), help: ArgumentHelp("Chat template (default: the model's): gemma, chatml, llama3, exaone3, plain.", valueName: "T"))
    var template: String?

    @Option(name: .customLong("name"), help: ArgumentHelp("The run's name: checkpoints go to checkpoints/RUN/step-N.", valueName: "RUN"))
    var name: String?

    @Option(name: .customLong("augment"), help: ArgumentHelp("permute_choices: each epoch, each item's choices in a seeded order with the answer relabelled, so the answer position is uniform (default none).", valueName: "A"))
    var augment: String?

    @Option(name: .customLong("balance"), help: ArgumentHelp("positions: each epoch's items drawn so that every answer position is as likely (default none).", valueName: "B"))
    var balance: String?

    /// The flags given, by config key.
    var flags: [String: String] {
        let all: [(String, String?)] = [
            ("model", model),
            ("train", train),
            ("validation", validation),
            ("validation_ratio", validationRatio),
            ("epochs", epochs),
            ("max_steps", maxSteps),
            ("rank", rank),
            ("alpha", alpha),
            ("dropout", dropout),
            ("rslora", rslora),
            ("target_modules", targetModules),
            ("learning_rate", learningRate),
            ("schedule", schedule),
            ("warmup_steps", warmupSteps),
            ("warmup_ratio", warmupRatio),
            ("weight_decay", weightDecay),
            ("beta1", beta1),
            ("beta2", beta2),
            ("epsilon", epsilon),
            ("batch_size", batchSize),
            ("gradient_accumulation", gradientAccumulation),
            ("max_grad_norm", maxGradNorm),
            ("max_length", maxLength),
            ("loss", loss),
            ("end_of_turn", endOfTurn),
            ("seed", seed),
            ("save_steps", saveSteps),
            ("save_each_epoch", saveEachEpoch),
            ("eval_steps", evalSteps),
            ("eval_each_epoch", evalEachEpoch),
            ("eval_limit", evalLimit),
            ("gradient_checkpointing", gradientCheckpointing),
            ("template", template),
            ("name", name),
            ("augment", augment),
            ("balance", balance),
        ]
        return Dictionary(uniqueKeysWithValues: all.compactMap { key, value in value.map { (key, $0) } })
    }

    func run() throws {
        let store = try options.openStore()
        var values: [String: ConfigValue] = try config.map { try Train.readYAML($0) } ?? [:]
        for (key, value) in flags { values[key] = .scalar(value) }
        var printer = EventPrinter()
        try Train.run(TrainRequest(values: values, source: config ?? "the flags", resume: resume, threads: threads), store: store) { printer.show($0) }
    }
}
