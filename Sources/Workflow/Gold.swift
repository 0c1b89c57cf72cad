import Exam
import Store

/// A labelled exam file given as the truth (`--gold`, a pipeline's `gold:`), loaded and
/// checked the one way, so every command refuses the same files with the same words.
public struct Gold: Sendable {
    public let path: String
    /// The labelled items, in file order.
    public let items: [ExamItem]
    /// The labelled items' answers, by id.
    public let answers: [String: Int]

    /// Reads `path`; refuses a file that labels no item (a test file given by mistake).
    public init(path: String) throws {
        self.path = path
        items = try ExamSet.load(path: path).items.filter { $0.answer != nil }
        guard !items.isEmpty else {
            throw StoreError.invalid("\(path) has no answers: a gold file needs the answer in every item's problems")
        }
        answers = ExamSet(items: items).answers
    }

    /// Those of `things` whose id this file labels; none is an error that names `what`
    /// they are (the file is probably another dataset's).
    public func labelled<T>(_ things: [T], id: (T) -> String, what: String) throws -> [T] {
        let kept = things.filter { answers[id($0)] != nil }
        guard !kept.isEmpty else { throw StoreError.invalid("\(path) labels none of \(what) (is it the gold file of another dataset?)") }
        return kept
    }
}
