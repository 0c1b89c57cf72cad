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
        discussion: "Members that agree on nearly everything add little to an ensemble. The majority is the plain vote of all the sets shown, with the vote tie rule. --top counts content two names share once; subsets are compared on the items all the sets cover."
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
        guard sets.count >= 2 else { throw StoreError.invalid("agreement needs at least two sets") }
        let (datasetRecord, all, covered) = try selection.members(sets, allowSubsets: true)
        guard !covered.isEmpty else { throw StoreError.invalid("the sets share no item (subsets of different parts of the dataset)") }
        let members = restrict(all, to: covered)
        let choiceCounts = covered.map { datasetRecord.choiceCounts[$0] }
        let majority = try combine(members, choiceCounts: choiceCounts, method: .vote, weights: Array(repeating: 1, count: members.count))
        if format != .table {
            let pairs = members.indices.flatMap { i in members.indices.filter { $0 != i }.map { j in (i, j) } }
            let header = ["set", "other", "agreement", "kappa", "agrees_with_majority"]
            let rows = pairs.map { i, j -> [String] in
                let kappa = cohensKappa(members[i].answers, members[j].answers)
                return [members[i].name, members[j].name, "\(agreement(members[i].answers, members[j].answers))", kappa.isNaN ? "" : "\(kappa)", "\(agreement(members[i].answers, majority.answers))"]
            }
            if format == .csv {
                print(CSV.write([header] + rows), terminator: "")
            } else {
                try printJSON(rows.map { row in AgreementRow(set: row[0], other: row[1], agreement: Double(row[2])!, kappa: Double(row[3]), agreesWithMajority: Double(row[4])!, items: covered.count) })
            }
            return
        }

        print("Sets over dataset \(datasetRecord.shortHash) (\(covered.count == datasetRecord.itemCount ? "\(covered.count) items" : "\(covered.count) of its \(datasetRecord.itemCount) items, covered by all"):")
        var legend = TextTable([("#", .right), ("set", .left), ("public", .right)])
        for (index, member) in members.enumerated() { legend.add(["\(index + 1)", member.name, formatScore(member.publicScore)]) }
        print(indent(legend.rendered))

        func matrix(_ title: String, _ value: (Member, Member) -> Double) {
            var table = TextTable([("", .right)] + members.indices.map { ("#\($0 + 1)", .right) })
            for (i, a) in members.enumerated() {
                table.add(["#\(i + 1)"] + members.indices.map { j in
                    let v = value(a, members[j])
                    return i == j ? "-" : (v.isNaN ? "n/a" : String(format: "%.3f", v))
                })
            }
            print("\n\(title)\n" + indent(table.rendered))
        }
        matrix("Agreement (share of items with the same answer)") { agreement($0.answers, $1.answers) }
        matrix("Cohen's kappa (agreement beyond chance; n/a when undefined)") { cohensKappa($0.answers, $1.answers) }

        var withMajority = TextTable([("#", .right), ("set", .left), ("agrees with majority", .right)])
        for (index, member) in members.enumerated() {
            withMajority.add(["\(index + 1)", member.name, String(format: "%.3f", agreement(member.answers, majority.answers))])
        }
        print("\nAgreement with the majority vote of these \(members.count) sets\n" + indent(withMajority.rendered))
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
