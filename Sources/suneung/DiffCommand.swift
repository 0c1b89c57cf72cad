import ArgumentParser
import Exam
import Store
import Workflow

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "List the items on which two prediction sets answer differently, and their agreement rate.",
        discussion:
            """
            Compared over the item ids both sets have; rows are read through their recorded sha256. --summary prints the answer transition \
            matrix instead of the items (rows: the first set's answer, columns: the second's; `x` an answer kept verbatim).
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The first set (NAME or NAME@vK).")
    var first: String

    @Argument(help: "The second set.")
    var second: String

    @Flag(help: "The answer transition matrix instead of the differing items.")
    var summary = false

    @Option(help: "Output format.")
    var format: OutputFormat = .table

    func run() throws {
        let store = try options.openStore()
        let a = try store.predictionSet(first), b = try store.predictionSet(second)
        let diff = try SetDiff(a, b, store: store)
        let (shared, transitions) = (diff.shared, diff.transitions)
        let differing = diff.differing.map { (id: $0.item, a: $0.first, b: $0.second) }
        let labels = SetDiff.answerLabels
        switch format {
        case .csv:
            if summary {
                print(
                    CSV.write(
                        [["\(a.ref)", "\(b.ref)", "items"]]
                            + (0..<6).flatMap { i in
                                (0..<6).compactMap { j in transitions[i][j] > 0 ? [labels[i], labels[j], "\(transitions[i][j])"] : nil }
                            }), terminator: "")
            } else {
                print(CSV.write([["item", a.ref.description, b.ref.description]] + differing.map { [$0.id, $0.a, $0.b] }), terminator: "")
            }
        case .json:
            try printJSON(
                DiffResult(
                    first: a.ref.description, second: b.ref.description, shared: shared, agree: shared - differing.count,
                    differing: summary ? nil : differing.map { DiffResult.Item(item: $0.id, first: $0.a, second: $0.b) },
                    transitions: summary
                        ? Dictionary(
                            uniqueKeysWithValues: (0..<6).map { i in
                                (labels[i], Dictionary(uniqueKeysWithValues: (0..<6).map { j in (labels[j], transitions[i][j]) }))
                            }) : nil))
        case .table:
            if summary {
                let used = (0..<6).filter { i in (0..<6).contains { transitions[i][$0] + transitions[$0][i] > 0 } }
                var table = TextTable([("\(a.ref) \\ \(b.ref)", .left)] + used.map { (labels[$0], .right) } + [("all", .right)])
                for i in used { table.add([labels[i]] + used.map { "\(transitions[i][$0])" } + ["\(transitions[i].reduce(0, +))"]) }
                table.add(["all"] + used.map { j in "\((0..<6).reduce(0) { $0 + transitions[$1][j] })" } + ["\(shared)"])
                print(table.rendered + "\n")
            } else if !differing.isEmpty {
                var table = TextTable([("item", .left), (a.ref.description, .right), (b.ref.description, .right)])
                for item in differing { table.add([item.id, excerpt(item.a, limit: 12), excerpt(item.b, limit: 12)]) }
                print(table.rendered + "\n")
            }
            print(
                "\(a.ref) and \(b.ref) agree on \(shared - differing.count) of \(shared) shared items (\(percent(shared - differing.count, of: shared))); \(differing.count) differ."
            )
        }
    }
}

/// `diff --format json`.
struct DiffResult: Encodable {
    struct Item: Encodable {
        var item: String
        var first: String
        var second: String
    }

    var first: String
    var second: String
    var shared: Int
    var agree: Int
    var differing: [Item]?
    var transitions: [String: [String: Int]]?
}
