import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store
import Workflow

extension Ensemble.Method: ExpressibleByArgument {}
extension CalibrationKind: ExpressibleByArgument {}

/// `--calibrate KIND --gold FILE`, for ensemble and select.
struct CalibrationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Calibrate each member with values before combining: temperature (one T per member) or prior (T and a per-position correction), fitted on the labelled items of --gold by log loss; recorded with the ensemble.", valueName: "temperature|prior"))
    var calibrate: CalibrationKind?

    /// The labelled items, by id, that the calibration is fitted on.
    func goldAnswers(_ file: String?) throws -> [String: Int]? {
        guard calibrate != nil else { return nil }
        guard let file else { throw ValidationError("--calibrate needs a labelled file (--gold FILE)") }
        return try ExamSet.load(path: file).answers
    }

    /// The members calibrated (if asked), the fits printed and added to the lineage.
    func apply(_ members: [Member], dataset: DatasetRecord, goldFile: String?, lineage: inout Lineage) throws -> [Member] {
        guard let kind = calibrate, let gold = try goldAnswers(goldFile) else { return members }
        let (calibrated, fits) = try Workflow.calibrate(members, dataset: dataset, gold: gold, kind: kind)
        var table = TextTable([("member", .left), ("T", .right), ("b1..b5", .left), ("items", .right)])
        for fit in fits {
            table.add([fit.member, String(format: "%.3f", fit.temperature), fit.positionBias.map { String(format: "%+.2f", $0) }.joined(separator: " "), "\(fit.items)"])
        }
        print("Calibrated (\(kind.rawValue), on \(goldFile!)):\n" + indent(table.rendered))
        let skipped = members.count - fits.count
        if skipped > 0 { print("  \(skipped) member\(skipped == 1 ? "" : "s") with answers only, not calibrated.") }
        lineage.calibration = fits
        lineage.calibrationGold = goldFile
        return calibrated
    }
}

