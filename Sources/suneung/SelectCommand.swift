import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store
import Workflow

struct SelectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Choose ensemble members by greedy forward selection with replacement on labelled items (Caruana et al., 2004).",
        discussion: """
            Each round adds the candidate (possibly one already chosen) that makes the \
            ensemble most accurate on the items the gold file labels; equal accuracies go \
            to the candidate more accurate alone, then the earlier one. A candidate picked \
            twice counts twice. Use it where the candidates' predictions cover labelled \
            items (a validation split imported with --subset, or a labelled copy of the test \
            set); selection runs on the labelled items every candidate covers. Content that \
            two names share is one candidate; hidden sets are left out. --name saves the \
            chosen multiset as an ensemble over the candidates' dataset (not from subsets).
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: ArgumentHelp("A labelled exam CSV.", valueName: "FILE"))
    var gold: String

    @Option(
        help: ArgumentHelp(
            "Candidate sets, comma-separated (default: every set that is not an ensemble, over one dataset).", valueName: "LIST"))
    var candidates: String?

    @Option(help: ArgumentHelp("Only sets over this exam CSV.", valueName: "TEST.csv"))
    var dataset: String?

    @Option(help: "Rounds of selection.")
    var rounds = 20

    @Option(help: "average or vote.")
    var method: Ensemble.Method = .average

    @Option(help: "Save the chosen multiset as this ensemble (and its submission CSV).")
    var name: String?

    @Option(help: ArgumentHelp("With --name: where to write the submission CSV (default: submissions/NAME.csv).", valueName: "FILE"))
    var out: String?

    @OptionGroup var notes: SetNotesOptions

    @OptionGroup var calibration: CalibrationOptions

    func run() throws {
        if let name { try SetRef.checkName(name) }
        guard method != .weightedVote else { throw ValidationError("--method is average or vote: the picks are the weights") }
        let store = try options.openStore()
        let outURL = name.map { name in
            out.map { URL(fileURLWithPath: $0) } ?? store.workspace.submissionsFolder.appendingPathComponent("\(name).csv")
        }
        if let name, let outURL {
            try store.checkNameTakes(name, origin: .ensemble)
            try store.checkOutputPath(outURL, owner: SetRef(name: name, version: nil))
        }
        let selection = MemberSelection(store: store)
        let sets: [PredictionSetRecord]
        if let candidates {
            sets = try selection.named(commaList(candidates))
        } else {
            var all = try store.summaries().filter { $0.origin != .ensemble && !$0.hidden }
            if let dataset {
                let sha = try store.dataset(file: dataset).sha256
                all = all.filter { $0.datasetSha256 == sha }
            }
            guard Set(all.map(\.datasetSha256)).count <= 1 else {
                throw StoreError.invalid("the sets are over several datasets; choose with --dataset TEST.csv or --candidates")
            }
            // Identical content is one candidate: the copy with the best public score.
            var seen: [String: String] = [:]
            all = all.sorted { ($0.public ?? -1, $0.createdAt) > ($1.public ?? -1, $1.createdAt) }.filter { set in
                if let first = seen[set.csvSha256] {
                    print("Skipped \(set.ref): the same answers and values as \(first).")
                    return false
                }
                seen[set.csvSha256] = set.ref
                return true
            }.sorted { ($0.name, $0.version) < ($1.name, $1.version) }
            sets = try all.map { try store.predictionSet(id: $0.id) }
        }
        let (datasetRecord, uncalibrated, covered) = try selection.members(sets, allowSubsets: true)
        var lineage = Lineage(commandLine: commandLineText, toolVersion: Suneung.version)
        let members = try calibration.apply(uncalibrated, dataset: datasetRecord, goldFile: gold, lineage: &lineage)
        let answers = try ExamSet.load(path: gold).answers
        let labelled = covered.filter { answers[datasetRecord.itemIds[$0]] != nil }
        guard !labelled.isEmpty else {
            throw StoreError.invalid(
                "\(gold) labels none of the \(covered.count) items every candidate predicts (is it for another dataset?)")
        }
        // Selection runs on the labelled items only.
        let counts = labelled.map { datasetRecord.choiceCounts[$0] }
        let goldAnswers = labelled.map { answers[datasetRecord.itemIds[$0]]! }
        let restricted = restrict(members, to: labelled)
        let history = try greedySelection(restricted, choiceCounts: counts, gold: goldAnswers, rounds: rounds, method: method)

        let accuracyAlone = restricted.map { Double(zip($0.answers, goldAnswers).filter { $0 == $1 }.count) / Double(labelled.count) }
        let bestAlone = accuracyAlone.indices.max { (accuracyAlone[$0], -$0) < (accuracyAlone[$1], -$1) }!
        print(
            "Greedy selection (\(method.rawValue)) over \(members.count) candidates on \(labelled.count) labelled items of dataset \(datasetRecord.shortHash)"
        )
        print("  best single candidate: \(members[bestAlone].name) at \(String(format: "%.4f", accuracyAlone[bestAlone]))")
        var table = TextTable([("round", .right), ("added", .left), ("accuracy", .right)])
        for (round, step) in history.enumerated() {
            table.add(["\(round + 1)", members[step.added].name, String(format: "%.4f", step.accuracy)])
        }
        print(indent(table.rendered))

        let picks = history.map(\.added)
        var multiset = TextTable([("set", .left), ("picks", .right), ("alone", .right)])
        for index in Set(picks).sorted(by: { (picks.firstIndex(of: $0)!) < (picks.firstIndex(of: $1)!) }) {
            multiset.add([members[index].name, "\(picks.filter { $0 == index }.count)", String(format: "%.4f", accuracyAlone[index])])
        }
        print("\nChosen multiset\n" + indent(multiset.rendered))

        guard let name, let outURL else { return }
        if let subset = sets.first(where: { ($0.itemCount ?? datasetRecord.itemCount) < datasetRecord.itemCount }) {
            throw StoreError.invalid(
                "\(subset.ref) covers \(subset.itemCount!) of the dataset's \(datasetRecord.itemCount) items (imported with --subset): a subset cannot be a member of a submission; select without --name, or with --candidates that cover the dataset"
            )
        }
        let chosenMembers = picks.map { members[$0] }
        let result = try combine(
            chosenMembers, choiceCounts: datasetRecord.choiceCounts, method: method, weights: Array(repeating: 1, count: picks.count))
        let prediction = predictionTable(result, dataset: datasetRecord)
        let outcome = try store.addSubmission(
            Store.NewSubmission(
                name: name, dataset: datasetRecord, table: prediction,
                members: picks.map { (sets[$0], 1, members[$0].publicScore) },
                method: method.rawValue, weightScheme: "greedy selection, one per pick (\(rounds) rounds on \(gold))",
                tieRule: method.tieRule,
                lineage: lineage, notes: notes.notes, out: outURL))
        switch outcome {
        case .created(let set): print("\nSaved as \(set.ref); wrote \(store.workspace.relative(outURL)).")
        case .identical(let set): print("\nIdentical to \(set.ref); wrote \(store.workspace.relative(outURL)).")
        }
    }
}
