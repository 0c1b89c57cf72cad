import ArgumentParser
import Ensemble
import Exam
import Foundation
import Store
import TeamClient
import Workflow

extension Ensemble.Method: ExpressibleByArgument {}
extension CalibrationKind: ExpressibleByArgument {}

/// `--calibrate KIND --gold FILE`, for ensemble and select.
struct CalibrationOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            Calibrate each member with values before combining: temperature (one T per member) or prior (T and a per-position correction), \
            fitted on the labelled items of --gold by log loss; recorded with the ensemble.
            """,
            valueName: "temperature|prior"))
    var calibrate: CalibrationKind?

    /// The labelled items, by id, that the calibration is fitted on.
    func goldAnswers(_ file: String?) throws -> [String: Int]? {
        guard calibrate != nil else { return nil }
        guard let file else { throw ValidationError("--calibrate needs a labelled file (--gold FILE)") }
        return try Gold(path: file).answers
    }

    static func printFits(_ fits: [MemberCalibration], kind: CalibrationKind, gold: String, uncalibrated: Int) {
        var table = TextTable([("member", .left), ("T", .right), ("b1..b5", .left), ("items", .right)])
        for fit in fits {
            table.add([
                fit.member, String(format: "%.3f", fit.temperature),
                fit.positionBias.map { String(format: "%+.2f", $0) }.joined(separator: " "), "\(fit.items)"
            ])
        }
        print("Calibrated (\(kind.rawValue), on \(gold)):\n" + indent(table.rendered))
        if uncalibrated > 0 { print("  \(uncalibrated) member\(uncalibrated == 1 ? "" : "s") with answers only, not calibrated.") }
    }

    /// The members calibrated (if asked), the fits printed and added to the lineage.
    func apply(_ members: [Member], dataset: DatasetRecord, goldFile: String?, lineage: inout Lineage) throws -> [Member] {
        guard let kind = calibrate, let gold = try goldAnswers(goldFile) else { return members }
        let (calibrated, fits) = try Workflow.calibrate(members, dataset: dataset, gold: gold, kind: kind)
        Self.printFits(fits, kind: kind, gold: goldFile!, uncalibrated: members.count - fits.count)
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

    @OptionGroup var remote: RemoteOptions

    var spec: EnsembleSpec {
        EnsembleSpec(
            name: name, members: members.map(commaList), top: top.top, by: top.top == nil ? nil : top.by,
            exclude: top.exclude.map(commaList),
            method: method.rawValue, weights: weights, tags: notes.tags, note: notes.note, dryRun: dryRun)
    }

    func validate() throws {
        if method == .vote, weights != nil {
            throw ValidationError("vote gives every member one vote; use --method weighted-vote or average with --weights")
        }
        if top.top == nil && members == nil,
            weights.map({ (try? WeightScheme(parsing: $0)).map { if case .explicit = $0 { true } else { false } } ?? false }) != true
        {
            throw ValidationError("choose the members: --top K or --members A,B,...")
        }
        if top.top != nil && members != nil { throw ValidationError("--top and --members exclude each other") }
        if remote.remote != nil && (out != nil || calibration.calibrate != nil || dataset != nil || notes.author != nil) {
            throw ValidationError(
                "with --remote the server builds the ensemble: --out, --calibrate, --dataset and --author are local options")
        }
    }

    func run() throws {
        if let name = remote.remote {
            let client = try options.client(name)
            return printEnsemble(try client.buildEnsemble(spec), dryRun: dryRun, server: client.url)
        }
        let store = try options.openStore()
        let built = try buildEnsemble(
            spec, store: store, datasetFile: dataset, lineage: Lineage(commandLine: commandLineText, toolVersion: suneungVersion),
            author: notes.author ?? defaultAuthor(), out: out.map { URL(fileURLWithPath: $0) }
        ) { members, dataset, lineage in
            try calibration.apply(members, dataset: dataset, goldFile: gold, lineage: &lineage)
        }
        printEnsemble(built, dryRun: dryRun, server: nil)
    }

    func printEnsemble(_ built: BuiltEnsemble, dryRun: Bool, server: String?) {
        for copy in built.skippedCopies { print("Skipped \(copy).") }
        print(
            "Ensemble \(built.name): \(built.method) over \(built.members.count) members, dataset \(built.dataset) (\(built.items) items)\(server.map { " on \($0)" } ?? "")"
        )
        var table = TextTable([("#", .right), ("member", .left), ("public", .right), ("weight", .right)])
        for (index, member) in built.members.enumerated() {
            table.add([
                "\(index + 1)", member.set, formatScore(member.publicScore), member.weight.map { String(format: "%.4g", $0) } ?? "1 vote"
            ])
        }
        print(indent(table.rendered))
        print("  weights: \(built.weights)")
        print("  ties:    \(built.tieRule)")
        print(
            "Changes \(built.changedFromBest) of \(built.items) answers of the best member \(built.bestMember) (public \(formatScore(built.bestMemberPublic)))."
        )
        if !built.sameAnswers.isEmpty {
            print(
                "Note: answers identical to \(built.sameAnswers.prefix(5).joined(separator: ", "))\(built.sameAnswers.count > 5 ? " and \(built.sameAnswers.count - 5) more" : "") on all \(built.items) items."
            )
        }
        guard let recorded = built.recorded, let file = built.submissionFile else {
            print("Dry run: nothing written.")
            return
        }
        let place = server == nil ? "" : " on the server"
        if built.created {
            print("Wrote \(file)\(place) (\(built.items) rows, checked) and recorded \(recorded).")
        } else {
            print("Wrote \(file)\(place) (\(built.items) rows, checked); the result is identical to \(recorded), so no new version.")
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
