import Foundation
import XCTest

/// The built `suneung` binary, run as a user runs it: the one helper every test target
/// that starts it uses.
public enum SuneungBinary {
    /// `suneung` beside the test bundle (the products it was built with).
    public static let url: URL = {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        while !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("suneung").path), folder.path != "/" {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("suneung")
    }()

    /// `suneung ARGS`, not started, its output discarded: for tests that kill it or run
    /// several at once.
    public static func process(_ arguments: [String], in directory: URL? = nil) -> Process {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    /// Runs `suneung ARGS` to the end: its status and its output (stdout and stderr
    /// interleaved, as a terminal shows them). A status other than `expect` fails the
    /// test, with the output; nil expects nothing.
    @discardableResult
    public static func run(
        _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:], expect: Int32? = 0,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> (status: Int32, output: String) {
        let process = process(arguments, in: directory)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        if let expect {
            XCTAssertEqual(
                process.terminationStatus, expect, "suneung \(arguments.joined(separator: " ")):\n\(output)", file: file, line: line)
        }
        return (process.terminationStatus, output)
    }
}
