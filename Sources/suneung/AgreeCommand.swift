import ArgumentParser
import Ensemble
import Foundation
import Store

struct AgreeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agree",
        abstract: "How much prediction sets agree: pairwise agreement, Cohen's kappa, and agreement with the majority.",
        discussion: "Members that agree on nearly everything add little to an ensemble. The majority is the plain vote of all the sets shown, with the vote tie rule."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "Sets (NAME or NAME@vK); or use --top.")
    var refs: [String] = []

    @Option(help: ArgumentHelp("The K sets with the best public scores.", valueName: "K"))
    var top: Int?

    @Option(help: ArgumentHelp("With --top: only sets over this exam CSV.", valueName: "TEST.csv"))
    var dataset: String?

    func run() throws {
        let store = try options.openStore()
        let selection = MemberSelection(store: store)
        let sets: [PredictionSetRecord]
        switch (top, refs.isEmpty) {
        case (let k?, true): sets = try selection.top(k, datasetFile: dataset)
        case (nil, false): sets = try selection.named(refs)
        case (nil, true): throw ValidationError("name two or more sets, or use --top K")
        default: throw ValidationError("name sets or use --top, not both")
        }
        guard sets.count >= 2 else { throw StoreError.invalid("agreement needs at least two sets") }
        let (datasetRecord, members) = try selection.members(sets)

        print("Sets over dataset \(datasetRecord.shortHash) (\(datasetRecord.itemCount) items):")
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

        let majority = try combine(members, choiceCounts: datasetRecord.choiceCounts, method: .vote, weights: Array(repeating: 1, count: members.count))
        var withMajority = TextTable([("#", .right), ("set", .left), ("agrees with majority", .right)])
        for (index, member) in members.enumerated() {
            withMajority.add(["\(index + 1)", member.name, String(format: "%.3f", agreement(member.answers, majority.answers))])
        }
        print("\nAgreement with the majority vote of these \(members.count) sets\n" + indent(withMajority.rendered))
    }
}
