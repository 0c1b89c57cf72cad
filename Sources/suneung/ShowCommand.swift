import ArgumentParser
import Exam
import Foundation
import Store

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a prediction set (lineage, dataset, scores, answer distribution) or a training checkpoint (RUN/step-N: config, data, metrics)."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME, NAME@vK, a submission name, or a checkpoint RUN/step-N.")
    var ref: String

    @Option(help: "Output format: table (for people), json (everything, null where missing) or csv (the score history).")
    var format: OutputFormat = .table

    func run() throws {
        let store = try options.openStore()
        if ref.contains("/") { return try showCheckpoint(store) }
        let set = try store.predictionSet(ref)
        let dataset = try store.dataset(id: set.datasetId)
        let table = try store.table(of: set)
        let scores = try store.scores(of: set)
        let tags = try store.tags(of: set)
        let fileProblem = store.fileProblem(set)
        let submission = try store.submission(of: set)
        switch format {
        case .json:
            try printJSON(ShownSet(set: set, dataset: dataset, tags: tags, file: fileProblem ?? "ok", scores: scores, submission: submission.map { sub in
                ShownSet.Submission(method: sub.record.method, weights: sub.record.weightScheme, ties: sub.record.tieRule, csv: sub.record.path, csvSha256: sub.record.csvSha256,
                                    members: sub.members.map { ShownSet.Member(set: $0.set.ref.description, weight: $0.weight, publicThen: $0.publicScore) })
            }))
            return
        case .csv:
            print(CSV.write([["set", "kind", "value", "recorded", "author", "note", "upload", "retracted"]] + scores.map {
                [set.ref.description, $0.kind.rawValue, "\($0.value)", iso8601($0.createdAt), $0.author ?? "", $0.note ?? "", $0.uploadId.map { "\($0)" } ?? "", $0.retractedAt.map(iso8601) ?? ""]
            }), terminator: "")
            return
        case .table: break
        }
        print("\(set.ref)  (\(set.origin.rawValue), created \(timestamp(set.createdAt))\(set.author.map { " by \(excerpt($0, limit: 60))" } ?? "")\(set.hidden ? ", hidden" : ""))")
        if let note = set.note { print("  note         \(excerpt(note, limit: 500))") }
        if !tags.isEmpty { print("  tags         \(tags.joined(separator: ", "))") }
        print("  dataset      \(dataset.shortHash)  \(dataset.itemCount) items  \(excerpt(dataset.path ?? "", limit: 1000))")
        if table.rows.count < dataset.itemCount { print("  subset       \(table.rows.count) of the dataset's \(dataset.itemCount) items (never exported as a submission)") }
        print("  values       \(set.choiceValues?.rawValue ?? "answers only")")
        if set.invalidAnswers > 0 { print("  invalid      \(set.invalidAnswers) answers kept as uploaded (\(set.lineage.invalidAnswerRule ?? "as-wrong")): wrong in local scores, abstaining in ensembles") }
        print("  csv sha256   \(set.csvSha256)")
        print("  file         \(store.workspace.relative(store.workspace.predictionFile(for: set.ref)))\(fileProblem.map { "  (\($0): `suneung fsck` rebuilds it)" } ?? "")")
        let copies = try store.sameContent(as: set)
        if !copies.isEmpty { print("  same as      \(copies.map(\.ref.description).joined(separator: ", ")) (answers and values)") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let lineage = String(decoding: try encoder.encode(set.lineage), as: UTF8.self)
        print("\nLineage\n" + lineage.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))

        if let submission {
            print("\nSubmission  \(submission.record.method), weights \(submission.record.weightScheme)")
            print("  ties       \(submission.record.tieRule)")
            print("  csv        \(submission.record.path) (sha256 \(submission.record.csvSha256.prefix(12))...)")
            var members = TextTable([("#", .right), ("member", .left), ("weight", .right), ("public then", .right)])
            for (index, member) in submission.members.enumerated() {
                members.add(["\(index + 1)", member.set.ref.description, String(format: "%.4g", member.weight), formatScore(member.publicScore)])
            }
            print(indent(members.rendered))
        }

        print("\nScores")
        if scores.isEmpty {
            print("  none yet (suneung score \(set.ref) --public X)")
        } else {
            var scoreTable = TextTable([("kind", .left), ("value", .right), ("recorded", .left), ("by", .left), ("note", .left)])
            for score in scores {
                scoreTable.add([score.kind.rawValue + (score.retractedAt == nil ? "" : " (retracted)"), formatScore(score.value), timestamp(score.createdAt), excerpt(score.author ?? "", limit: 24), excerpt(score.note ?? "", limit: 80)])
            }
            print(indent(scoreTable.rendered))
        }

        print("\nAnswers")
        var answers = TextTable([("answer", .right), ("items", .right), ("share", .right)])
        let counts = Dictionary(grouping: table.rows, by: \.answer).mapValues(\.count)
        for answer in 1...PredictionRow.maxChoices {
            answers.add(["\(answer)", "\(counts[answer] ?? 0)", percent(counts[answer] ?? 0, of: table.rows.count)])
        }
        if let invalid = counts[0] { answers.add(["invalid", "\(invalid)", percent(invalid, of: table.rows.count)]) }
        print(indent(answers.rendered))
    }

    /// A checkpoint: where it is, its metrics, its run's base model, data and settings.
    func showCheckpoint(_ store: Store) throws {
        let (run, checkpoint) = try store.checkpoint(ref)
        print("\(run.name)/step-\(checkpoint.step)  (epoch \(String(format: "%.2f", checkpoint.epoch)) of \(run.totalSteps) steps, saved \(timestamp(checkpoint.createdAt)))")
        print("  folder          \(checkpoint.path)")
        print("  adapter sha256  \(checkpoint.adapterSha256)")
        print("  train loss      \(checkpoint.trainLoss.map { String(format: "%.4f", $0) } ?? "-")")
        print("  validation      loss \(checkpoint.validationLoss.map { String(format: "%.4f", $0) } ?? "-"), accuracy \(formatScore(checkpoint.validationAccuracy))")
        print("  base model      \(run.model)  (sha256 \(run.modelSha256.prefix(12))...)")
        print("  train data      sha256 \(run.trainSha256.prefix(12))...\(run.validationSha256.map { ", validation file sha256 \($0.prefix(12))..." } ?? "")")
        let object = try JSONSerialization.jsonObject(with: Data(run.config.utf8))
        let config = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
        print("\nConfig\n" + indent(config))
        let sets = try store.summaries().filter { (try? store.predictionSet($0.ref).lineage.checkpoint) == "\(run.name)/step-\(checkpoint.step)" }
        if !sets.isEmpty { print("\nPrediction sets from it: " + sets.map(\.ref).joined(separator: ", ")) }
    }
}

