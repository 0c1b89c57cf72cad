import Engine
import Exam

extension Scorer {
    /// An item's prompt as every caller builds it (training, prediction, debiased
    /// passes): the baseline's text in the scorer's template, the passage cut to fit.
    /// Here because Training is the first module that sees both the scorer and the item.
    public func prompt(for item: ExamItem) throws -> Prompt {
        try prompt(passage: item.paragraph) { passage in
            var cut = item
            cut.paragraph = passage
            let baseline = Exam.Prompt.baseline(cut)
            return (baseline.system, baseline.user)
        }
    }
}
