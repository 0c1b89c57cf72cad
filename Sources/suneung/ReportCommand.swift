import ArgumentParser
import Ensemble
import Exam
import Foundation
import Report
import Store
import Workflow

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Rebuild a pipeline's report (reports/NAME.html and its figures as SVG files) from the store alone.",
        discussion: """
            The page is self-contained (inline SVG, no script, no network): the summary \
            table, the training and validation loss, the public and private score of \
            every member and ensemble with the public split's standard error, the \
            agreement of the top five and the ensembles, and the answer distribution of \
            each member against the gold. In a workspace where no pipeline has run (one that \
            only imports), it reports the sets over the dataset most of them predict: their \
            scores, the agreement of the best five by public score and the ensembles, and \
            their answer distributions, as reports/workspace.html.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The pipeline's name (default: the last one run).")
    var name: String?

    func run() throws {
        let store = try options.openStore()
        let all = try store.pipelines()
        guard
            let pipeline = try name.map({ name in
                guard let found = try store.pipeline(named: name) else {
                    throw StoreError.notFound(
                        "no pipeline named \(name)\(nearestName(to: name, among: all.map(\.name)).map { " (did you mean \($0)?)" } ?? "")")
                }
                return found
            }) ?? all.first ?? PipelineReport.workspacePipeline(store: store)
        else {
            throw StoreError.notFound("nothing to report: no prediction sets yet (suneung import FILE --name NAME --dataset TEST.csv)")
        }
        try store.requireWritable()
        print("Report: \(store.workspace.relative(try PipelineReport.write(store: store, pipeline: pipeline)))")
    }
}
