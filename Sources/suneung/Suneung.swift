import ArgumentParser

@main
struct Suneung: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        abstract: "Versioned predictions, leaderboard scores and ensembles for Korean CSAT-style (수능형) LLM exam competitions.",
        version: version,
        subcommands: [InitCommand.self, DataCommand.self, ImportCommand.self, ScoreCommand.self, ListCommand.self, ShowCommand.self, DiffCommand.self, ExportCommand.self, EnsembleCommand.self, AgreeCommand.self, SelectCommand.self, CompareCommand.self, ModelCommand.self, PredictCommand.self, TrainCommand.self, PipelineCommand.self, ReportCommand.self]
    )
}
