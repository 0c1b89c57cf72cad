import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store
import Workflow

struct AgreeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agree",
        abstract: "How much prediction sets agree: pairwise agreement, Cohen's kappa, and agreement with the majority.",
        discussion:
            """
            Members that agree on nearly everything add little to an ensemble. The majority is the plain vote of all the sets shown, with \
            the vote tie rule. --top counts content two names share once; subsets are compared on the items all the sets cover.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "Sets (NAME or NAME@vK); or use --top.")
    var refs: [String] = []

    @OptionGroup var top: TopOptions

    @Option(help: "Output format.")
    var format: OutputFormat = .table

    @Option(help: ArgumentHelp("With --top: only sets over this exam CSV.", valueName: "TEST.csv"))
    var dataset: String?

    func run() throws {
        let store = try options.openStore()
        let selection = MemberSelection(store: store)
        let sets: [PredictionSetRecord]
        switch (top.top, refs.isEmpty) {
        case (let k?, true): sets = try top.choose(k, store: store, datasetFile: dataset, sayCopies: format == .table)
        case (nil, false): sets = try selection.named(refs)
        case (nil, true): throw ValidationError("name two or more sets, or use --top K")
        default: throw ValidationError("name sets or use --top, not both")
        }
        let matrix = try AgreementMatrix(sets, store: store)
        let n = matrix.sets.count
        if format != .table {
            let pairs = (0..<n).flatMap { i in (0..<n).filter { $0 != i }.map { j in (i, j) } }
            if format == .csv {
                print(
                    CSV.write(
                        [["set", "other", "agreement", "kappa", "agrees_with_majority"]]
                            + pairs.map { i, j in
                                [
                                    matrix.sets[i], matrix.sets[j], "\(matrix.agreement[i][j])", matrix.kappa[i][j].map { "\($0)" } ?? "",
                                    "\(matrix.withMajority[i])"
                                ]
                            }), terminator: "")
            } else {
                try printJSON(
                    pairs.map { i, j in
                        AgreementRow(
                            set: matrix.sets[i], other: matrix.sets[j], agreement: matrix.agreement[i][j], kappa: matrix.kappa[i][j],
                            agreesWithMajority: matrix.withMajority[i], items: matrix.items)
                    })
            }
            return
        }
        let dataset = try store.dataset(id: sets[0].datasetId)
        print(
            "Sets over dataset \(dataset.shortHash) (\(matrix.items == dataset.itemCount ? "\(matrix.items) items" : "\(matrix.items) of its \(dataset.itemCount) items, covered by all"):"
        )
        var legend = TextTable([("#", .right), ("set", .left), ("public", .right)])
        for index in 0..<n { legend.add(["\(index + 1)", matrix.sets[index], formatScore(matrix.publicScores[index])]) }
        print(indent(legend.rendered))

        func show(_ title: String, _ value: (Int, Int) -> Double?) {
            var table = TextTable([("", .right)] + (0..<n).map { ("#\($0 + 1)", .right) })
            for i in 0..<n {
                table.add(["#\(i + 1)"] + (0..<n).map { j in i == j ? "-" : value(i, j).map { String(format: "%.3f", $0) } ?? "n/a" })
            }
            print("\n\(title)\n" + indent(table.rendered))
        }
        show("Agreement (share of items with the same answer)") { matrix.agreement[$0][$1] }
        show("Cohen's kappa (agreement beyond chance; n/a when undefined)") { matrix.kappa[$0][$1] }

        var withMajority = TextTable([("#", .right), ("set", .left), ("agrees with majority", .right)])
        for index in 0..<n { withMajority.add(["\(index + 1)", matrix.sets[index], String(format: "%.3f", matrix.withMajority[index])]) }
        print("\nAgreement with the majority vote of these \(n) sets\n" + indent(withMajority.rendered))
    }
}

/// One pair of `agree --format json`: kappa is null where it is undefined.
struct AgreementRow: Encodable {
    var set: String
    var other: String
    var agreement: Double
    var kappa: Double?
    var agreesWithMajority: Double
    var items: Int

    enum CodingKeys: String, CodingKey { case set, other, agreement, kappa, agreesWithMajority, items }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(set, forKey: .set)
        try c.encode(other, forKey: .other)
        try c.encode(agreement, forKey: .agreement)
        try c.encode(kappa, forKey: .kappa)
        try c.encode(agreesWithMajority, forKey: .agreesWithMajority)
        try c.encode(items, forKey: .items)
    }
}
