import Engine
import Ensemble
import Exam
import Foundation
import Tokenizer

/// A LoRA training run over exam items: the examples (prompt and answer tokens), the
/// data order, the optimiser steps, validation and checkpoints. What happens is
/// reported through `events`; the store is the caller's (Training knows no SQLite).
public final class Trainer {
    public let config: TrainingConfig
    public let network: Network
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    public let trainItems: [ExamItem], validationItems: [ExamItem]
    public let examples: [TrainingSequence], validationExamples: [TrainingSequence]
    public let answerTokens: [Int32]
    public private(set) var lora: LoRAWeights
    public private(set) var optimiser: AdamW
    public let schedule: LearningRateSchedule
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    /// Prompts whose passage was cut to fit max_length.
    public let shortened: Int
    let scorer: Scorer
    let endOfTurnToken: Int32?

    /// One optimiser step, as it is logged.
    public struct Step: Sendable {
        public var step: Int
        public var epoch: Double
        public var loss: Double
        public var learningRate: Float
        public var gradientNorm: Float
        public var tokens: Int
        public var seconds: Double
    }

    public struct Evaluation: Sendable {
        public var step: Int
        public var loss: Double
        public var accuracy: Double
        public var items: Int
    }

    /// A checkpoint written to disk (the folder is complete when this is reported).
    public struct Checkpoint: Sendable {
        public var step: Int
        public var epoch: Double
        public var folder: URL
        public var trainLoss: Double?
        public var evaluation: Evaluation?
    }

    public enum Event {
        case step(Step)
        case evaluation(Evaluation)
        case checkpoint(Checkpoint)
    }

