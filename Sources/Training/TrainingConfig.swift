import Engine
import Exam
import Foundation

/// Everything that defines a training run: the base model, the data, LoRA, the loss,
/// the optimiser and schedule, and when to evaluate and save. Keys are snake_case as
/// in config/train.yaml; each is also a flag of `suneung train` (--learning-rate).
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var model: String
    public var train: String
    /// A labelled CSV to validate on; else `validationRatio` of train.csv, by id.
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
    /// Save every N steps (0: never), and/or at the end of each epoch.
    public var saveSteps: Int = 0
    public var saveEachEpoch: Bool = true
    public var evalSteps: Int = 0
    public var evalEachEpoch: Bool = true
    /// Validate on the first N validation items only (0: all).
    public var evalLimit: Int = 0
    /// Recompute each block's activations in the backward pass: "auto" does so when
    /// keeping them all would take more than 1.5 GB.
    public var gradientCheckpointing: String = "auto"
    /// Against position bias: permute_choices each epoch (nil: none).
    public var augment: Augmentation?
    /// Against position bias: resample each epoch to uniform answer positions (nil: none).
    public var balance: Balance?
    public var template: String?
    public var name: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, train, validation, epochs, rank, alpha, dropout, rslora, schedule, beta1, beta2, epsilon, loss, seed, template, name
        case validationRatio = "validation_ratio", maxSteps = "max_steps", targetModules = "target_modules"
        case learningRate = "learning_rate", warmupSteps = "warmup_steps", warmupRatio = "warmup_ratio", weightDecay = "weight_decay"
        case batchSize = "batch_size", gradientAccumulation = "gradient_accumulation", maxGradNorm = "max_grad_norm", maxLength = "max_length"
        case endOfTurn = "end_of_turn", saveSteps = "save_steps", saveEachEpoch = "save_each_epoch", evalSteps = "eval_steps"
        case evalEachEpoch = "eval_each_epoch", evalLimit = "eval_limit", gradientCheckpointing = "gradient_checkpointing"
        case augment, balance
    }

    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
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
        let known = Set(Self.keys)
        for key in values.keys.sorted() where !known.contains(key) {
            let suggestion = nearestName(to: key, among: Self.keys).map { " (did you mean '\($0)'?)" } ?? ""
            throw TrainingError("\(source): unknown key '\(key)'\(suggestion); the keys are: \(Self.keys.sorted().joined(separator: ", "))")
        }
        for key in Self.requiredKeys where values[key] == nil {
            throw TrainingError("\(source): '\(key)' is required (in the config or as --\(key.replacingOccurrences(of: "_", with: "-")))")
        }
        func text(_ key: CodingKeys) throws -> String? {
            guard let value = values[key.rawValue] else { return nil }
            guard case .scalar(let s) = value else { throw TrainingError("\(source): '\(key.rawValue)' must be a single value, not a list") }
            return s
        }
        func parse<T>(_ key: CodingKeys, _ kind: String, _ convert: (String) -> T?) throws -> T? {
            guard let s = try text(key) else { return nil }
            guard let value = convert(s) else { throw TrainingError("\(source): '\(key.rawValue)' must be \(kind), not '\(s)'") }
            return value
        }
        func bool(_ s: String) -> Bool? { ["true", "yes", "on", "1"].contains(s.lowercased()) ? true : ["false", "no", "off", "0"].contains(s.lowercased()) ? false : nil }
        model = try text(.model)!
        train = try text(.train)!
        name = try text(.name)!
        validation = try text(.validation)
        if let v = try parse(.validationRatio, "a number", Double.init) { validationRatio = v }
        if let v = try parse(.epochs, "a number", Double.init) { epochs = v }
        maxSteps = try parse(.maxSteps, "an integer", Int.init)
        if let v = try parse(.rank, "an integer", Int.init) { rank = v }
        if let v = try parse(.alpha, "a number", Double.init) { alpha = v }
        if let v = try parse(.dropout, "a number", Double.init) { dropout = v }
        if let v = try parse(.rslora, "true or false", bool) { rslora = v }
        if let value = values[CodingKeys.targetModules.rawValue] {
            switch value {
            case .list(let list): targetModules = list
            case .scalar(let s): targetModules = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            }
        }
        if let v = try parse(.learningRate, "a number", Double.init) { learningRate = v }
        if let v = try parse(.schedule, "one of \(LearningRateSchedule.Shape.allCases.map(\.rawValue).joined(separator: ", "))", LearningRateSchedule.Shape.init) { schedule = v }
        warmupSteps = try parse(.warmupSteps, "an integer", Int.init)
        if let v = try parse(.warmupRatio, "a number", Double.init) { warmupRatio = v }
        if let v = try parse(.weightDecay, "a number", Double.init) { weightDecay = v }
        if let v = try parse(.beta1, "a number", Double.init) { beta1 = v }
        if let v = try parse(.beta2, "a number", Double.init) { beta2 = v }
        if let v = try parse(.epsilon, "a number", Double.init) { epsilon = v }
        if let v = try parse(.batchSize, "an integer", Int.init) { batchSize = v }
        if let v = try parse(.gradientAccumulation, "an integer", Int.init) { gradientAccumulation = v }
        if let v = try parse(.maxGradNorm, "a number", Double.init) { maxGradNorm = v }
        if let v = try parse(.maxLength, "an integer", Int.init) { maxLength = v }
        if let v = try parse(.loss, "one of \(LossKind.allCases.map(\.rawValue).joined(separator: ", "))", LossKind.init) { loss = v }
        if let v = try parse(.endOfTurn, "true or false", bool) { endOfTurn = v }
        if let v = try parse(.seed, "a non-negative integer", UInt64.init) { seed = v }
        if let v = try parse(.saveSteps, "an integer", Int.init) { saveSteps = v }
        if let v = try parse(.saveEachEpoch, "true or false", bool) { saveEachEpoch = v }
        if let v = try parse(.evalSteps, "an integer", Int.init) { evalSteps = v }
        if let v = try parse(.evalEachEpoch, "true or false", bool) { evalEachEpoch = v }
        if let v = try parse(.evalLimit, "an integer", Int.init) { evalLimit = v }
        if let v = try text(.gradientCheckpointing) { gradientCheckpointing = v }
        // "none" is a value (no augmentation), so these parse to an optional of an optional.
        if let v = try parse(.augment, "permute_choices or none", { (s: String) -> Augmentation?? in s == "none" ? .some(nil) : Augmentation(rawValue: s).map { .some($0) } }) { augment = v }
        if let v = try parse(.balance, "positions or none", { (s: String) -> Balance?? in s == "none" ? .some(nil) : Balance(rawValue: s).map { .some($0) } }) { balance = v }
        template = try text(.template)
        try validate(source: source)
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
        try check(warmupSteps.map { $0 >= 0 } ?? true && (0...1).contains(warmupRatio), "warmup_steps must be ≥ 0 and warmup_ratio in [0, 1]")
        try check(weightDecay >= 0 && (0..<1).contains(beta1) && (0..<1).contains(beta2) && epsilon > 0, "weight_decay ≥ 0, beta1 and beta2 in [0, 1) and epsilon > 0 are required")
        try check(batchSize >= 1 && gradientAccumulation >= 1, "batch_size and gradient_accumulation must be at least 1")
        try check(maxGradNorm > 0, "max_grad_norm must be positive (got \(maxGradNorm))")
        try check(maxLength >= 16, "max_length must be at least 16 tokens (got \(maxLength))")
        try check(saveSteps >= 0 && evalSteps >= 0 && evalLimit >= 0, "save_steps, eval_steps and eval_limit must be ≥ 0")
        try check(validation != nil || (0..<1).contains(validationRatio), "validation_ratio must be in [0, 1) (got \(validationRatio))")
        try check(["auto", "true", "false"].contains(gradientCheckpointing), "gradient_checkpointing must be auto, true or false (got '\(gradientCheckpointing)')")
        try check(!targetModules.isEmpty, "target_modules is empty")
        for module in targetModules where Self.module(module) == nil {
            throw TrainingError("\(source): target module '\(module)' is not one of q, k, v, o, gate, up, down (or PEFT's \(LoRAAdapter.Module.allCases.map(\.rawValue).joined(separator: ", ")))")
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
