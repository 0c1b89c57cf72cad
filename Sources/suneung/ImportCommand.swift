import ArgumentParser
import Exam
import Foundation
import Store

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store a prediction CSV made elsewhere (e.g. a GPU run) as a new version of a named set.",
        discussion: """
            FILE is `id,answer`, optionally with logit_1..logit_5 or prob_1..prob_5 (a 4-choice \
            item may leave the 5th empty). It is checked against the dataset: every id exactly \
            once and no other, answers within each item's choices, finite numbers. It becomes \
            NAME@v1, or NAME@v(k+1) when NAME exists with other content; the same content again \
            adds no version. The canonical CSV is written to predictions/NAME@vK.csv.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The prediction CSV.")
    var file: String

    @Option(help: "The prediction set's name (letters, digits, '.', '_', '-').")
    var name: String

    @Option(help: ArgumentHelp("The exam CSV the predictions are for (the test set).", valueName: "TEST.csv"))
    var dataset: String

    func run() throws {
        try SetRef.checkName(name)
        let store = try options.openStore()
        let datasetRecord = try store.dataset(file: dataset)
        let bytes = try readFile(file)
        let table = try PredictionTable.read(bytes: bytes, file: file, dataset: datasetRecord.shape)
        let lineage = Lineage(commandLine: commandLineText, toolVersion: Suneung.version, sourceFile: URL(fileURLWithPath: file).standardizedFileURL.path, sourceSha256: sha256Hex(bytes), datasetPath: datasetRecord.path)
        switch try store.addPredictionSet(name: name, dataset: datasetRecord, table: table, origin: .imported, lineage: lineage) {
        case .created(let set):
            let values = table.choiceValues.map { " with \($0.rawValue)" } ?? ""
            print("Imported \(set.ref): \(table.rows.count) items\(values), dataset \(datasetRecord.shortHash) -> \(store.workspace.relative(store.workspace.predictionFile(for: set.ref)))")
        case .identical(let set):
            print("No new version: \(file) has the same content as \(set.ref).")
        }
    }
}
