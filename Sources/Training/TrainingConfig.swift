import Engine
import Exam
import Foundation

/// Everything that defines a training run: the base model, the data, LoRA, the loss,
/// the optimiser and schedule, and when to evaluate and save. Each setting is one entry
/// of `settings`: its key (config/train.yaml, the stored run's JSON), its flag
/// (--learning-rate), its help and how its value is read all come from there.
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var model: String
    public var train: String
    public var validation: String?
    public var validationRatio: Double = 0.1
    public var epochs: Double = 1
    public var maxSteps: Int?
    public var rank: Int = 16
    public var alpha: Double = 32
    public var dropout: Double = 0.05
    public var rslora: Bool = false
    public var targetModules: [String] = LoRAAdapter.Module.allCases.map(\.rawValue)
    public var learningRate: Double = 1e-4
    public var schedule: LearningRateSchedule.Shape = .linear
    public var warmupSteps: Int?
    public var warmupRatio: Double = 0
    public var weightDecay: Double = 0
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    public var batchSize: Int = 1
    public var gradientAccumulation: Int = 4
    public var maxGradNorm: Double = 1
    public var maxLength: Int = 2048
    public var loss: LossKind = .full
    public var endOfTurn: Bool = false
    public var seed: UInt64 = 42
    public var saveSteps: Int = 0
    public var saveEachEpoch: Bool = true
    public var evalSteps: Int = 0
    public var evalEachEpoch: Bool = true
    public var evalLimit: Int = 0
    public var gradientCheckpointing: String = "auto"
    /// Never `auto` once read: `init(values:)` resolves it.
    public var precision: Precision = .f32
    public var augment: Augmentation?
    public var balance: Balance?
    public var template: String?
    public var name: String

    /// Every setting, in the order `train --help` lists them.
    public static var settings: [Setting] {
        [
            Setting("model", \.model, "FILE.gguf", "The base model (GGUF)."),
            Setting("train", \.train, "FILE.csv", "The labelled train CSV."),
            Setting(
                "validation", \.validation, "FILE.csv",
                "A labelled CSV to validate on (default: validation_ratio of the train file, held out by id)."),
            Setting("validation_ratio", \.validationRatio, "R", "Share of train items held out by a hash of their id (default 0.1)."),
            Setting("name", \.name, "RUN", "The run's name: checkpoints go to checkpoints/RUN/step-N."),
            Setting("epochs", \.epochs, "N", "Passes over the train items (default 1; fractions allowed)."),
            Setting("max_steps", \.maxSteps, "N", "Optimiser steps (overrides epochs)."),
            Setting("rank", \.rank, "R", "LoRA rank r (default 16)."),
            Setting("alpha", \.alpha, "A", "LoRA alpha (default 32); the scale is alpha/r, or alpha/√r with rslora."),
            Setting("dropout", \.dropout, "P", "LoRA dropout on the adapted layers' inputs (default 0.05)."),
            Setting("rslora", \.rslora, "BOOL", "Rank-stabilised scale alpha/√r (default false)."),
            Setting(
                "target_modules", \.targetModules, "LIST", "Comma-separated: q,k,v,o,gate,up,down or PEFT's q_proj,... (default all seven)."
            ),
            Setting("learning_rate", \.learningRate, "LR", "Peak learning rate (default 1e-4)."),
            Setting("schedule", \.schedule, "S", "constant, linear or cosine, after the warm-up (default linear)."),
            Setting("warmup_steps", \.warmupSteps, "N", "Warm-up steps from 0 (default: warmup_ratio of the steps)."),
            Setting("warmup_ratio", \.warmupRatio, "R", "Warm-up as a share of all steps (default 0)."),
            Setting("weight_decay", \.weightDecay, "W", "AdamW's decoupled weight decay (default 0)."),
            Setting("beta1", \.beta1, "B", "AdamW β1 (default 0.9)."),
            Setting("beta2", \.beta2, "B", "AdamW β2 (default 0.999)."),
            Setting("epsilon", \.epsilon, "E", "AdamW ε (default 1e-8)."),
            Setting("batch_size", \.batchSize, "N", "Sequences per micro-batch (default 1)."),
            Setting("gradient_accumulation", \.gradientAccumulation, "N", "Micro-batches per optimiser step (default 4)."),
            Setting("max_grad_norm", \.maxGradNorm, "N", "Clip the gradient to this global norm (default 1)."),
            Setting("max_length", \.maxLength, "N", "Longest sequence in tokens; longer passages are cut in the middle (default 2048)."),
            Setting("loss", \.loss, "KIND", "full (cross-entropy over the vocabulary, default) or choices (over the answer tokens)."),
            Setting("end_of_turn", \.endOfTurn, "BOOL", "Also train the end-of-turn token after the answer (default false)."),
            Setting("seed", \.seed, "N", "Seed of the initialisation, data order and dropout (default 42)."),
            Setting("save_steps", \.saveSteps, "N", "Save a checkpoint every N steps (default 0: only per epoch and at the end)."),
            Setting("save_each_epoch", \.saveEachEpoch, "BOOL", "Save at the end of each epoch (default true)."),
            Setting("eval_steps", \.evalSteps, "N", "Validate every N steps (default 0)."),
            Setting("eval_each_epoch", \.evalEachEpoch, "BOOL", "Validate at the end of each epoch (default true)."),
            Setting("eval_limit", \.evalLimit, "N", "Validate on the first N held-out items only (default 0: all)."),
            Setting(
                "gradient_checkpointing", \.gradientCheckpointing, "MODE",
                "auto (recompute each block's activations when keeping them all would pass 1.5 GB), true or false."),
            Setting(
                "precision", \.precision, "P",
                "The frozen base: f32 dequantises it (exact, as PyTorch in float32; 8 bytes per weight); q8x2 keeps it in its GGUF codes (a quarter of the memory or less; activations in two 8-bit parts forward, gradients ~0.4% off float32's, closer than PyTorch's bf16); q8 likewise with 8-bit activations (faster, gradients ~8% off); auto (default): f32."
            ),
            Setting(
                "augment", \.augment, "A",
                "permute_choices: each epoch, each item's choices in a seeded order with the answer relabelled, so the answer position is uniform (default none)."
            ),
            Setting(
                "balance", \.balance, "B", "positions: each epoch's items drawn so that every answer position is as likely (default none)."),
            Setting("template", \.template, "T", "Chat template (default: the model's): gemma, chatml, llama3, exaone3, plain.")
        ]
    }

    public static var keys: [String] { settings.map(\.key) }

    public static let requiredKeys = ["model", "train", "name"]

    public init(model: String, train: String, name: String) {
        self.model = model
        self.train = train
        self.name = name
    }

    /// A config from key-value pairs (YAML scalars and lists as strings, flags): each
    /// key checked against the known ones (the nearest suggested), each value parsed
    /// with an error that names the key and the source.
    public init(values: [String: ConfigValue], source: String) throws {
        let keys = Self.keys
        for key in values.keys.sorted() where !keys.contains(key) {
            let suggestion = nearestName(to: key, among: keys).map { " (did you mean '\($0)'?)" } ?? ""
            throw TrainingError("\(source): unknown key '\(key)'\(suggestion); the keys are: \(keys.sorted().joined(separator: ", "))")
        }
        for key in Self.requiredKeys where values[key] == nil {
            throw TrainingError("\(source): '\(key)' is required (in the config or as --\(key.replacingOccurrences(of: "_", with: "-")))")
        }
        self.init(model: "", train: "", name: "")
        for setting in Self.settings {
            guard let value = values[setting.key] else { continue }
            guard setting.read(&self, value) else {
                if case .scalar(let text) = value {
                    throw TrainingError("\(source): '\(setting.key)' must be \(setting.expected), not '\(text)'")
                }
                throw TrainingError("\(source): '\(setting.key)' must be a single value, not a list")
            }
        }
        precision = precision.resolvedForTraining
        try validate(source: source)
    }

    /// A run's stored settings (the JSON of `encode`). Runs stored before `precision`
    /// existed trained in float32, its default.
    public init(stored json: String) throws {
        self = try JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8))
    }

    /// Keys absent from a stored run keep their defaults (runs stored before a setting
    /// existed).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Setting.Key.self)
        self.init(model: "", train: "", name: "")
        for setting in Self.settings { try setting.decode(&self, container) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Setting.Key.self)
        for setting in Self.settings { try setting.encode(self, &container) }
    }

    /// One setting: its key, its flag and help, and how its value is read from text and
    /// kept in JSON (absent values are omitted).
    public struct Setting {
        public let key: String, valueName: String, help: String
        /// What the value must be, for errors: "a number", "one of ...".
        public let expected: String
        /// Sets the value from a config's or flag's text; false if it does not parse.
        let read: (inout TrainingConfig, ConfigValue) -> Bool
        let encode: (TrainingConfig, inout KeyedEncodingContainer<Key>) throws -> Void
        let decode: (inout TrainingConfig, KeyedDecodingContainer<Key>) throws -> Void

        public var flag: String { "--" + key.replacingOccurrences(of: "_", with: "-") }

        struct Key: CodingKey {
            let stringValue: String
            init(_ key: String) { stringValue = key }
            init?(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }

        init<V: SettingValue>(_ key: String, _ path: WritableKeyPath<TrainingConfig, V>, _ valueName: String, _ help: String) {
            (self.key, self.valueName, self.help, expected) = (key, valueName, help, V.expected)
            read = { config, value in
                guard let v = V(setting: value) else { return false }
                config[keyPath: path] = v
                return true
            }
            encode = { config, container in try container.encode(config[keyPath: path], forKey: Key(key)) }
            decode = { config, container in
                if let v = try container.decodeIfPresent(V.self, forKey: Key(key)) { config[keyPath: path] = v }
            }
        }

        /// An optional setting: absent by default; "none" also clears it.
        init<V: SettingValue>(_ key: String, _ path: WritableKeyPath<TrainingConfig, V?>, _ valueName: String, _ help: String) {
            (self.key, self.valueName, self.help, expected) = (key, valueName, help, V.expected + " or none")
            read = { config, value in
                if value == .scalar("none") {
                    config[keyPath: path] = nil
                    return true
                }
                guard let v = V(setting: value) else { return false }
                config[keyPath: path] = v
                return true
            }
            encode = { config, container in try container.encodeIfPresent(config[keyPath: path], forKey: Key(key)) }
            decode = { config, container in config[keyPath: path] = try container.decodeIfPresent(V.self, forKey: Key(key)) }
        }
    }

    /// The checks that need no file: ranges and names.
    public func validate(source: String) throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("\(source): \(message)") } }
        try check(rank >= 1, "rank must be at least 1 (got \(rank))")
        try check(alpha > 0, "alpha must be positive (got \(alpha))")
        try check((0..<1).contains(dropout), "dropout must be in [0, 1) (got \(dropout))")
        try check(epochs > 0, "epochs must be positive (got \(epochs))")
        try check(maxSteps.map { $0 >= 1 } ?? true, "max_steps must be at least 1")
        try check(learningRate > 0, "learning_rate must be positive (got \(learningRate))")
        try check(
            warmupSteps.map { $0 >= 0 } ?? true && (0...1).contains(warmupRatio), "warmup_steps must be ≥ 0 and warmup_ratio in [0, 1]")
        try check(
            weightDecay >= 0 && (0..<1).contains(beta1) && (0..<1).contains(beta2) && epsilon > 0,
            "weight_decay ≥ 0, beta1 and beta2 in [0, 1) and epsilon > 0 are required")
        try check(batchSize >= 1 && gradientAccumulation >= 1, "batch_size and gradient_accumulation must be at least 1")
        try check(maxGradNorm > 0, "max_grad_norm must be positive (got \(maxGradNorm))")
        try check(maxLength >= 16, "max_length must be at least 16 tokens (got \(maxLength))")
        try check(saveSteps >= 0 && evalSteps >= 0 && evalLimit >= 0, "save_steps, eval_steps and eval_limit must be ≥ 0")
        try check(validation != nil || (0..<1).contains(validationRatio), "validation_ratio must be in [0, 1) (got \(validationRatio))")
        try check(
            ["auto", "true", "false"].contains(gradientCheckpointing),
            "gradient_checkpointing must be auto, true or false (got '\(gradientCheckpointing)')")
        try check(!targetModules.isEmpty, "target_modules is empty")
        for module in targetModules where Self.module(module) == nil {
            throw TrainingError(
                "\(source): target module '\(module)' is not one of q, k, v, o, gate, up, down (or PEFT's \(LoRAAdapter.Module.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
    }

    /// A target module by our short name (q) or PEFT's (q_proj).
    public static func module(_ name: String) -> LoRAAdapter.Module? {
        LoRAAdapter.Module(rawValue: name) ?? LoRAAdapter.Module(rawValue: name + "_proj")
    }

    public var modules: [LoRAAdapter.Module] { targetModules.compactMap(Self.module) }
}

