import Engine
import Exam
import Foundation
import GGUF
import Store
import Tensor
import Training
import Yams

/// What `train` is asked: the settings by config key (a YAML file's, then the flags'),
/// or a run to resume.
public struct TrainRequest: Sendable {
    public var values: [String: ConfigValue]
    /// Where the values came from, for messages.
    public var source: String
    public var resume: String?
    public var threads: Int?

    public init(values: [String: ConfigValue], source: String, resume: String? = nil, threads: Int? = nil) {
        self.values = values
        self.source = source
        self.resume = resume
        self.threads = threads
    }
}

/// LoRA training into the store: `train`, and the pipeline's stage 3.
public enum Train {
    /// The formats a checkpoint's adapter can leave in.
    public enum AdapterFormat: String, CaseIterable, Sendable {
        /// llama.cpp's adapter GGUF (`llama-cli --lora`, Ollama's ADAPTER).
        case gguf
        /// The PEFT folder itself (transformers, vLLM).
        case peft
    }

    /// Writes a checkpoint's adapter (RUN/step-N, or RUN for its last) to `out`, after
    /// checking that the model it was trained on is unchanged; never over an existing
    /// file or folder. Returns the checkpoint's reference.
    public static func exportAdapter(_ reference: String, format: AdapterFormat, to out: String, store: Store) throws -> String {
        let (run, checkpoint) = try store.checkpoint(reference)
        let name = "\(run.name)/step-\(checkpoint.step)"
        guard !FileManager.default.fileExists(atPath: out) else {
            throw StoreError.invalid("\(out) exists; choose another --out (nothing is overwritten)")
        }
        let folder = store.workspace.root.appendingPathComponent(checkpoint.path).path
        guard try Predict.adapterSha256(folder) == checkpoint.adapterSha256 else {
            throw StoreError.invalid("\(folder) has changed since \(name) was saved (sha256 differs from the store's)")
        }
        switch format {
        case .peft:
            // Copied beside, then renamed: a failed copy leaves no half folder.
            let temporary = out + ".\(getpid()).tmp"
            do {
                try FileManager.default.copyItem(atPath: folder, toPath: temporary)
                try FileManager.default.moveItem(atPath: temporary, toPath: out)
            } catch {
                try? FileManager.default.removeItem(atPath: temporary)
                throw error
            }
        case .gguf:
            let modelPath = store.workspace.resolve(run.model)
            let file = try GGUFFile(path: modelPath)
            let config = try ModelConfig(file)
            let base = URL(fileURLWithPath: modelPath).deletingPathExtension().lastPathComponent
            try LoRAAdapter(folder: folder).ggufWriter(config: config, base: (base, run.modelSha256)).write(to: out, replacing: false)
        }
        return name
    }