func indent(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
}

/// A set as `show --format json` prints it.
struct ShownSet: Encodable {
    struct Member: Encodable {
        var set: String
        var weight: Double
        var publicThen: Double?

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(set, forKey: .set)
            try c.encode(weight, forKey: .weight)
            try c.encode(publicThen, forKey: .publicThen)
        }
        enum CodingKeys: String, CodingKey { case set, weight, publicThen }
    }

    struct Submission: Encodable {
        var method: String
        var weights: String
        var ties: String
        var csv: String
        var csvSha256: String
        var members: [Member]
    }

    var set: PredictionSetRecord
    var dataset: DatasetRecord
    var tags: [String]
    var file: String
    var scores: [ScoreRecord]
    var submission: Submission?

    enum CodingKeys: String, CodingKey { case ref, origin, created, author, note, hidden, tags, dataset, datasetItems, rows, values, invalidAnswers, csvSha256, file, lineage, scores, submission }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(set.ref.description, forKey: .ref)
        try c.encode(set.origin, forKey: .origin)
        try c.encode(set.createdAt, forKey: .created)
        try c.encode(set.author, forKey: .author)
        try c.encode(set.note, forKey: .note)
        try c.encode(set.hidden, forKey: .hidden)
        try c.encode(tags, forKey: .tags)
        try c.encode(dataset.sha256, forKey: .dataset)
        try c.encode(dataset.itemCount, forKey: .datasetItems)
        try c.encode(set.itemCount ?? dataset.itemCount, forKey: .rows)
        try c.encode(set.choiceValues, forKey: .values)
        try c.encode(set.invalidAnswers, forKey: .invalidAnswers)
        try c.encode(set.csvSha256, forKey: .csvSha256)
        try c.encode(file, forKey: .file)
        try c.encode(set.lineage, forKey: .lineage)
        try c.encode(scores, forKey: .scores)
        try c.encode(submission, forKey: .submission)
    }
}