    /// Reads and prepares everything before any step: bad input fails here.
    public init(config: TrainingConfig, model: Model, trainItems: [ExamItem], validationItems: [ExamItem]) throws {
        self.config = config
        network = Network(model: model)
        tokenizer = try Tokenizer(gguf: model.file)
        if let name = config.template {
            guard let template = ChatTemplate(rawValue: name) else {
                throw TrainingError("template '\(name)' is not one of \(ChatTemplate.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.template = template
        } else {
            template = Family.chatTemplate(of: model.file)
        }
        let modules = config.modules
        let family = model.config
        if family.heads == 0 || modules.isEmpty { throw TrainingError("no modules to adapt") }
        self.trainItems = trainItems
        self.validationItems = validationItems
        let endOfTurn: Int32?
        if config.endOfTurn {
            guard let marker = template.endOfTurn, case let ids = tokenizer.encode(marker), ids.count == 1 else {
                throw TrainingError("end_of_turn: the \(template.rawValue) template has no single end-of-turn token")
            }
            endOfTurn = ids[0]
        } else {
            endOfTurn = nil
        }
        let scorer = try Scorer(model: model, template: template, maxTokens: config.maxLength - (endOfTurn == nil ? 0 : 1))
        self.scorer = scorer
        endOfTurnToken = endOfTurn
        answerTokens = scorer.answerTokens
        var shortened = 0
        func sequence(_ item: ExamItem, file: String) throws -> TrainingSequence {
            let (sequence, cut) = try Self.sequence(item, file: file, scorer: scorer, endOfTurn: endOfTurn, maxLength: config.maxLength)
            if cut { shortened += 1 }
            return sequence
        }
        examples = try trainItems.map { try sequence($0, file: config.train) }
        validationExamples = try validationItems.map { try sequence($0, file: config.validation ?? config.train) }
        self.shortened = shortened
        guard !examples.isEmpty else { throw TrainingError("\(config.train): no training items (after the validation split)") }

        lora = LoRAWeights(config: family, modules: modules, rank: config.rank, alpha: config.alpha, rsLoRA: config.rslora)
        lora.initialize(seed: config.seed)
        optimiser = AdamW(
            count: lora.values.count, beta1: Float(config.beta1), beta2: Float(config.beta2), epsilon: Float(config.epsilon),
            weightDecay: Float(config.weightDecay))
        let perStep = config.batchSize * config.gradientAccumulation
        stepsPerEpoch = (examples.count + perStep - 1) / perStep
        totalSteps = config.maxSteps ?? max(1, Int((config.epochs * Double(stepsPerEpoch)).rounded(.up)))
        schedule = LearningRateSchedule(
            peak: Float(config.learningRate), shape: config.schedule,
            warmupSteps: config.warmupSteps ?? Int((config.warmupRatio * Double(totalSteps)).rounded(.up)), totalSteps: totalSteps)
    }

    /// An item's prompt and answer targets; whether its passage was cut to fit.
    static func sequence(_ item: ExamItem, file: String, scorer: Scorer, endOfTurn: Int32?, maxLength: Int) throws -> (
        TrainingSequence, cut: Bool
    ) {
        guard let answer = item.answer, (1...item.choices.count).contains(answer) else {
            throw TrainingError("\(file): item \(item.id) has no answer (training and validation need labelled items)")
        }
        let prompt: Scorer.Prompt
        do {
            prompt = try scorer.prompt(for: item)
        } catch {
            throw TrainingError("\(file): item \(item.id): \(error) (max_length \(maxLength))")
        }
        let answerToken = scorer.answerTokens[answer - 1]
        var tokens = prompt.tokens, targets = [(position: tokens.count - 1, token: answerToken)]
        if let endOfTurn {
            tokens.append(answerToken)
            targets.append((position: tokens.count - 1, token: endOfTurn))
        }
        return (
            TrainingSequence(tokens: tokens, targets: targets, choices: Array(scorer.answerTokens.prefix(item.choices.count))),
            prompt.charactersCut > 0
        )
    }

    /// The train item as an epoch sees it: with `augment: permute_choices`, its choices
    /// in that epoch's order.
    public func item(_ index: Int, epoch: Int) -> ExamItem {
        config.augment == .permuteChoices
            ? permutedChoices(trainItems[index], seed: config.seed, epoch: epoch, index: index) : trainItems[index]
    }

    /// The example an epoch trains on.
    func example(_ index: Int, epoch: Int) throws -> TrainingSequence {
        guard config.augment != nil else { return examples[index] }
        return try Self.sequence(
            item(index, epoch: epoch), file: config.train, scorer: scorer, endOfTurn: endOfTurnToken, maxLength: config.maxLength
        ).0
    }

    // MARK: - Data

    /// The train/validation split of one labelled file: an item is held out when the
    /// FNV-1a hash of its id, mod 10^6, is below ratio·10^6.
    public static func split(_ items: [ExamItem], validationRatio: Double) -> (train: [ExamItem], validation: [ExamItem]) {
        let held = items.filter { Double(fnv1a($0.id) % 1_000_000) < validationRatio * 1_000_000 }
        let ids = Set(held.map(\.id))
        return (items.filter { !ids.contains($0.id) }, held)
    }

    /// The examples of an epoch, in a shuffled order that depends only on the seed and
    /// the epoch (so a resumed run sees what an uninterrupted one saw).
    /// With `balance: positions`, a seeded draw of as many examples, weighted so that
    /// every answer position (per number of choices) is as likely.
    public func order(epoch: Int) -> [Int] {
        let seed = config.seed &+ UInt64(epoch) &* 1_000_003
        if config.balance == .positions {
            let positions = examples.indices.map { index in
                let item = item(index, epoch: epoch)
                return (item.choices.count, item.answer!)
            }
            return balancedDraw(positions: positions, count: examples.count, seed: seed)
        }
        var random = SplitMix64(seed: seed)
        return Array(examples.indices).shuffled(using: &random)
    }

    /// Examples of step `step` (0-based): the next batch·accumulation of its epoch.
    func batch(step: Int) -> [Int] {
        let perStep = config.batchSize * config.gradientAccumulation
        let within = step % stepsPerEpoch
        let order = order(epoch: step / stepsPerEpoch)
        return Array(order[within * perStep..<min(order.count, (within + 1) * perStep)])
    }

    /// Whether a sequence's activations are recomputed in the backward pass.
    func recompute(_ sequence: TrainingSequence) -> Bool {
        switch config.gradientCheckpointing {
        case "true": return true
        case "false": return false
        default:
            let kept = network.keptFloats(tokens: sequence.tokens.count, lora: lora, dropout: config.dropout > 0)
            return Double(network.config.blocks * kept) * 4 > 1.5e9
        }
    }

    // MARK: - Steps

    /// Continues from a checkpoint folder written by `save` (weights, moments, step).
    public func resume(from folder: URL) throws -> Int {
        let adapter = try LoRAAdapter(folder: folder.path)
        let weights = try LoRAWeights(adapter: adapter, config: network.config)
        guard weights.slots == lora.slots else {
            throw TrainingError(
                "\(folder.path): the checkpoint's LoRA (r \(weights.rank), \(weights.modules.map(\.rawValue).joined(separator: ","))) is not this config's"
            )
        }
        let state = try Safetensors(path: folder.appendingPathComponent("optimizer.safetensors").path)
        guard let m = state.tensors["exp_avg"]?.values, let v = state.tensors["exp_avg_sq"]?.values,
            let step = state.tensors["step"]?.values.first,
            m.count == lora.values.count, v.count == lora.values.count
        else {
            throw TrainingError("\(folder.path)/optimizer.safetensors lacks the optimiser's moments for these weights")
        }
        lora = weights
        optimiser.m = m
        optimiser.v = v
        optimiser.step = Int(step)
        return Int(step)
    }

    /// Runs steps `first..<totalSteps` (or up to `stopAfter`, for tests of resuming),
    /// reporting each step, evaluation and checkpoint.
    public func run(from first: Int = 0, stopAfter: Int? = nil, checkpoints: URL, events: (Event) throws -> Void) throws {
        let last = min(totalSteps, stopAfter ?? totalSteps)
        var recentLoss: Double?
        // The base model's validation metrics, for the curve's start.
        if first == 0, !validationExamples.isEmpty, config.evalSteps > 0 || config.evalEachEpoch {
            try events(.evaluation(try evaluate(step: 0)))
        }
        for step in first..<last {
            let start = Date()
            let indices = batch(step: step)
            var gradient = [Float](repeating: 0, count: lora.values.count)
            var loss = 0.0, tokens = 0
            for (position, index) in indices.enumerated() {
                let sequence = try example(index, epoch: step / stepsPerEpoch)
                let dropout =
                    config.dropout > 0
                    ? Network.Dropout(probability: Float(config.dropout), seed: config.seed ^ UInt64(step) << 20 ^ UInt64(position)) : nil
                let result = try network.accumulateGradient(
                    sequence, lora: lora, loss: config.loss, dropout: dropout, into: &gradient,
                    weight: 1 / Float(indices.count), recompute: recompute(sequence))
                loss += result.loss / Double(indices.count)
                tokens += sequence.tokens.count
            }
            let norm = clipGlobalNorm(&gradient, maxNorm: Float(config.maxGradNorm))
            let rate = schedule.rate(at: step)
            optimiser.update(&lora.values, gradient: gradient, learningRate: rate)
            recentLoss = loss
            let done = step + 1, epoch = Double(done) / Double(stepsPerEpoch)
            try events(
                .step(
                    Step(
                        step: done, epoch: epoch, loss: loss, learningRate: rate, gradientNorm: norm, tokens: tokens,
                        seconds: Date().timeIntervalSince(start))))
            let epochEnd = done % stepsPerEpoch == 0
            var evaluation: Evaluation?
            if !validationExamples.isEmpty,
                (config.evalSteps > 0 && done % config.evalSteps == 0) || (config.evalEachEpoch && epochEnd) || done == totalSteps
            {
                evaluation = try evaluate(step: done)
                try events(.evaluation(evaluation!))
            }
            if (config.saveSteps > 0 && done % config.saveSteps == 0) || (config.saveEachEpoch && epochEnd) || done == totalSteps {
                let folder = try save(step: done, in: checkpoints)
                try events(.checkpoint(Checkpoint(step: done, epoch: epoch, folder: folder, trainLoss: recentLoss, evaluation: evaluation)))
            }
        }
    }

    /// Validation loss and accuracy (the answer is the arg-max of the answer tokens'
    /// logits, as the scorer's).
    public func evaluate(step: Int) throws -> Evaluation {
        let limit = config.evalLimit > 0 ? min(config.evalLimit, validationExamples.count) : validationExamples.count
        var loss = 0.0, correct = 0
        for (sequence, item) in zip(validationExamples.prefix(limit), validationItems) {
            let result = try network.evaluate(sequence, lora: lora, loss: config.loss)
            loss += result.loss / Double(limit)
            let logits = result.answerLogits
            let answer = logits.indices.max { (logits[$0], -$0) < (logits[$1], -$1) }! + 1
            if answer == item.answer { correct += 1 }
        }
        return Evaluation(step: step, loss: loss, accuracy: Double(correct) / Double(limit), items: limit)
    }

    /// Writes checkpoints/RUN/step-N/ (the PEFT adapter, the optimiser's moments and
    /// step, trainer_state.json) into a temporary folder, then renames it into place.
    func save(step: Int, in folder: URL) throws -> URL {
        let target = folder.appendingPathComponent("step-\(step)")
        let partial = folder.appendingPathComponent(".step-\(step).partial")
        try? FileManager.default.removeItem(at: partial)
        try lora.save(
            to: partial, config: network.config, baseModel: URL(fileURLWithPath: config.model).deletingPathExtension().lastPathComponent,
            dropout: config.dropout)
        try Safetensors.write(
            [
                ("exp_avg", [optimiser.m.count], optimiser.m), ("exp_avg_sq", [optimiser.v.count], optimiser.v),
                ("step", [1], [Float(optimiser.step)])
            ],
            to: partial.appendingPathComponent("optimizer.safetensors"))
        let state: [String: Any] = [
            "step": step, "epoch": Double(step) / Double(stepsPerEpoch), "total_steps": totalSteps, "steps_per_epoch": stepsPerEpoch
        ]
        try JSONSerialization.data(withJSONObject: state, options: [.prettyPrinted, .sortedKeys]).write(
            to: partial.appendingPathComponent("trainer_state.json"))
        // A folder left by a run killed after the rename but before the store knew it.
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.moveItem(at: partial, to: target)
        return target
    }
}