    /// Trains (or resumes) a run, recording its log, evaluations and checkpoints; returns
    /// the run.
    @discardableResult
    public static func run(_ request: TrainRequest, store: Store, events: WorkflowEvents = { _ in }) throws -> TrainingRunRecord {
        let root = store.workspace.root
        let (values, source, resume) = (request.values, request.source, request.resume)

        var settings: TrainingConfig
        var existing: TrainingRunRecord?
        if let resume {
            guard let run = try store.trainingRun(named: resume) else {
                throw TrainingError("no training run named \(resume) to resume (see `suneung list --checkpoints`)")
            }
            settings = try TrainingConfig(stored: run.config)
            // Only the model's path may change (a moved file, same bytes): other settings
            // would not continue the same run.
            var stored = try Self.values(of: settings)
            for (key, value) in values where key != "model" { stored[key] = value }
            guard try TrainingConfig(values: stored, source: source) == settings else {
                throw TrainingError(
                    "--resume continues \(resume) with its stored settings; \(source) changes some of them (start a new run with another --name instead)"
                )
            }
            if case .scalar(let path) = values["model"] { settings.model = path }
            existing = run
        } else {
            settings = try TrainingConfig(values: values, source: source)
            try SetRef.checkName(settings.name, what: "run name")
            if try store.trainingRun(named: settings.name) != nil {
                throw TrainingError(
                    "a training run named \(settings.name) exists (resume it with --resume \(settings.name), or choose another --name)")
            }
        }
        let resolve = store.workspace.resolve
        let modelPath = resolve(settings.model)
        if let threads = request.threads { Parallel.threads = threads }

        // Everything that can fail on bad input comes before the first write.
        let file = try GGUFFile(path: modelPath)
        // A float32 base that cannot fit is refused before the file is hashed.
        if settings.precision == .f32 {
            let needed = Network.float32Bytes(of: file), memory = Int(ProcessInfo.processInfo.physicalMemory)
            let gigabytes = { (bytes: Int) in String(format: "%.1f GB", Double(bytes) / 1e9) }
            guard needed < memory / 4 * 3 else {
                throw TrainingError(
                    "\(modelPath): its base in float32 (precision f32, which auto trains in) would hold \(gigabytes(needed)), "
                        + "and this machine has \(gigabytes(memory)); keep it in its codes with precision q8x2 (--precision q8x2: "
                        + "about \(gigabytes(file.tensors.reduce(0) { $0 + $1.byteCount })), gradients closer to float32's than bf16's)")
            }
        }
        let modelSha = try sha256OfFile(modelPath)
        if let existing, existing.modelSha256 != modelSha {
            throw TrainingError(
                "\(modelPath) is not the base model of \(existing.name) (sha256 \(modelSha.prefix(12))…, the run was started on \(existing.modelSha256.prefix(12))… from \(existing.model))"
            )
        }
        let trainPath = resolve(settings.train)
        let all = try ExamSet.load(path: trainPath).items
        if let unlabelled = all.first(where: { $0.answer == nil }) {
            throw TrainingError(
                "\(settings.train): item \(unlabelled.id) has no answer; training needs a labelled file (is it the test set?)")
        }
        let (trainItems, validationItems): ([ExamItem], [ExamItem])
        var validationSha: String?
        if let validation = settings.validation {
            trainItems = all
            validationItems = try ExamSet.load(path: resolve(validation)).items
            validationSha = sha256Hex(try readFile(resolve(validation)))
        } else {
            (trainItems, validationItems) = Trainer.split(all, validationRatio: settings.validationRatio)
        }
        let model = try Model(file: file, precision: settings.precision)
        let trainer = try Trainer(config: settings, model: model, trainItems: trainItems, validationItems: validationItems)
        let trainSha = sha256Hex(try readFile(trainPath))
        if let existing, existing.trainSha256 != trainSha {
            throw TrainingError(
                "\(trainPath) has changed since \(existing.name) started (sha256 differs); a resumed run must see the same data")
        }
        let folder = root.appendingPathComponent("checkpoints/\(settings.name)")

        let run: TrainingRunRecord
        var first = 0
        if let existing {
            run = existing
            if let last = try store.checkpoints(run: existing.name).last {
                first = try trainer.resume(from: root.appendingPathComponent(last.checkpoint.path))
                events(.note("Resuming \(run.name) from step \(first) of \(trainer.totalSteps) (\(last.checkpoint.path))."))
            } else {
                events(.note("Resuming \(run.name) from the start: it has no checkpoint yet."))
            }
            guard first < trainer.totalSteps else {
                events(.note("\(run.name) is complete (\(trainer.totalSteps) steps)."))
                return run
            }
        } else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            run = try store.addTrainingRun(
                TrainingRunRecord(
                    name: settings.name, config: String(decoding: try encoder.encode(settings), as: UTF8.self), model: modelPath,
                    modelSha256: modelSha, trainSha256: trainSha, validationSha256: validationSha, totalSteps: trainer.totalSteps,
                    createdAt: Date()))
        }
        events(
            .note(
                "Training \(run.name): \(trainItems.count) items (\(validationItems.count) held out), \(trainer.totalSteps) steps of \(settings.batchSize * settings.gradientAccumulation) sequences, LoRA r \(settings.rank) on \(settings.modules.map(\.rawValue).joined(separator: ", ")) (\(trainer.lora.values.count) weights)."
            ))
        if trainer.shortened > 0 {
            events(
                .note("\(trainer.shortened) prompts were longer than \(settings.maxLength) tokens; their passages were cut in the middle."))
        }
        events(.trainingStart(steps: trainer.totalSteps - first))
        try trainer.run(from: first, checkpoints: folder) { event in
            switch event {
            case .step(let step):
                try store.addTrainingLog(
                    TrainingLogRecord(
                        runId: run.id!, step: step.step, epoch: step.epoch, loss: step.loss, learningRate: Double(step.learningRate),
                        gradientNorm: Double(step.gradientNorm), tokens: step.tokens, seconds: step.seconds))
                events(.trainingStep(step))
            case .evaluation(let evaluation):
                try store.addEvaluation(
                    TrainingEvaluationRecord(
                        runId: run.id!, step: evaluation.step, loss: evaluation.loss, accuracy: evaluation.accuracy, items: evaluation.items
                    ))
                events(
                    .trainingNote(
                        String(
                            format: "step %d: validation loss %.4f, accuracy %.4f (%d items)", evaluation.step, evaluation.loss,
                            evaluation.accuracy, evaluation.items)))
            case .checkpoint(let checkpoint):
                let sha = try Predict.adapterSha256(checkpoint.folder.path)
                let record = try store.addCheckpoint(
                    CheckpointRecord(
                        runId: run.id!, step: checkpoint.step, epoch: checkpoint.epoch, path: store.workspace.relative(checkpoint.folder),
                        adapterSha256: sha, trainLoss: checkpoint.trainLoss, validationLoss: checkpoint.evaluation?.loss,
                        validationAccuracy: checkpoint.evaluation?.accuracy, createdAt: Date()))
                events(.trainingNote("saved \(run.name)/step-\(record.step) -> \(record.path)"))
            }
        }
        events(
            .note(
                "Done: \(run.name), \(trainer.totalSteps) steps. Its checkpoints: `suneung list --checkpoints`; score one with `suneung predict --checkpoint \(run.name)/step-\(trainer.totalSteps) --dataset TEST.csv --name NAME`."
            ))
        return run
    }

    /// A config's keys and values, as a file or flags would give them.
    public static func values(of config: TrainingConfig) throws -> [String: ConfigValue] {
        let object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(config)) as! [String: Any]
        return object.mapValues { value in
            if let list = value as? [Any] { return .list(list.map { "\($0)" }) }
            return .scalar("\(value)")
        }
    }

    /// A YAML file of top-level keys: scalars, or lists of scalars.
    public static func readYAML(_ path: String) throws -> [String: ConfigValue] {
        let text = String(decoding: try readFile(path), as: UTF8.self)
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw TrainingError("\(path): not valid YAML: \(error)") }
        guard let loaded else { return [:] }
        guard let mapping = loaded as? [String: Any] else {
            throw TrainingError("\(path): expected a mapping of keys to values at the top level")
        }
        var values: [String: ConfigValue] = [:]
        for (key, value) in mapping {
            switch value {
            case let list as [Any]: values[key] = .list(list.map { "\($0)" })
            case is [String: Any]: throw TrainingError("\(path): '\(key)' is a nested mapping; the keys are flat (see config/train.yaml)")
            default: values[key] = .scalar("\(value)")
            }
        }
        return values
    }
}
