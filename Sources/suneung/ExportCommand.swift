import ArgumentParser
import Exam
import Foundation
import Store

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a set's CSV, byte for byte as recorded: a submission's id,answer file, or any other set's canonical CSV.",
        discussion: """
            The file is written through a temporary file and a rename, never onto the store, \
            its WAL, a file in predictions/ or checkpoints/, a dataset's exam file or another \
            set's submission. A subset (`import --subset`) is never exported. It says when the \
            answers equal another set's or an uploaded submission's.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME, NAME@vK or a submission name.")
    var ref: String

    @Option(help: ArgumentHelp("Where to write the CSV.", valueName: "FILE"))
    var out: String

    func run() throws {
        let store = try options.openStore()
        let set = try store.predictionSet(ref)
        try store.export(set, to: URL(fileURLWithPath: out))
        print("Wrote \(set.ref) to \(excerpt(out, limit: 1000)).")
        warnIfAnswered(try store.table(of: set), dataset: try store.dataset(id: set.datasetId), store: store, except: set.name)
    }
}
