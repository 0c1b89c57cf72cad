import ArgumentParser
import Foundation
import Store

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a set's CSV, byte for byte as recorded: a submission's id,answer file, or any other set's canonical CSV."
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
        print("Wrote \(set.ref) to \(out).")
    }
}
