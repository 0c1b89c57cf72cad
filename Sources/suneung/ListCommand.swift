import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store
import TeamClient
import Workflow

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract:
            "List every prediction set version with its dataset and latest scores (or, with --checkpoints, every training checkpoint).",
        discussion: """
            Marks the best public score per dataset (`best`) and the sets within one binomial \
            standard error of it (`~`): the public split cannot tell them apart. Hidden sets \
            (`suneung hide`) are left out unless --all. A set whose file in predictions/ is \
            missing or changed is reported (`suneung fsck` rebuilds it).
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: "Order: public, private or local (best first, unscored last), created (newest first), name.")
    var sort: LeaderboardOrder = .name

    @OptionGroup var top: TopOptions

    @Option(help: ArgumentHelp("Only sets with this tag.", valueName: "TAG"))
    var tag: String?

    @Option(help: ArgumentHelp("Only sets by this author.", valueName: "NAME"))
    var author: String?

    @Flag(help: "Include hidden sets.")
    var all = false

    @Option(
        help: ArgumentHelp(
            "A labelled exam CSV whose answer distribution is the prior for the bias flag (default: uniform shares).",
            valueName: "LABELLED.csv"))
    var prior: String?

    @Option(help: "Output format (csv: empty where missing; json: null where missing; both at full precision).")
    var format: OutputFormat = .table

    @Option(help: ArgumentHelp("Items in the public leaderboard split (default: half the dataset's items, rounded down).", valueName: "N"))
    var publicItems: Int?

    @Flag(help: "List training checkpoints instead: run, step, epoch, losses, validation accuracy.")
    var checkpoints = false

    @Option(name: .customLong("run"), help: ArgumentHelp("With --checkpoints: only this training run's.", valueName: "RUN"))
    var trainingRun: String?

    @OptionGroup var remote: RemoteOptions

    func run() throws {
        if checkpoints || trainingRun != nil { return try listCheckpoints() }
        // On a server: its sets, without the local file checks.
        let store = remote.remote == nil ? try options.openStore() : nil
        let everything = try remote.remote.map { try options.client($0).sets(all: true) } ?? store!.summaries()
        // A set whose favourite answer takes more than twice its share in the prior.
        let reference = try prior.map { answerPrior(try ExamSet.load(path: $0).items) } ?? [:]
        let ranked = try top.top.map { k in
            guard let store else { throw ValidationError("--top runs on the local store (pull first: `suneung pull`)") }
            return try top.choose(k, store: store, datasetFile: nil, includeHidden: all, sayCopies: false).map { $0.id! }
        }
        let board = Leaderboard(
            everything, filter: LeaderboardFilter(includeHidden: all, tag: tag, author: author), order: sort, ranked: ranked,
            prior: reference, publicItems: publicItems)
        let sets = board.sets, biased = board.biased
        let fileProblems = Dictionary(uniqueKeysWithValues: sets.compactMap { set in store?.fileProblem(set).map { (set.id, $0) } })
        switch format {
        case .json:
            try printJSON(sets.map { Listed(set: $0, file: fileProblems[$0.id], biased: biased.contains($0.id)) })
        case .csv:
            print(
                CSV.write(
                    [
                        [
                            "set", "origin", "dataset", "items", "rows", "values", "public", "private", "local", "author", "tags", "hidden",
                            "invalid_answers", "biased", "note", "created", "file"
                        ]
                    ]
                        + sets.map { set in
                            [
                                set.ref, set.origin.rawValue, set.dataset, "\(set.items)", "\(set.rows)", set.choiceValues?.rawValue ?? "",
                                csvNumber(set.public), csvNumber(set.private), csvNumber(set.local),
                                set.author ?? "", set.tags.joined(separator: " "), set.hidden ? "true" : "false", "\(set.invalidAnswers)",
                                biased.contains(set.id) ? "true" : "false", set.note ?? "", iso8601(set.createdAt),
                                fileProblems[set.id] ?? "ok"
                            ]
                        }), terminator: "")
        case .table:
            guard !sets.isEmpty else {
                print(
                    all || tag != nil || author != nil
                        ? "No prediction set matches."
                        : "No prediction sets yet: add one with `suneung import FILE --name NAME --dataset TEST.csv`.")
                return
            }
            var table = TextTable([
                ("set", .left), ("origin", .left), ("dataset", .left), ("items", .right), ("values", .left), ("public", .right),
                ("", .left), ("private", .right), ("local", .right), ("author", .left), ("tags", .left), ("created", .left)
            ])
            let marks = closeToBest(board)
            for set in sets {
                var flags: [String] = []
                if set.hidden { flags.append("hidden") }
                if set.invalidAnswers > 0 { flags.append("\(set.invalidAnswers) invalid") }
                if biased.contains(set.id) { flags.append("biased") }
                if let problem = fileProblems[set.id] { flags.append("file \(problem)") }
                let items = set.subset ? "\(set.rows)/\(set.items)" : "\(set.items)"
                table.add([
                    set.ref + (flags.isEmpty ? "" : " (" + flags.joined(separator: ", ") + ")"), set.origin.rawValue, set.dataset, items,
                    set.choiceValues?.rawValue ?? "-",
                    formatScore(set.public), marks[set.id].map(\.mark) ?? "", formatScore(set.private), formatScore(set.local),
                    excerpt(set.author ?? "", limit: 24), set.tags.joined(separator: ","), timestamp(set.createdAt)
                ])
            }
            print(table.rendered)
            for note in Set(marks.values.compactMap(\.note)).sorted() { print(note) }
            if !biased.isEmpty {
                print(
                    "biased: the set's most frequent answer takes more than twice its share \(prior == nil ? "of uniform choices (--prior LABELLED.csv compares with a labelled file)" : "in \(prior!)"); `suneung bias SET` shows the distribution."
                )
            }
            if !fileProblems.isEmpty {
                print(
                    "\(fileProblems.count) set\(fileProblems.count == 1 ? " has its file" : "s have their files") in predictions/ missing or changed: `suneung fsck` rebuilds them from the store."
                )
            }
            let hidden = board.hiddenCount
            if hidden > 0 && top.top == nil { print("\(hidden) hidden set\(hidden == 1 ? "" : "s") not shown (--all shows them).") }
        }
    }

    /// A set as `list --format json` prints it: every field, null where missing.
    struct Listed: Encodable {
        var set: Store.SetSummary
        var file: String?
        var biased: Bool

        enum CodingKeys: String, CodingKey { case set, file, biased }

        func encode(to encoder: Encoder) throws {
            try set.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(file ?? "ok", forKey: .file)
            try container.encode(biased, forKey: .biased)
        }
    }

    func listCheckpoints() throws {
        let store = try options.openStore()
        let all = try store.checkpoints(run: trainingRun)
        let header = ["checkpoint", "epoch", "train loss", "val loss", "val acc", "path", "created"]
        let rows = all.map { run, c in
            [
                "\(run.name)/step-\(c.step)", String(format: "%.2f", c.epoch), c.trainLoss.map { String(format: "%.4f", $0) } ?? "-",
                c.validationLoss.map { String(format: "%.4f", $0) } ?? "-", formatScore(c.validationAccuracy), c.path,
                timestamp(c.createdAt)
            ]
        }
        switch format {
        case .csv: print(CSV.write([header] + rows), terminator: "")
        case .json:
            let objects = rows.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
            print(
                String(decoding: try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
            )
        case .table:
            guard !all.isEmpty else {
                print("No checkpoints yet: train with `suneung train --config config/train.yaml`.")
                return
            }
            var table = TextTable([
                ("checkpoint", .left), ("epoch", .right), ("train loss", .right), ("val loss", .right), ("val acc", .right),
                ("path", .left), ("created", .left)
            ])
            for row in rows { table.add(row) }
            print(table.rendered)
        }
    }

    /// "best" and "~" per set, and the note that explains "~".
    func closeToBest(_ board: Leaderboard) -> [Int64: (mark: String, note: String?)] {
        board.marks.mapValues { mark in
            (
                mark.mark,
                mark.mark == "best"
                    ? nil
                    : String(
                        format:
                            """
                            ~ within one standard error (%.3f, at %.4f on %d public items) of the best public score over dataset %@: the \
                            leaderboard cannot tell them apart.
                            """,
                        mark.error, mark.best.public!, mark.publicItems, mark.best.dataset)
            )
        }
    }
}

extension LeaderboardOrder: ExpressibleByArgument {}
