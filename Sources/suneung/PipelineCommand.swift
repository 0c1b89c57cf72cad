import ArgumentParser
import Exam
import Foundation
import Store
import Workflow

/// The main job in one command (Workflow's `Pipeline`).
struct PipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract:
            "Train, predict per checkpoint, score, ensemble the top 5, export the submission and write the report: one resumable command.",
        discussion: """
            Stages: (1) zero-shot predictions of the base model on the test set; (2) the \
            prediction files of runs made elsewhere (`imports`); (3) LoRA training with \
            checkpoints (the keys of config/train.yaml under `train:`); (4) predictions of \
            every checkpoint; (5) scores: with a labelled copy of the test set (`gold`), a \
            simulated leaderboard (public: items whose id's FNV-1a hash is even; private: \
            odd), else the public scores you record with `suneung score`; (6) the top 5 by \
            public score, ensembled by vote and by score-weighted average, exported to \
            submissions/; (7) a summary table and reports/NAME.html. Run it again and it \
            redoes nothing; kill it and the next run resumes where it stopped.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: ArgumentHelp("The pipeline's YAML file (see config/pipeline.yaml).", valueName: "FILE.yaml"))
    var config: String

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    func run() throws {
        let store = try options.openStore()
        var printer = EventPrinter()
        let outcome = try Pipeline.run(
            config: config, threads: threads, author: defaultAuthor(), commandLine: commandLineText, store: store
        ) { printer.show($0) }
        printer.show(.stage("7. summary"))
        print(summaryTable(outcome.summary).rendered)
        if !outcome.resumed.isEmpty { print("\nResumed from an interrupted run: " + outcome.resumed.joined(separator: "; ") + ".") }
        print("")
        if let submission = outcome.submission { print("Submission: \(submission)") }
        print("Report:     \(outcome.report)")
    }
}

/// A pipeline's summary as a table.
func summaryTable(_ summary: PipelineSummary) -> TextTable {
    var table = TextTable([
        ("set", .left), ("kind", .left), ("public", .right), ("private", .right), ("local", .right),
        ("top \(summary.pipeline.chosen.count)", .left)
    ])
    for row in summary.rows {
        table.add([row.ref, row.kind, formatScore(row.public), formatScore(row.private), formatScore(row.local), row.chosen ? "*" : ""])
    }
    return table
}
