import ArgumentParser
import Foundation
import Store

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the store (suneung.sqlite) and the workspace folders. Safe to run again."
    )

    @Option(name: .long, help: ArgumentHelp("The folder to make a workspace (default: the current folder).", valueName: "DIR"))
    var workspace: String = "."

    func run() throws {
        let workspace = Workspace.locate(explicit: self.workspace)
        let existed = FileManager.default.fileExists(atPath: workspace.databasePath)
        _ = try Store(workspace: workspace, create: true)
        print(existed ? "Workspace \(workspace.root.path) is ready (the store was already there)." : "Created the workspace \(workspace.root.path): \(Workspace.databaseName) and \(Workspace.folders.joined(separator: "/, "))/.")
    }
}
