import Foundation
import TestSupport
import XCTest

/// A `suneung serve` process on 127.0.0.1; `kill()` is a kill -9, `start()` again
/// binds the same port.
final class ServerProcess: @unchecked Sendable {
    let workspace: URL
    private(set) var port: Int
    private var process: Process?

    init(workspace: URL, port: Int = 0) {
        self.workspace = workspace
        self.port = port
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Starts the server and waits for its "Serving ... on http://127.0.0.1:PORT" line.
    func start() throws {
        let process = Process()
        process.executableURL = SuneungBinary.url
        process.arguments = ["serve", "--workspace", workspace.path, "--host", "127.0.0.1", "--port", "\(port)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        self.process = process
        var output = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            output += String(decoding: data, as: UTF8.self)
            if let range = output.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(output[range].split(separator: ":").last!)!
                // Keep draining its output so that it never blocks on a full pipe.
                pipe.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
                return
            }
        }
        process.terminate()
        throw NSError(domain: "ServerProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "suneung serve did not start:\n\(output)"])
    }

    /// kill -9: no shutdown, no cleanup.
    func kill() {
        guard let process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// SIGTERM, and the exit status after the graceful shutdown.
    func stop() -> Int32? {
        guard let process else { return nil }
        process.terminate()
        process.waitUntilExit()
        self.process = nil
        return process.terminationStatus
    }

    deinit { kill() }
}
