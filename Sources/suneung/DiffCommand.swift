import ArgumentParser
import Exam
import Store

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "List the items on which two prediction sets answer differently, and their agreement rate."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The first set (NAME or NAME@vK).")
    var first: String

    @Argument(help: "The second set.")
    var second: String

    func run() throws {
        let store = try options.openStore()
        let a = try store.predictionSet(first), b = try store.predictionSet(second)
        let rowsA = try store.table(of: a).rows
        var answersB: [String: Int] = [:]
        for row in try store.table(of: b).rows { answersB[row.id] = row.answer }
        var table = TextTable([("item", .left), (a.ref.description, .right), (b.ref.description, .right)])
        var shared = 0
        for row in rowsA {
            guard let other = answersB[row.id] else { continue }
            shared += 1
            if other != row.answer { table.add([row.id, "\(row.answer)", "\(other)"]) }
        }
        guard shared > 0 else { throw StoreError.invalid("\(a.ref) and \(b.ref) share no item id (they are over different datasets)") }
        if !table.rows.isEmpty { print(table.rendered + "\n") }
        print("\(a.ref) and \(b.ref) agree on \(shared - table.rows.count) of \(shared) shared items (\(percent(shared - table.rows.count, of: shared))); \(table.rows.count) differ.")
    }
}
