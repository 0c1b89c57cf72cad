import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store
import Workflow

struct SelectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Choose ensemble members by greedy forward selection with replacement on labelled items (Caruana et al., 2004).",
        discussion: """
            Each round adds the candidate (possibly one already chosen) that makes the \
            ensemble most accurate on the items the gold file labels; equal accuracies go \
            to the candidate more accurate alone, then the earlier one. A candidate picked \
            twice counts twice. Use it where the candidates' predictions cover labelled \
            items (a validation split imported with --subset, or a labelled copy of the test \
            set); selection runs on the labelled items every candidate covers. Content that \
            two names share is one candidate; hidden sets are left out. --name saves the \
            chosen multiset as an ensemble over the candidates' dataset (not from subsets).
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: ArgumentHelp("A labelled exam CSV.", valueName: "FILE"))
    var gold: String

    @Option(
        help: ArgumentHelp(
            "Candidate sets, comma-separated (default: every set that is not an ensemble, over one dataset).", valueName: "LIST"))
    var candidates: String?

    @Option(help: ArgumentHelp("Only sets over this exam CSV.", valueName: "TEST.csv"))
    var dataset: String?

    @Option(help: "Rounds of selection.")
    var rounds = 20

    @Option(help: "average or vote.")
    var method: Ensemble.Method = .average

    @Option(help: "Save the chosen multiset as this ensemble (and its submission CSV).")
    var name: String?

    @Option(help: ArgumentHelp("With --name: where to write the submission CSV (default: submissions/NAME.csv).", valueName: "FILE"))
    var out: String?

    @OptionGroup var notes: SetNotesOptions

    @OptionGroup var calibration: CalibrationOptions

    func validate() throws {
        do { try SelectionRequest.check(method: method) } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        let store = try options.openStore()
        var printer = EventPrinter()
        let request = SelectionRequest(
            candidates: candidates.map(commaList), datasetFile: dataset, gold: gold, rounds: rounds, method: method,
            calibration: calibration.calibrate, name: name, out: out.map { URL(fileURLWithPath: $0) }, notes: notes.notes,
            lineage: Lineage(commandLine: commandLineText, toolVersion: suneungVersion))
        let selection = try select(request, store: store) { printer.show($0) }
        if let fitted = selection.calibration {
            CalibrationOptions.printFits(fitted.fits, kind: fitted.kind, gold: gold, uncalibrated: fitted.uncalibrated)
        }
        let names = selection.candidates, alone = selection.accuracyAlone
        print(
            "Greedy selection (\(method.rawValue)) over \(names.count) candidates on \(selection.labelledItems) labelled items of dataset \(selection.dataset.shortHash)"
        )
        print("  best single candidate: \(names[selection.bestAlone]) at \(String(format: "%.4f", alone[selection.bestAlone]))")
        var table = TextTable([("round", .right), ("added", .left), ("accuracy", .right)])
        for (round, step) in selection.rounds.enumerated() {
            table.add(["\(round + 1)", names[step.added], String(format: "%.4f", step.accuracy)])
        }
        print(indent(table.rendered))

        let picks = selection.rounds.map(\.added)
        var multiset = TextTable([("set", .left), ("picks", .right), ("alone", .right)])
        for index in Set(picks).sorted(by: { (picks.firstIndex(of: $0)!) < (picks.firstIndex(of: $1)!) }) {
            multiset.add([names[index], "\(picks.filter { $0 == index }.count)", String(format: "%.4f", alone[index])])
        }
        print("\nChosen multiset\n" + indent(multiset.rendered))

        switch selection.saved {
        case (.created(let set), let file)?: print("\nSaved as \(set.ref); wrote \(store.workspace.relative(file)).")
        case (.identical(let set), let file)?: print("\nIdentical to \(set.ref); wrote \(store.workspace.relative(file)).")
        case nil: break
        }
    }
}
