/// The competition baseline's prompt, which every team started from (DESIGN.md).
/// Chat templates wrap it later, in the engine.
public struct Prompt: Sendable, Equatable {
    public static let baselineSystem = "지문을 읽고 질문의 답을 구하세요."

    public var system: String
    public var user: String

    public init(system: String, user: String) {
        self.system = system
        self.user = user
    }

    /// The baseline user message. The closing instruction names 1..5 even for a
    /// 4-choice item, exactly as the baseline did.
    public static func baseline(_ item: ExamItem) -> Prompt {
        let choices = item.choices.enumerated().map { "\($0.offset + 1) - \($0.element)" }.joined(separator: "\n")
        var user = "지문:\n\(item.paragraph)\n\n질문:\n\(item.question)\n\n"
        if let plus = item.questionPlus {
            user += "<보기>:\n\(plus)\n\n"
        }
        user += "선택지:\n\(choices)\n\n1, 2, 3, 4, 5 중에 하나를 정답으로 고르세요.\n정답:"
        return Prompt(system: baselineSystem, user: user)
    }
}
