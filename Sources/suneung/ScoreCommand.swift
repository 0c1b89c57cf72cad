import ArgumentParser
import Exam
import Foundation
import Store
import TeamClient
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
        if retract {
            let set = try store.predictionSet(ref)
            for score in try store.retractLatestScores(of: set) {
                print("\(set.ref): retracted \(score.kind.rawValue) \(formatScore(score.value)) recorded \(timestamp(score.createdAt))")
            }
            return
        }
        let scores = NewScores(
            set: ref, publicScore: publicScore, privateScore: privateScore, gold: gold, note: note, author: author ?? defaultAuthor(),
            simulated: simulated)
        for result in try recordScores(scores, store: store) {
            let detail = result.detail.map { " (\($0))" } ?? ""
            print(
                "\(result.set): \(result.kind.rawValue) \(formatScore(result.value))\(excerpt(detail, limit: 200))\(result.recorded ? "" : ", already the latest recorded")"
            )
        }
    }

    /// The same on a team server: public and private scores, or a retraction (--gold
    /// needs the rows here: score locally, then push).
    func runRemote(_ name: String) throws {
        guard gold == nil, author == nil else {
            throw ValidationError(
                """
                with --remote: --public, --private, --note, --simulated or --retract (the server records the token's name; --gold scores \
                locally)
                """
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