struct EnsembleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ensemble",
        abstract: "Combine prediction sets into a submission CSV, recorded with its members, weights and rules.",
        discussion: """
            Members: --top K (the K best public scores, or --by private|local, among sets that are not ensembles, subsets or hidden; ties: the \
            newer version first), --members A,B@v2,..., or the names in explicit --weights.
            Methods: vote (one vote per member), weighted-vote (a vote counts its weight), \
            average (p(c) = Σ w_m p_m(c) / Σ w_m over softmaxed logits, renormalised \
            probabilities, or one-hot answers).
            Weights: score, excess, rank, softmax:T, uniform, or name=w,name=w,... \
            (default: score for weighted-vote and average).
            Ties: vote takes the choice whose voters have the larger summed public score, \
            then the larger mean probability, then the lower choice number; the weighted \
            methods take the lower choice number.
            --calibrate temperature|prior --gold FILE fits each member with values on the \
            labelled items (T, and with prior a correction per answer position, by log \
            loss) and combines the calibrated probabilities; the fits are recorded in the \
            lineage (`suneung show NAME`).
            A member whose answer on an item was kept verbatim (`import --invalid as-wrong`) \
            abstains there. --top counts content that two names share once (the better \
            scored copy) and leaves out hidden sets and subsets.
            The result is the prediction set NAME@vK (with its averaged probabilities) and \
            the submission CSV `id,answer` in test order, checked after writing, recorded in \
            one step: a refusal or a kill leaves neither. It says when the answers equal an \
            existing set's or an uploaded submission's. NAME cannot be an imported or \
            predicted set's name.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @OptionGroup var top: TopOptions

    @Option(help: ArgumentHelp("Use these sets: NAME or NAME@vK, comma-separated.", valueName: "LIST"))
    var members: String?

    @Option(help: ArgumentHelp("With --top: only sets over this exam CSV.", valueName: "TEST.csv"))
    var dataset: String?

    @Option(help: "vote, weighted-vote or average.")
    var method: Ensemble.Method = .vote

    @Option(help: ArgumentHelp("score, excess, rank, softmax:T, uniform, or name=w,... (not for vote).", valueName: "SCHEME"))
    var weights: String?

    @Option(help: "The ensemble's name; it becomes NAME@vK.")
    var name: String

    @Option(help: ArgumentHelp("Where to write the submission CSV (default: submissions/NAME.csv).", valueName: "FILE"))
    var out: String?

    @Flag(help: "Print the ensemble, write nothing.")
    var dryRun = false

    @OptionGroup var calibration: CalibrationOptions

    @Option(help: ArgumentHelp("With --calibrate: the labelled exam CSV to fit on.", valueName: "FILE"))
    var gold: String?

    @OptionGroup var notes: SetNotesOptions

    func run() throws {
        try SetRef.checkName(name)
        let store = try options.openStore()
        // Refusals that need no members first: the name's kind and where it would write.
        try store.checkNameTakes(name, origin: .ensemble)
        let outURL = out.map { URL(fileURLWithPath: $0) } ?? store.workspace.submissionsFolder.appendingPathComponent("\(name).csv")
        try store.checkOutputPath(outURL, owner: SetRef(name: name, version: nil))
        let selection = MemberSelection(store: store)
        var scheme = try weights.map { try WeightScheme(parsing: $0) } ?? (method == .vote ? .uniform : .score)
        if method == .vote, weights != nil {
            throw ValidationError("vote gives every member one vote; use --method weighted-vote or average with --weights")
        }

        let sets: [PredictionSetRecord]
        switch (top.top, members, scheme) {
        case (let k?, nil, _): sets = try top.choose(k, store: store, datasetFile: dataset)
        case (nil, let list?, _): sets = try selection.named(commaList(list))
        case (nil, nil, .explicit(let given)): sets = try selection.named(given.keys.sorted())
        case (nil, nil, _): throw ValidationError("choose the members: --top K or --members A,B,...")
        default: throw ValidationError("--top and --members exclude each other")
        }
        if case .explicit(let given) = scheme {
            scheme = .explicit(try resolveWeightNames(given, sets: sets, store: store))
        }
        let (datasetRecord, uncalibrated, _) = try selection.members(sets)
        var lineage = Lineage(commandLine: commandLineText, toolVersion: Suneung.version)
        let members = try calibration.apply(uncalibrated, dataset: datasetRecord, goldFile: gold, lineage: &lineage)
        let memberWeights = try scheme.weights(for: members)
        let result = try combine(members, choiceCounts: datasetRecord.choiceCounts, method: method, weights: memberWeights)

        print("Ensemble \(name): \(method.rawValue) over \(members.count) members, dataset \(datasetRecord.shortHash) (\(datasetRecord.itemCount) items)")
        var table = TextTable([("#", .right), ("member", .left), ("public", .right), ("weight", .right)])
        for (index, member) in members.enumerated() {
            table.add(["\(index + 1)", member.name, formatScore(member.publicScore), method == .vote ? "1 vote" : String(format: "%.4g", memberWeights[index])])
        }
        print(indent(table.rendered))
        print("  weights: \(method == .vote ? "one vote each" : scheme.description)")
        print("  ties:    \(method.tieRule)")
        let best = members.indices.max { (members[$0].publicScore ?? -1, -$0) < (members[$1].publicScore ?? -1, -$1) }!
        let changed = zip(result.answers, members[best].answers).filter { $0 != $1 }.count
        print("Changes \(changed) of \(datasetRecord.itemCount) answers of the best member \(members[best].name) (public \(formatScore(members[best].publicScore))).")

        let prediction = predictionTable(result, dataset: datasetRecord)
        warnIfAnswered(prediction, dataset: datasetRecord, store: store, except: name)
        guard !dryRun else {
            print("Dry run: nothing written.")
            return
        }
        let outcome = try store.addSubmission(Store.NewSubmission(
            name: name, dataset: datasetRecord, table: prediction,
            members: zip(sets, zip(memberWeights, members)).map { ($0, method == .vote ? 1 : $1.0, $1.1.publicScore) },
            method: method.rawValue, weightScheme: method == .vote ? "one vote each" : scheme.description, tieRule: method.tieRule,
            lineage: lineage, notes: notes.notes, out: outURL))
        switch outcome {
        case .created(let set):
            print("Wrote \(store.workspace.relative(outURL)) (\(datasetRecord.itemCount) rows, checked) and recorded \(set.ref).")
        case .identical(let set):
            print("Wrote \(store.workspace.relative(outURL)) (\(datasetRecord.itemCount) rows, checked); the result is identical to \(set.ref), so no new version.")
        }
    }
}

/// Says when these answers are an existing set's (another name's, or an uploaded
/// submission's): a new upload of them would tell the team nothing.
func warnIfAnswered(_ table: PredictionTable, dataset: DatasetRecord, store: Store, except name: String) {
    guard let same = try? store.sameAnswers(table, dataset: dataset).filter({ $0.set.name != name }), !same.isEmpty else { return }
    let described = same.prefix(5).map { $0.set.ref.description + ($0.uploaded ? " (uploaded)" : "") }.joined(separator: ", ")
    print("Note: answers identical to \(described)\(same.count > 5 ? " and \(same.count - 5) more" : "") on all \(table.rows.count) items.")
}

/// Explicit weights may name NAME or NAME@vK; they are keyed by the member's full ref.
func resolveWeightNames(_ given: [String: Double], sets: [PredictionSetRecord], store: Store) throws -> [String: Double] {
    var resolved: [String: Double] = [:]
    for (key, weight) in given {
        let set = try store.predictionSet(key)
        guard sets.contains(where: { $0.id == set.id }) else {
            throw StoreError.invalid("--weights names \(set.ref), which is not a member (members: \(sets.map(\.ref.description).joined(separator: ", ")))")
        }
        resolved[set.ref.description] = weight
    }
    return resolved
}
