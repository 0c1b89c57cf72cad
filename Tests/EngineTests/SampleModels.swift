import Exam
import Foundation
import GGUF
import TestSupport
import Tokenizer

@testable import Engine

/// A default model with its tokenizer, and the sample items' prompts in its template:
/// what the reference tests compare.
struct SampleModel {
    static let items: [String: ExamItem] = {
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("data/sample/test.csv")
        return Dictionary(uniqueKeysWithValues: try! ExamSet.load(path: sample.path).items.map { ($0.id, $0) })
    }()

    let model: Model
    let tokenizer: Tokenizer
    let template: ChatTemplate

    init(_ name: String, template: String, precision: Precision = .f32) throws {
        let file = try GGUFFile(path: try DefaultModels.path(name))
        model = try Model(file: file, precision: precision)
        tokenizer = try Tokenizer(gguf: file)
        guard let template = ChatTemplate(rawValue: template) else { throw EngineError(message: "unknown template \(template)") }
        self.template = template
    }

    /// The tokens of a sample item's baseline prompt in the model's template.
    func tokens(item id: String) throws -> [Int32] {
        guard let item = Self.items[id] else { throw EngineError(message: "no sample item \(id)") }
        return tokens(item)
    }

    /// The tokens of an item's baseline prompt in the model's template.
    func tokens(_ item: ExamItem) -> [Int32] {
        let prompt = Prompt.baseline(item)
        return tokenizer.encode(template.render(system: prompt.system, user: prompt.user))
    }
}
