import ArgumentParser
import Foundation
import Store

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a prediction set's canonical CSV, byte for byte as stored, to a file."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME, NAME@vK or a submission name.")
    var ref: String

    @Option(help: ArgumentHelp("Where to write the CSV.", valueName: "FILE"))
    var out: String

    func run() throws {
        let store = try options.openStore()
        let set = try store.predictionSet(ref)
        try writeAtomically(try store.canonicalCSV(of: set), to: URL(fileURLWithPath: out))
        print("Wrote \(set.ref) to \(out) (sha256 \(set.csvSha256.prefix(12))...).")
    }
}
