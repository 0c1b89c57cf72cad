import ArgumentParser
import Exam
import Foundation
import Store
import Workflow

struct BiasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bias",
        abstract: "Position bias: how each set's answers spread over the choice positions, against the gold and a labelled file's prior.",
        discussion: """
            Per number of choices (4 and 5): the share of each answer position; the gold's \
            over the same items (--gold) and a labelled file's prior (--prior, e.g. the train \
            set: 47% of its answers are 1); Pearson's chi-square against the gold if given, \
            else the prior, else uniform shares, with its p-value; per position the recall \
            (accuracy on the items whose gold is that position) and, for sets with values, \
            the mean probability the set gives it (its own prior). A set is flagged when its \
            most frequent answer takes more than twice its share in the reference. Language \
            models prefer option positions (Zheng et al., ICLR 2024); this shows how much.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "Sets (NAME or NAME@vK).")
    var refs: [String]

    @Option(help: ArgumentHelp("A labelled exam CSV over the sets' items: their gold answers.", valueName: "FILE"))
    var gold: String?

    @Option(
        help: ArgumentHelp("A labelled exam CSV whose answer distribution is the prior (e.g. the train set).", valueName: "LABELLED.csv"))
    var prior: String?

    @Option(help: "Output format.")
    var format: OutputFormat = .table

    func validate() throws {
        if refs.isEmpty { throw ValidationError("name one or more sets") }
    }

    func run() throws {
        let store = try options.openStore()
        let goldAnswers = try gold.map { try ExamSet.load(path: $0).answers }
        let priorShares = try prior.map { answerPrior(try ExamSet.load(path: $0).items) }
        let reports = try refs.map { ref -> PositionBias in
            let set = try store.predictionSet(ref)
            return positionBias(
                of: set, table: try store.checkedTable(of: set), dataset: try store.dataset(id: set.datasetId), gold: goldAnswers,
                prior: priorShares)
        }
        switch format {
        case .json:
            try printJSON(reports)
        case .csv:
            var rows = [
                [
                    "set", "choices", "position", "answers", "share", "gold", "prior_share", "recall", "mean_probability",
                    "chi_square_against", "chi_square", "df", "p_value"
                ]
            ]
            for report in reports {
                for group in report.groups {
                    let valid = max(1, group.answers.reduce(0, +))
                    for c in 0..<group.choices {
                        rows.append([
                            report.set, "\(group.choices)", "\(c + 1)", "\(group.answers[c])",
                            "\(Double(group.answers[c]) / Double(valid))",
                            group.gold.map { "\($0[c])" } ?? "", group.prior.map { "\($0[c])" } ?? "",
                            group.recall.flatMap { $0[c] }.map { "\($0)" } ?? "", group.meanProbability.map { "\($0[c])" } ?? "",
                            group.chiSquare?.against ?? "", group.chiSquare.map { "\($0.statistic)" } ?? "",
                            group.chiSquare.map { "\($0.degreesOfFreedom)" } ?? "", group.chiSquare.map { "\($0.pValue)" } ?? ""
                        ])
                    }
                }
            }
            print(CSV.write(rows), terminator: "")
        case .table:
            for (index, report) in reports.enumerated() {
                if index > 0 { print("") }
                print(report.set + (report.flagged ? "  (biased: its most frequent answer takes more than twice its reference share)" : ""))
                for group in report.groups {
                    let valid = max(1, group.answers.reduce(0, +))
                    var table = TextTable(
                        [("\(group.choices) choices, \(group.items) item\(group.items == 1 ? "" : "s")", .left)]
                            + (1...group.choices).map { ("\($0)", .right) } + [("invalid", .right)])
                    table.add(["answers"] + group.answers.map { percent($0, of: valid) } + ["\(group.invalid)"])
                    if let counts = group.gold {
                        let total = counts.reduce(0, +)
                        table.add(["gold (\(total) labelled)"] + counts.map { percent($0, of: total) } + [""])
                    }
                    if let shares = group.prior { table.add(["prior"] + shares.map { String(format: "%.1f%%", 100 * $0) } + [""]) }
                    if let recall = group.recall {
                        table.add(["recall"] + recall.map { $0.map { String(format: "%.3f", $0) } ?? "-" } + [""])
                    }
                    if let mean = group.meanProbability { table.add(["mean probability"] + mean.map { String(format: "%.3f", $0) } + [""]) }
                    print(indent(table.rendered))
                    if let test = group.chiSquare {
                        print(
                            "  chi-square against the \(test.against): \(String(format: "%.2f", test.statistic)) (df \(test.degreesOfFreedom)), p = \(String(format: "%.3g", test.pValue))"
                        )
                    }
                }
            }
        }
    }
}