/// A config value as YAML or a flag gives it.
public enum ConfigValue: Sendable, Equatable {
    case scalar(String)
    case list([String])
}

/// A setting's type: read from a config's or flag's text, kept in JSON.
protocol SettingValue: Codable {
    init?(setting value: ConfigValue)
    /// What a value must be, for errors.
    static var expected: String { get }
}

/// Single values parse from their text; a list is an error.
protocol ScalarSetting: SettingValue {
    init?(text: String)
}

extension ScalarSetting {
    init?(setting value: ConfigValue) {
        guard case .scalar(let text) = value else { return nil }
        self.init(text: text)
    }
}

extension Double: ScalarSetting {
    init?(text: String) { self.init(text) }
    static var expected: String { "a number" }
}

extension Int: ScalarSetting {
    init?(text: String) { self.init(text) }
    static var expected: String { "an integer" }
}

extension UInt64: ScalarSetting {
    init?(text: String) { self.init(text) }
    static var expected: String { "a non-negative integer" }
}

extension String: ScalarSetting {
    init?(text: String) { self = text }
    static var expected: String { "text" }
}

extension Bool: ScalarSetting {
    init?(text: String) {
        switch text.lowercased() {
        case "true", "yes", "on", "1": self = true
        case "false", "no", "off", "0": self = false
        default: return nil
        }
    }
    static var expected: String { "true or false" }
}

/// A list: YAML's, or a flag's comma-separated text.
extension Array: SettingValue where Element == String {
    init?(setting value: ConfigValue) {
        switch value {
        case .list(let list): self = list
        case .scalar(let text): self = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }
    static var expected: String { "a list" }
}

/// A choice among an enumeration's raw values.
protocol ChoiceSetting: ScalarSetting, RawRepresentable, CaseIterable where RawValue == String {}

extension ChoiceSetting {
    init?(text: String) { self.init(rawValue: text) }
    static var expected: String {
        allCases.count == 1 ? allCases.first!.rawValue : "one of " + allCases.map(\.rawValue).joined(separator: ", ")
    }
}

extension LearningRateSchedule.Shape: ChoiceSetting {}
extension LossKind: ChoiceSetting {}
extension Augmentation: ChoiceSetting {}
extension Balance: ChoiceSetting {}
extension Precision: ChoiceSetting {}
