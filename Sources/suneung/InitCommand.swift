import ArgumentParser
import Foundation
import Store
import Workflow

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the store (suneung.sqlite), the workspace folders and the sample config/*.yaml. Safe to run again.",
        discussion:
            """
            config/ gets competition.yaml (uploads a day, time zone), train.yaml, predict.yaml, ensemble.yaml and pipeline.yaml; a file \
            that is there is never overwritten.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The folder to make a workspace (default: the current folder).", valueName: "DIR"))
    var workspace: String = "."

    func run() throws {
        let workspace = Workspace.locate(explicit: self.workspace)
        let existed = FileManager.default.fileExists(atPath: workspace.databasePath)
        _ = try Store(workspace: workspace, create: true)
        var written: [String] = []
        for sample in SampleConfigs.files {
            let url = workspace.root.appendingPathComponent("config").appendingPathComponent(sample.name)
            // O_EXCL: two `init`s at once, or a file the team edited, are never overwritten.
            let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else { continue }
            let bytes = Array(sample.text.utf8)
            let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
            close(fd)
            guard ok else { throw ValidationError("cannot write \(url.path)") }
            written.append("config/\(sample.name)")
        }
        print(
            existed
                ? "Workspace \(workspace.root.path) is ready (the store was already there)."
                : "Created the workspace \(workspace.root.path): \(Workspace.databaseName) and \(Workspace.folders.joined(separator: "/, "))/."
        )
        if !written.isEmpty { print("Wrote \(written.joined(separator: ", ")).") }
    }
}
