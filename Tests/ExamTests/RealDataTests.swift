import Crypto
import Foundation
import XCTest

@testable import Exam

/// Checks against the competition's real files in ../shared/data, which CI has beside
/// the clone; skipped, with the reason printed, where they are absent.
final class RealDataTests: XCTestCase {
    static let sharedData = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/data")

    func realFile(_ name: String) throws -> URL {
        let url = Self.sharedData.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(url.path) is absent: the real competition data is not beside this checkout")
        }
        return url
    }

    func testRealFilesAreValid() throws {
        for (name, count) in [("train.csv", 1614), ("test.csv", 869)] {
            let exam = try ExamSet.load(path: try realFile(name).path)
            XCTAssertEqual(exam.items.count, count, name)
        }
    }

    /// Our parse of every `problems` value equals Python's `ast.literal_eval`, compared
    /// through digests made by scripts/reference/literal_eval_digests.py.
    func testProblemsParseAgreesWithPythonLiteralEval() throws {
        let fixture = Bundle.module.url(forResource: "Fixtures/literal_eval_digests", withExtension: "json")!
        let expected = try JSONDecoder().decode([String: [String: String]].self, from: Data(contentsOf: fixture))
        var compared = 0
        for name in ["train.csv", "test.csv"] {
            let records = try CSV.parse(Array(Data(contentsOf: try realFile(name))))
            let column = records[0].fields.firstIndex(of: "problems")!
            for record in records.dropFirst() {
                let id = record.fields[0]
                let json = canonicalJSON(try PythonLiteral.parse(record.fields[column]))
                let digest = SHA256.hash(data: Data(json.utf8)).map { String(format: "%02x", $0) }.joined().prefix(16)
                XCTAssertEqual(String(digest), expected[name]?[id], "\(name) \(id): \(json.prefix(200))")
                compared += 1
            }
            XCTAssertEqual(expected[name]?.count, records.count - 1, "\(name): the fixture and the file hold different items")
        }
        print("compared \(compared) items with Python's ast.literal_eval")
    }

    /// json.dumps(value, ensure_ascii=True, separators=(",", ":")).
    func canonicalJSON(_ value: PythonValue) -> String {
        switch value {
        case .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let n): return "\(n)"
        case .float(let x): return "\(x)"
        case .string(let s): return quoted(s)
        case .list(let items): return "[" + items.map(canonicalJSON).joined(separator: ",") + "]"
        case .dict(let entries):
            return "{"
                + entries.map { entry in
                    let key: String
                    if case .string(let s) = entry.key { key = quoted(s) } else { key = quoted(canonicalJSON(entry.key)) }
                    return key + ":" + canonicalJSON(entry.value)
                }.joined(separator: ",") + "}"
        }
    }

    func quoted(_ s: String) -> String {
        var out = "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(unit)!)
            default: out += String(format: "\\u%04x", unit)
            }
        }
        return out + "\""
    }
}
