import ArgumentParser
import Exam
import Foundation
import Store
import Workflow

extension InvalidAnswerRule: ExpressibleByArgument {}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store prediction CSVs made elsewhere (e.g. GPU runs) as new versions of named sets.",
        discussion: """
            A FILE holds `id,answer`, and optionally per-choice values: logit_1..logit_5 or \
            prob_1..prob_5 (a 4-choice item may leave the 5th empty), or one `logits`/`probs` \
            column holding a JSON or Python list. Comma- or tab-separated, header names in any \
            case, spaces around values and `1.0` for 1 are fine; other columns are ignored (and \
            named). Every id of the dataset exactly once and no other (with --subset, any part \
            of it), answers within each item's choices, finite numbers: every bad row is \
            reported, and a refused import stores nothing.

            Each file becomes NAME@v1, or NAME@v(k+1) when NAME exists with other content; the \
            same content again adds no version. A name belongs to one kind of set: an import \
            cannot add a version under an ensemble's or a prediction run's name. Content equal \
            to another name's version is stored but said, and counted once by --top, agree and \
            select. Where the answer column and the arg-max of the values disagree, the answer \
            votes and the values average; the count is printed and kept in the lineage.
            With several FILEs, each is named after its file (`qwen ep2.csv` -> qwen-ep2).
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The prediction CSV(s).")
    var files: [String]

    @Option(help: "The prediction set's name (letters, digits, '.', '_', '-'; at most 100). Default: the file's name.")
    var name: String?

    @Option(
        help: ArgumentHelp(
            "The exam CSV the predictions are for (the test set, or the labelled file a --subset covers).", valueName: "TEST.csv"))
    var dataset: String

    @Option(
        help: ArgumentHelp(
            """
            Answers that are not one of the item's choices (`정`, 5 on a 4-choice item): refuse the file, or as-wrong: store it as \
            uploaded, those answers kept verbatim, counted wrong in local scores and abstaining in votes and averages.
            """,
            valueName: "refuse|as-wrong"))
    var invalid: InvalidAnswerRule = .refuse

    @Flag(
        help:
            """
            The file covers part of the dataset (validation or train predictions): it can be scored, compared and selected, never exported \
            as a submission.
            """
    )
    var subset = false

    @OptionGroup var notes: SetNotesOptions

    func validate() throws {
        if files.isEmpty { throw ValidationError("give the prediction CSV(s) to import") }
        if name != nil && files.count > 1 {
            throw ValidationError("--name names one file; with several files each is named after its file")
        }
    }

    func run() throws {
        let requests = files.map { ImportRequest(file: $0, name: name ?? ImportRequest.name(fromFile: $0)) }
        let store = try options.openStore()
        let lineage = Lineage(commandLine: commandLineText, toolVersion: suneungVersion)
        let reports = try importPredictions(
            requests, datasetFile: dataset, options: PredictionFileOptions(invalidAnswers: invalid, subset: subset), notes: notes.notes,
            lineage: lineage, store: store)
        for report in reports {
            let table = report.reading.table
            switch report.outcome {
            case .created(let set):
                let values = table.choiceValues.map { " with \($0.rawValue)" } ?? ""
                let coverage =
                    table.rows.count < report.dataset.itemCount
                    ? "\(table.rows.count) of \(report.dataset.itemCount) items (subset)" : "\(table.rows.count) items"
                print(
                    "Imported \(set.ref): \(coverage)\(values), dataset \(report.dataset.shortHash) -> \(store.workspace.relative(store.workspace.predictionFile(for: set.ref)))"
                )
            case .identical(let set):
                print("No new version: \(report.request.file) has the same content as \(set.ref).")
            }
            if report.reading.invalidAnswers > 0 {
                print(
                    "  \(report.reading.invalidAnswers) answer\(report.reading.invalidAnswers == 1 ? " is" : "s are") not a choice, kept as uploaded: wrong in local scores, abstaining in ensembles."
                )
            }
            if !report.reading.ignoredColumns.isEmpty {
                print(
                    "  Ignored column\(report.reading.ignoredColumns.count == 1 ? "" : "s"): \(report.reading.ignoredColumns.map { excerpt($0, limit: 40) }.joined(separator: ", "))."
                )
            }
            if report.reading.valuesPastChoices > 0 {
                print(
                    "  On \(report.reading.valuesPastChoices) item\(report.reading.valuesPastChoices == 1 ? "" : "s") a value past the item's choices (a 5th value on a 4-choice item) was ignored."
                )
            }
            if report.reading.argmaxDisagreements > 0 {
                print(
                    "  On \(report.reading.argmaxDisagreements) item\(report.reading.argmaxDisagreements == 1 ? "" : "s") the answer is not the arg-max of the \(table.choiceValues!.rawValue): the answer votes, the values average."
                )
            }
            if !report.sameContent.isEmpty {
                print(
                    "  Same answers and values as \(report.sameContent.map(\.ref.description).joined(separator: ", ")): counted once by --top, agree and select."
                )
            }
        }
    }
}
