import ArgumentParser
import Exam
import Foundation
import Store

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every prediction set version with its dataset and latest scores."
    )

    enum Sort: String, ExpressibleByArgument, CaseIterable { case `public`, local, created, name }
    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, json }

    @OptionGroup var options: WorkspaceOptions

    @Option(help: "Order: public or local (best first, unscored last), created (newest first), name.")
    var sort: Sort = .name

    @Option(help: "Output format.")
    var format: Format = .table

    func run() throws {
        var sets = try options.openStore().summaries()
        switch sort {
        case .name: break  // the store returns name, then version
        case .created: sets.sort { ($0.createdAt, $0.version) > ($1.createdAt, $1.version) }
        case .public: sets.sort(by: best(\.public))
        case .local: sets.sort(by: best(\.local))
        }
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(sets), as: UTF8.self))
        case .csv:
            print(CSV.write([["set", "origin", "dataset", "items", "values", "public", "private", "local", "created"]] + sets.map(fields)), terminator: "")
        case .table:
            guard !sets.isEmpty else {
                print("No prediction sets yet: add one with `suneung import FILE --name NAME --dataset TEST.csv`.")
                return
            }
            var table = TextTable([("set", .left), ("origin", .left), ("dataset", .left), ("items", .right), ("values", .left), ("public", .right), ("private", .right), ("local", .right), ("created", .left)])
            for set in sets { table.add(fields(set)) }
            print(table.rendered)
        }
    }

    /// Higher score first; sets without that score last, newest first among equals.
    func best(_ score: KeyPath<Store.SetSummary, Double?>) -> (Store.SetSummary, Store.SetSummary) -> Bool {
        { a, b in
            switch (a[keyPath: score], b[keyPath: score]) {
            case let (x?, y?) where x != y: x > y
            case (_?, nil): true
            case (nil, _?): false
            default: a.createdAt > b.createdAt
            }
        }
    }

    func fields(_ set: Store.SetSummary) -> [String] {
        [set.ref, set.origin.rawValue, set.dataset, "\(set.items)", set.choiceValues?.rawValue ?? "-",
         formatScore(set.public), formatScore(set.private), formatScore(set.local), timestamp(set.createdAt)]
    }
}
