import ArgumentParser
import Exam
import Foundation
import Tensor
import Workflow

@main
struct Suneung: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Versioned predictions, leaderboard scores and ensembles for Korean CSAT-style (수능형) LLM exam competitions.",
        discussion:
            """
            Exit status: 0 done; 1 refused (bad input, a rule of the store, a missing file: nothing was changed); 64 a usage error (an \
            unknown option or command, a missing argument).
            """,
        version: suneungVersion,
        subcommands: [
            InitCommand.self, DataCommand.self, ImportCommand.self, CheckCommand.self, ScoreCommand.self, UploadsCommand.self,
            ListCommand.self, ShowCommand.self, DiffCommand.self,
            ExportCommand.self, ExportAdapterCommand.self, EnsembleCommand.self, AgreeCommand.self, BiasCommand.self, SelectCommand.self,
            CompareCommand.self,
            TagCommand.self, NoteCommand.self, RenameCommand.self, HideCommand.self, UnhideCommand.self, FsckCommand.self,
            ServeCommand.self, TokenCommand.self, RemoteCommand.self, PushCommand.self, PullCommand.self,
            ModelCommand.self, PredictCommand.self, TrainCommand.self, PipelineCommand.self, ReportCommand.self
        ]
    )

    /// `suneung X --help` for an unknown X says so, rather than printing the general help.
    static func main() {
        Memory.returnLargeBlocksWhenFreed()
        let arguments = Array(CommandLine.arguments.dropFirst())
        let names = configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"]
        if let first = arguments.first, !first.hasPrefix("-"), !names.contains(first) {
            let suggestion = nearestName(to: first, among: names).map { " (did you mean '\($0)'?)" } ?? ""
            FileHandle.standardError.write(
                Data(
                    "Error: unknown command '\(excerpt(first, limit: 40))'\(suggestion). The commands: \(names.dropLast().joined(separator: ", ")); `suneung --help` explains them.\n"
                        .utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        main(nil)
    }
}
