import ArgumentParser
import Exam
import Foundation
import Server
import Store
import Workflow

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Record leaderboard scores of a prediction set or submission, or its local accuracy on a labelled file.",
        discussion: """
            REF is NAME (its latest version), NAME@vK, or a submission's name. Scores are \
            accuracies in [0, 1]. --public and --private are one leaderboard upload, logged \
            with its author and note (`suneung uploads`); a score equal to the latest of its \
            kind is not recorded again. --gold computes the accuracy over the ids that the set \
            and the labelled exam CSV share (an answer kept verbatim by `import --invalid \
            as-wrong` counts as wrong), and records it as kind `local`. --retract marks the \
            latest recording (an upload's scores, or a local score) as retracted: kept in the \
            history, no longer the set's score nor counted in today's uploads.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME, NAME@vK or a submission name.")
    var ref: String

    @Option(name: .customLong("public"), help: "Public leaderboard accuracy, e.g. 0.8111.")
    var publicScore: Double?

    @Option(name: .customLong("private"), help: "Private leaderboard accuracy.")
    var privateScore: Double?

    @Option(help: ArgumentHelp("A labelled exam CSV: record the local accuracy on the ids it shares with REF.", valueName: "FILE"))
    var gold: String?

    @Option(help: "A note kept with the score(s).")
    var note: String?

    @Option(help: ArgumentHelp("Who recorded it (default: git config user.name, else $USER).", valueName: "NAME"))
    var author: String?

    @Flag(help: "Scores of a simulated leaderboard (a gold file), not an upload: not in the upload log.")
    var simulated = false

    @Flag(help: "Retract the latest recorded scores of REF instead.")
    var retract = false

    func validate() throws {
        if retract {
            guard publicScore == nil && privateScore == nil && gold == nil else { throw ValidationError("--retract takes no scores") }
            return
        }
        guard publicScore != nil || privateScore != nil || gold != nil else {
            throw ValidationError("give at least one of --public, --private, --gold (or --retract)")
        }
    }

    @OptionGroup var remote: RemoteOptions

    func run() throws {
        if let name = remote.remote { return try runRemote(name) }
        let store = try options.openStore()
        let set = try store.predictionSet(ref)
        if publicScore != nil || privateScore != nil, let rows = set.itemCount, rows < (try store.dataset(id: set.datasetId)).itemCount {
            throw StoreError.invalid(
                "\(set.ref) is a subset (imported with --subset): it was never uploaded, so it has no leaderboard score; --gold records its local accuracy"
            )
        }
        if retract {
            for score in try store.retractLatestScores(of: set) {
                print("\(set.ref): retracted \(score.kind.rawValue) \(formatScore(score.value)) recorded \(timestamp(score.createdAt))")
            }
            return
        }
        // Read and check everything before the first write, so bad input records nothing.
        var local: (value: Double, note: String)?
        if let gold {
            let items = try ExamSet.load(path: gold).items
            let labelled = items.filter { $0.answer != nil }
            guard !labelled.isEmpty else {
                throw StoreError.invalid("\(gold) has no answers: a gold file needs the answer in every item's problems")
            }
            let (correct, total) = try store.table(of: set).accuracy(against: labelled)
            guard total > 0 else { throw StoreError.invalid("\(gold) shares no labelled id with \(set.ref) (is it for another dataset?)") }
            local = (Double(correct) / Double(total), "gold \(gold): \(correct)/\(total)" + (note.map { "; \($0)" } ?? ""))
        }
        let results = try store.addScores(
            to: set,
            [
                publicScore.map { (ScoreKind.public, $0, note) },
                privateScore.map { (ScoreKind.private, $0, note) },
                local.map { (ScoreKind.local, $0.value, $0.note) }
            ].compactMap { $0 }, author: author ?? defaultAuthor(), simulated: simulated)
        for result in results {
            let detail = result.kind == .local ? " (\(local!.note))" : ""
            print(
                "\(set.ref): \(result.kind.rawValue) \(formatScore(result.value))\(excerpt(detail, limit: 200))\(result.recorded ? "" : ", already the latest recorded")"
            )
        }
    }

    /// The same on a team server: public and private scores, or a retraction (--gold
    /// needs the rows here: score locally, then push).
    func runRemote(_ name: String) throws {
        guard gold == nil, author == nil else {
            throw ValidationError(
                "with --remote: --public, --private, --note, --simulated or --retract (the server records the token's name; --gold scores locally)"
            )
        }
        let client = try options.client(name)
        if retract {
            for score in try client.retract(ref) {
                print(
                    "\(ref): retracted \(score.kind.rawValue) \(formatScore(score.value)) recorded \(timestamp(score.createdAt)) on \(client.url)"
                )
            }
            return
        }
        for result in try client.score(ref, public: publicScore, private: privateScore, note: note, simulated: simulated) {
            print(
                "\(ref): \(result.kind.rawValue) \(formatScore(result.value)) on \(client.url)\(result.recorded ? "" : ", already the latest recorded")"
            )
        }
    }
}
