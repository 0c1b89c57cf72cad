import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every prediction set version with its dataset and latest scores (or, with --checkpoints, every training checkpoint)."
    )

    enum Sort: String, ExpressibleByArgument, CaseIterable { case `public`, local, created, name }
    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, json }

    @OptionGroup var options: WorkspaceOptions

    @Option(help: "Order: public or local (best first, unscored last), created (newest first), name.")
    var sort: Sort = .name

    @Option(help: "Output format.")
    var format: Format = .table

    @Option(help: ArgumentHelp("Items in the public leaderboard split (default: half the dataset's items, rounded down).", valueName: "N"))
    var publicItems: Int?

    @Flag(help: "List training checkpoints instead: run, step, epoch, losses, validation accuracy.")
    var checkpoints = false

    @Option(name: .customLong("run"), help: ArgumentHelp("With --checkpoints: only this training run's.", valueName: "RUN"))
    var trainingRun: String?

    func run() throws {
        if checkpoints || trainingRun != nil { return try listCheckpoints() }
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
            var table = TextTable([("set", .left), ("origin", .left), ("dataset", .left), ("items", .right), ("values", .left), ("public", .right), ("", .left), ("private", .right), ("local", .right), ("created", .left)])
            let marks = closeToBest(sets)
            for set in sets {
                var row = fields(set)
                row.insert(marks[set.id].map(\.mark) ?? "", at: 6)
                table.add(row)
            }
            print(table.rendered)
            for note in Set(marks.values.compactMap(\.note)).sorted() { print(note) }
        }
    }

    func listCheckpoints() throws {
        let store = try options.openStore()
        let all = try store.checkpoints(run: trainingRun)
        let header = ["checkpoint", "epoch", "train loss", "val loss", "val acc", "path", "created"]
        let rows = all.map { run, c in
            ["\(run.name)/step-\(c.step)", String(format: "%.2f", c.epoch), c.trainLoss.map { String(format: "%.4f", $0) } ?? "-",
             c.validationLoss.map { String(format: "%.4f", $0) } ?? "-", formatScore(c.validationAccuracy), c.path, timestamp(c.createdAt)]
        }
        switch format {
        case .csv: print(CSV.write([header] + rows), terminator: "")
        case .json:
            let objects = rows.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
            print(String(decoding: try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        case .table:
            guard !all.isEmpty else {
                print("No checkpoints yet: train with `suneung train --config config/train.yaml`.")
                return
            }
            var table = TextTable([("checkpoint", .left), ("epoch", .right), ("train loss", .right), ("val loss", .right), ("val acc", .right), ("path", .left), ("created", .left)])
            for row in rows { table.add(row) }
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

    /// Per dataset, the set with the best public score ("best") and those within one
    /// binomial standard error of it ("~"): the public split cannot tell them apart.
    func closeToBest(_ sets: [Store.SetSummary]) -> [Int64: (mark: String, note: String?)] {
        var marks: [Int64: (mark: String, note: String?)] = [:]
        for group in Dictionary(grouping: sets.filter { $0.public != nil }, by: \.datasetSha256).values {
            let best = group.max { ($0.public!, $0.createdAt) < ($1.public!, $1.createdAt) }!
            let n = publicItems ?? best.items / 2
            let error = standardError(accuracy: best.public!, items: n)
            let note = String(format: "~ within one standard error (%.3f, at %.4f on %d public items) of the best public score over dataset %@: the leaderboard cannot tell them apart.", error, best.public!, n, best.dataset)
            for set in group {
                if set.id == best.id {
                    marks[set.id] = ("best", nil)
                } else if best.public! - set.public! < error {
                    marks[set.id] = ("~", note)
                }
            }
        }
        return marks
    }

    func fields(_ set: Store.SetSummary) -> [String] {
        [set.ref, set.origin.rawValue, set.dataset, "\(set.items)", set.choiceValues?.rawValue ?? "-",
         formatScore(set.public), formatScore(set.private), formatScore(set.local), timestamp(set.createdAt)]
    }
}
