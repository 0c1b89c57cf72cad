import ArgumentParser
import Exam
import Foundation
import Store
import TeamClient
import Workflow

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract:
            """
            Show a prediction set (lineage, dataset, scores, answer distribution) or a training checkpoint (RUN/step-N: config, data, \
            metrics).
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME, NAME@vK, a submission name, or a checkpoint RUN/step-N.")
    var ref: String

    @Option(help: "Output format: table (for people), json (everything, null where missing) or csv (the score history).")
    var format: OutputFormat = .table

    @OptionGroup var remote: RemoteOptions

    func run() throws {
        let detail: SetDetail
        if let name = remote.remote {
            detail = try options.client(name).set(ref)
        } else {
            let store = try options.openStore()
            if ref.contains("/") { return try showCheckpoint(store) }
            detail = try SetDetail(try store.predictionSet(ref), store: store)
        }
        switch format {
        case .json: try printJSON(detail)
        case .csv:
            print(
                CSV.write(
                    [["set", "kind", "value", "recorded", "author", "note", "upload", "retracted"]]
                        + detail.scores.map {
                            [
                                detail.ref, $0.kind.rawValue, "\($0.value)", iso8601($0.createdAt), $0.author ?? "", $0.note ?? "",
                                $0.uploadId.map { "\($0)" } ?? "", $0.retractedAt.map(iso8601) ?? ""
                            ]
                        }), terminator: "")
        case .table: printTable(detail)
        }
    }

    func printTable(_ set: SetDetail) {
        print(
            "\(excerpt(set.ref, limit: 200))  (\(set.origin.rawValue), created \(timestamp(set.created))\(set.author.map { " by \(excerpt($0, limit: 60))" } ?? "")\(set.hidden ? ", hidden" : ""))"
        )
        if let note = set.note { print("  note         \(excerpt(note, limit: 500))") }
        if !set.tags.isEmpty { print("  tags         \(excerpt(set.tags.joined(separator: ", "), limit: 2000))") }
        print("  dataset      \(set.dataset.prefix(8))  \(set.datasetItems) items  \(excerpt(set.datasetPath ?? "", limit: 1000))")
        if set.subset {
            print("  subset       \(set.rows) of the dataset's \(set.datasetItems) items (never exported as a submission)")
        }
        print("  values       \(set.values?.rawValue ?? "answers only")")
        if set.invalidAnswers > 0 {
            print(
                "  invalid      \(set.invalidAnswers) answers kept as uploaded (\(set.lineage.invalidAnswerRule ?? "as-wrong")): wrong in local scores, abstaining in ensembles"
            )
        }
        print("  csv sha256   \(set.csvSha256)")
        print(
            "  file         \(excerpt(set.filePath, limit: 1000))\(set.file == "ok" ? "" : "  (\(set.file): `suneung fsck` rebuilds it)")")
        if !set.sameAs.isEmpty { print("  same as      \(excerpt(set.sameAs.joined(separator: ", "), limit: 2000)) (answers and values)") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let lineage = String(decoding: (try? encoder.encode(set.lineage)) ?? Data(), as: UTF8.self)
        print("\nLineage\n" + lineage.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))

        if let submission = set.submission {
            // Escaped: with --remote these are a server's words.
            print("\nSubmission  \(excerpt(submission.method, limit: 100)), weights \(excerpt(submission.weights, limit: 500))")
            print("  ties       \(excerpt(submission.ties, limit: 500))")
            print("  csv        \(excerpt(submission.csv, limit: 1000)) (sha256 \(excerpt(String(submission.csvSha256.prefix(12))))...)")
            var members = TextTable([("#", .right), ("member", .left), ("weight", .right), ("public then", .right)])
            for (index, member) in submission.members.enumerated() {
                members.add(["\(index + 1)", member.set, String(format: "%.4g", member.weight), formatScore(member.publicThen)])
            }
            print(indent(members.rendered))
        }

        print("\nScores")
        if set.scores.isEmpty {
            print("  none yet (suneung score \(set.ref) --public X)")
        } else {
            var scoreTable = TextTable([("kind", .left), ("value", .right), ("recorded", .left), ("by", .left), ("note", .left)])
            for score in set.scores {
                scoreTable.add([
                    score.kind.rawValue + (score.retractedAt == nil ? "" : " (retracted)"), formatScore(score.value),
                    timestamp(score.createdAt), excerpt(score.author ?? "", limit: 24), excerpt(score.note ?? "", limit: 80)
                ])
            }
            print(indent(scoreTable.rendered))
        }

        print("\nAnswers")
        var answers = TextTable([("answer", .right), ("items", .right), ("share", .right)])
        for answer in 1...PredictionRow.maxChoices {
            answers.add(["\(answer)", "\(set.answers["\(answer)"] ?? 0)", percent(set.answers["\(answer)"] ?? 0, of: set.rows)])
        }
        if let invalid = set.answers["invalid"] { answers.add(["invalid", "\(invalid)", percent(invalid, of: set.rows)]) }
        print(indent(answers.rendered))
    }

    /// A checkpoint: where it is, its metrics, its run's base model, data and settings.
    func showCheckpoint(_ store: Store) throws {
        let (run, checkpoint) = try store.checkpoint(ref)
        print(
            "\(run.name)/step-\(checkpoint.step)  (epoch \(String(format: "%.2f", checkpoint.epoch)) of \(run.totalSteps) steps, saved \(timestamp(checkpoint.createdAt)))"
        )
        print("  folder          \(checkpoint.path)")
        print("  adapter sha256  \(checkpoint.adapterSha256)")
        print("  train loss      \(checkpoint.trainLoss.map { String(format: "%.4f", $0) } ?? "-")")
        print(
            "  validation      loss \(checkpoint.validationLoss.map { String(format: "%.4f", $0) } ?? "-"), accuracy \(formatScore(checkpoint.validationAccuracy))"
        )
        print("  base model      \(run.model)  (sha256 \(run.modelSha256.prefix(12))...)")
        print(
            "  train data      sha256 \(run.trainSha256.prefix(12))...\(run.validationSha256.map { ", validation file sha256 \($0.prefix(12))..." } ?? "")"
        )
        let object = try JSONSerialization.jsonObject(with: Data(run.config.utf8))
        let config = String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
            as: UTF8.self)
        print("\nConfig\n" + indent(config))
        let sets = try store.summaries().filter {
            (try? store.predictionSet($0.ref).lineage.checkpoint) == "\(run.name)/step-\(checkpoint.step)"
        }
        if !sets.isEmpty { print("\nPrediction sets from it: " + sets.map(\.ref).joined(separator: ", ")) }
    }
}

func indent(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
}
