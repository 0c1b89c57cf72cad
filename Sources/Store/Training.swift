import Foundation
import GRDB

/// A LoRA training run: its config (as JSON, the trainer's keys), the base model and
/// data it was started on, identified by sha256.
public struct TrainingRunRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "trainingRun"

    public var id: Int64?
    public var name: String
    public var config: String
    public var model: String
    public var modelSha256: String
    public var trainSha256: String
    public var validationSha256: String?
    public var totalSteps: Int
    public var createdAt: Date

    public init(
        name: String, config: String, model: String, modelSha256: String, trainSha256: String, validationSha256: String?, totalSteps: Int,
        createdAt: Date
    ) {
        self.name = name
        self.config = config
        self.model = model
        self.modelSha256 = modelSha256
        self.trainSha256 = trainSha256
        self.validationSha256 = validationSha256
        self.totalSteps = totalSteps
        self.createdAt = createdAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One optimiser step of a run.
public struct TrainingLogRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "trainingLog"

    public var runId: Int64
    public var step: Int
    public var epoch: Double
    public var loss: Double
    public var learningRate: Double
    public var gradientNorm: Double
    public var tokens: Int
    public var seconds: Double

    public init(
        runId: Int64, step: Int, epoch: Double, loss: Double, learningRate: Double, gradientNorm: Double, tokens: Int, seconds: Double
    ) {
        self.runId = runId
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.learningRate = learningRate
        self.gradientNorm = gradientNorm
        self.tokens = tokens
        self.seconds = seconds
    }
}

/// Validation loss and accuracy of a run's weights after `step` steps (0: before
/// training).
public struct TrainingEvaluationRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "trainingEvaluation"

    public var runId: Int64
    public var step: Int
    public var loss: Double
    public var accuracy: Double
    public var items: Int

    public init(runId: Int64, step: Int, loss: Double, accuracy: Double, items: Int) {
        self.runId = runId
        self.step = step
        self.loss = loss
        self.accuracy = accuracy
        self.items = items
    }
}

/// A saved adapter: checkpoints/RUN/step-N/, its sha256, and the metrics at that step.
public struct CheckpointRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "checkpoint"

    public var id: Int64?
    public var runId: Int64
    public var step: Int
    public var epoch: Double
    /// The folder, relative to the workspace root.
    public var path: String
    public var adapterSha256: String
    public var trainLoss: Double?
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    public var createdAt: Date

    public init(
        runId: Int64, step: Int, epoch: Double, path: String, adapterSha256: String, trainLoss: Double?, validationLoss: Double?,
        validationAccuracy: Double?, createdAt: Date
    ) {
        self.runId = runId
        self.step = step
        self.epoch = epoch
        self.path = path
        self.adapterSha256 = adapterSha256
        self.trainLoss = trainLoss
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.createdAt = createdAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Store {

    public func trainingRun(named name: String) throws -> TrainingRunRecord? {
        try database.read { try TrainingRunRecord.filter(Column("name") == name).fetchOne($0) }
    }

    /// Registers a new run; a run of that name must not exist.
    public func addTrainingRun(_ record: TrainingRunRecord) throws -> TrainingRunRecord {
        try SetRef.checkName(record.name)
        return try write { db in
            if try TrainingRunRecord.filter(Column("name") == record.name).fetchCount(db) > 0 {
                throw StoreError.invalid(
                    "a training run named \(record.name) exists (resume it with --resume \(record.name), or choose another --name)")
            }
            var record = record
            try record.insert(db)
            return record
        }
    }

    /// Records a step (replacing the row a killed run left for the same step: a resumed
    /// run computes the same values again).
    public func addTrainingLog(_ record: TrainingLogRecord) throws {
        try write { try record.save($0) }
    }

    public func addEvaluation(_ record: TrainingEvaluationRecord) throws {
        try write { try record.save($0) }
    }

    public func evaluations(runId: Int64) throws -> [TrainingEvaluationRecord] {
        try database.read { try TrainingEvaluationRecord.filter(Column("runId") == runId).order(Column("step")).fetchAll($0) }
    }

    public func addCheckpoint(_ record: CheckpointRecord) throws -> CheckpointRecord {
        try write { db in
            var record = record
            try CheckpointRecord.filter(Column("runId") == record.runId && Column("step") == record.step).deleteAll(db)
            try record.insert(db)
            return record
        }
    }

    /// Checkpoints of one run (or all), oldest first, with their run.
    public func checkpoints(run: String? = nil) throws -> [(run: TrainingRunRecord, checkpoint: CheckpointRecord)] {
        try database.read { db in
            let runs = Dictionary(uniqueKeysWithValues: try TrainingRunRecord.fetchAll(db).map { ($0.id!, $0) })
            var request = CheckpointRecord.order(Column("runId"), Column("step"))
            if let run {
                guard let id = runs.values.first(where: { $0.name == run })?.id else {
                    throw StoreError.notFound("no training run named \(run)")
                }
                request = request.filter(Column("runId") == id)
            }
            return try request.fetchAll(db).map { (runs[$0.runId]!, $0) }
        }
    }

    /// The checkpoint RUN/step-N (or RUN: its last).
    public func checkpoint(_ reference: String) throws -> (run: TrainingRunRecord, checkpoint: CheckpointRecord) {
        let parts = reference.split(separator: "/", maxSplits: 1).map(String.init)
        let all = try checkpoints(run: parts[0])
        if parts.count == 1 {
            guard let last = all.last else { throw StoreError.notFound("training run \(parts[0]) has no checkpoint yet") }
            return last
        }
        guard parts[1].hasPrefix("step-"), let step = Int(parts[1].dropFirst(5)) else {
            throw StoreError.badReference("'\(reference)' is not RUN/step-N")
        }
        guard let found = all.first(where: { $0.checkpoint.step == step }) else {
            throw StoreError.notFound(
                "\(parts[0]) has no checkpoint at step \(step) (it has: \(all.map { "step-\($0.checkpoint.step)" }.joined(separator: ", ")))"
            )
        }
        return found
    }

    /// The steps of a run, in order (loss curves).
    public func trainingLog(runId: Int64) throws -> [TrainingLogRecord] {
        try database.read { try TrainingLogRecord.filter(Column("runId") == runId).order(Column("step")).fetchAll($0) }
    }
}
