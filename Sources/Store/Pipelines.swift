import Foundation
import GRDB

/// What one `suneung pipeline` config produced, so that `suneung report NAME` can be
/// rebuilt from the store alone: its members, its training run, the five chosen by
/// public score and the ensembles built from them.
public struct PipelineRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "pipeline"

    public var name: String
    public var config: String
    public var trainingRun: String?
    /// Set references (NAME@vK), in the order of the summary.
    public var members: [String]
    public var chosen: [String]
    public var ensembles: [String]
    /// The labelled file of the simulated leaderboard, if any.
    public var gold: String?
    public var updatedAt: Date

    public init(
        name: String, config: String, trainingRun: String?, members: [String], chosen: [String], ensembles: [String], gold: String?,
        updatedAt: Date
    ) {
        self.name = name
        self.config = config
        self.trainingRun = trainingRun
        self.members = members
        self.chosen = chosen
        self.ensembles = ensembles
        self.gold = gold
        self.updatedAt = updatedAt
    }
}

extension Store {

    public func savePipeline(_ record: PipelineRecord) throws {
        try write { try record.save($0) }
    }

    public func pipeline(named name: String) throws -> PipelineRecord? {
        try database.read { try PipelineRecord.fetchOne($0, key: name) }
    }

    public func pipelines() throws -> [PipelineRecord] {
        try database.read { try PipelineRecord.order(Column("updatedAt").desc).fetchAll($0) }
    }
}
