import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store
import Workflow

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Is A really more accurate than B? Accuracies on labelled items, the exact McNemar test, and a bootstrap interval.",
        discussion:
            """
            Compares over the items both sets predict and the gold file labels. The McNemar p-value is exact (binomial on the items \
            exactly one set gets right); the interval is the 95% percentile bootstrap of accuracy(A) − accuracy(B) over 10,000 resamples \
            with a fixed seed.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The first set.")
    var first: String

    @Argument(help: "The second set.")
    var second: String

    @Option(help: ArgumentHelp("A labelled exam CSV.", valueName: "FILE"))
    var gold: String

    func run() throws {
        let store = try options.openStore()
        let a = try store.predictionSet(first), b = try store.predictionSet(second)
        let goldAnswers = try Gold(path: gold).answers
        var answersB: [String: Int] = [:]
        for row in try store.table(of: b).rows { answersB[row.id] = row.answer }
        var correctA: [Bool] = [], correctB: [Bool] = []
        for row in try store.table(of: a).rows {
            guard let truth = goldAnswers[row.id], let other = answersB[row.id] else { continue }
            correctA.append(row.answer == truth)
            correctB.append(other == truth)
        }
        guard !correctA.isEmpty else {
            throw StoreError.invalid("no item is predicted by both \(a.ref) and \(b.ref) and labelled in \(gold)")
        }
        let n = Double(correctA.count)
        let accuracyA = Double(correctA.filter { $0 }.count) / n, accuracyB = Double(correctB.filter { $0 }.count) / n
        let onlyA = zip(correctA, correctB).filter { $0 && !$1 }.count, onlyB = zip(correctA, correctB).filter { !$0 && $1 }.count
        let interval = bootstrapDifferenceInterval(correctA: correctA, correctB: correctB)
        var table = TextTable([("", .left), ("", .left)])
        table.showsHeader = false
        table.add(["items", "\(correctA.count) labelled items predicted by both"])
        table.add([a.ref.description, String(format: "%.4f", accuracyA)])
        table.add([b.ref.description, String(format: "%.4f", accuracyB)])
        table.add([
            "difference",
            String(format: "%+.4f  (95%% bootstrap interval %+.4f to %+.4f)", accuracyA - accuracyB, interval.low, interval.high)
        ])
        table.add(["discordant", "\(onlyA) only \(a.ref) right, \(onlyB) only \(b.ref) right"])
        table.add(["McNemar exact p", String(format: "%.4g", mcNemarExactPValue(onlyA: onlyA, onlyB: onlyB))])
        print(table.rendered)
        let significant = interval.low > 0 || interval.high < 0
        print(
            significant
                ? "The difference is unlikely to be chance (the interval excludes 0)."
                : "The difference could be chance (the interval includes 0).")
    }
}
