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

    func run() throws {
        let store = try options.openStore()
        if ref.contains("/") { return try showCheckpoint(store) }
        let set = try store.predictionSet(ref)
        let dataset = try store.dataset(id: set.datasetId)
        let table = try store.table(of: set)
        print("\(set.ref)  (\(set.origin.rawValue), created \(timestamp(set.createdAt)))")
        print("  dataset      \(dataset.shortHash)  \(dataset.itemCount) items  \(dataset.path ?? "")")
        print("  values       \(set.choiceValues?.rawValue ?? "answers only")")
        print("  csv sha256   \(set.csvSha256)")
        print("  file         \(store.workspace.relative(store.workspace.predictionFile(for: set.ref)))")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let lineage = String(decoding: try encoder.encode(set.lineage), as: UTF8.self)
        print("\nLineage\n" + lineage.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))

        if let submission = try store.submission(of: set) {
            print("\nSubmission  \(submission.record.method), weights \(submission.record.weightScheme)")
            print("  ties       \(submission.record.tieRule)")
            print("  csv        \(submission.record.path) (sha256 \(submission.record.csvSha256.prefix(12))...)")
            var members = TextTable([("#", .right), ("member", .left), ("weight", .right), ("public then", .right)])
            for (index, member) in submission.members.enumerated() {
                members.add(["\(index + 1)", member.set.ref.description, String(format: "%.4g", member.weight), formatScore(member.publicScore)])
            }
            print(indent(members.rendered))
        }

        let scores = try store.scores(of: set)
        print("\nScores")
        if scores.isEmpty {
            print("  none yet (suneung score \(set.ref) --public X)")
        } else {
            var scoreTable = TextTable([("kind", .left), ("value", .right), ("recorded", .left), ("note", .left)])
            for score in scores { scoreTable.add([score.kind.rawValue, formatScore(score.value), timestamp(score.createdAt), score.note ?? ""]) }
            print(indent(scoreTable.rendered))
        }

        print("\nAnswers")
        var answers = TextTable([("answer", .right), ("items", .right), ("share", .right)])
        let counts = Dictionary(grouping: table.rows, by: \.answer).mapValues(\.count)
        for answer in 1...PredictionRow.maxChoices {
            answers.add(["\(answer)", "\(counts[answer] ?? 0)", percent(counts[answer] ?? 0, of: table.rows.count)])
        }
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
