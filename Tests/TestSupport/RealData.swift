import Crypto
import Foundation
import XCTest

/// The competition's real files, in ../shared/data beside the checkout; tests that need
/// them skip, saying so, where they are absent.
public enum RealData {
    public static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data")

    /// The path of a real file, checked to be the one a fixture was made from.
    public static func path(_ name: String, sha256 expected: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        guard let bytes = FileManager.default.contents(atPath: url.path) else {
            throw XCTSkip("\(url.path) is absent: the real items are not beside this checkout")
        }
        let actual = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        guard actual == expected else {
            throw RealDataMismatch(description: "\(url.path) has sha256 \(actual), the fixture was made from \(expected): regenerate it")
        }
        return url.path
    }

    struct RealDataMismatch: Error, CustomStringConvertible { var description: String }
}
