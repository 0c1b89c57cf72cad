import ArgumentParser
import Ensemble
import Exam
import Foundation
import Report
import Store
import Workflow

/// A pipeline's members and ensembles with their scores, as the summary table and the
/// report show them.
struct Summary {
    let store: Store
    let pipeline: PipelineRecord
    var rows: [(ref: String, set: PredictionSetRecord, kind: String, public: Double?, private: Double?, local: Double?, chosen: Bool)] = []

    init(store: Store, pipeline: PipelineRecord) throws {
        self.store = store
        self.pipeline = pipeline
        for ref in pipeline.members + pipeline.ensembles {
            let set = try store.predictionSet(ref)
            let kind = set.origin == .ensemble ? "ensemble" : set.lineage.checkpoint != nil ? "checkpoint" : set.origin == .engine ? "zero-shot" : "imported"
            rows.append((set.ref.description, set, kind, try store.latestScore(of: set, .public), try store.latestScore(of: set, .private),
                         try store.latestScore(of: set, .local), pipeline.chosen.contains(ref)))
        }
    }

    var table: TextTable {
        var table = TextTable([("set", .left), ("kind", .left), ("public", .right), ("private", .right), ("local", .right), ("top \(pipeline.chosen.count)", .left)])
        for row in rows {
            table.add([row.ref, row.kind, formatScore(row.public), formatScore(row.private), formatScore(row.local), row.chosen ? "*" : ""])
        }
        return table
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Rebuild a pipeline's report (reports/NAME.html and its figures as SVG files) from the store alone.",
        discussion: """
            The page is self-contained (inline SVG, no script, no network): the summary \
            table, the training and validation loss, the public and private score of \
            every member and ensemble with the public split's standard error, the \
            agreement of the top five and the ensembles, and the answer distribution of \
            each member against the gold. In a workspace where no pipeline has run (one that \
            only imports), it reports the sets over the dataset most of them predict: their \
            scores, the agreement of the best five by public score and the ensembles, and \
            their answer distributions, as reports/workspace.html.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The pipeline's name (default: the last one run).")
    var name: String?

    func run() throws {
        let store = try options.openStore()
        let all = try store.pipelines()
        guard let pipeline = try name.map({ name in
            guard let found = try store.pipeline(named: name) else {
                throw StoreError.notFound("no pipeline named \(name)\(nearestName(to: name, among: all.map(\.name)).map { " (did you mean \($0)?)" } ?? "")")
            }
            return found
        }) ?? all.first ?? Self.workspacePipeline(store: store) else {
            throw StoreError.notFound("nothing to report: no prediction sets yet (suneung import FILE --name NAME --dataset TEST.csv)")
        }
        try store.requireWritable()
        print("Report: \(store.workspace.relative(try Self.write(store: store, pipeline: pipeline)))")
    }

    /// A workspace without a pipeline, reported as one: the visible sets over the
    /// dataset most of them predict, the best five by public score (as `--top 5`
    /// chooses them), and the ensembles over it. Not saved: it is rebuilt each time.
    static func workspacePipeline(store: Store) throws -> PipelineRecord? {
        let sets = try store.summaries().filter { !$0.hidden && !$0.subset }
        guard let dataset = Dictionary(grouping: sets, by: \.datasetSha256).max(by: { ($0.value.count, $0.key) < ($1.value.count, $1.key) })?.key else { return nil }
        let over = sets.filter { $0.datasetSha256 == dataset }
        let members = over.filter { $0.origin != .ensemble }.sorted { ($0.public ?? -1, $1.name) > ($1.public ?? -1, $0.name) }.map(\.ref)
        let scored = over.filter { $0.origin != .ensemble && $0.public != nil }.count
        let chosen = scored == 0 ? [] : try MemberSelection(store: store).top(min(5, Set(over.filter { $0.origin != .ensemble && $0.public != nil }.map(\.csvSha256)).count), datasetFile: nil).sets.map(\.ref.description)
        return PipelineRecord(name: "workspace", config: "", trainingRun: nil, members: members, chosen: chosen, ensembles: over.filter { $0.origin == .ensemble }.map(\.ref), gold: nil, updatedAt: Date())
    }

    /// Writes reports/NAME.html and reports/NAME-*.svg; returns the page's location.
    static func write(store: Store, pipeline: PipelineRecord) throws -> URL {
        let summary = try Summary(store: store, pipeline: pipeline)
        let goldAnswers = try pipeline.gold.map { try ExamSet.load(path: $0).answers } ?? [:]
        var members: [ReportData.Member] = []
        var answersByRef: [String: [Int]] = [:], ids: Set<String> = []
        for row in summary.rows {
            let table = try store.table(of: row.set)
            answersByRef[row.ref] = table.rows.map(\.answer)
            ids.formUnion(table.rows.map(\.id))
            let counts = (1...5).map { choice in table.rows.filter { $0.answer == choice }.count }
            let publicItems = goldAnswers.isEmpty ? table.rows.count / 2 : table.rows.filter { goldAnswers[$0.id] != nil && isPublicItem($0.id) }.count
            members.append(ReportData.Member(ref: row.ref, kind: row.kind, publicScore: row.public, privateScore: row.private, localScore: row.local,
                                             publicItems: publicItems, chosen: row.chosen, answers: counts))
        }
        // The gold's answers over the items the members predict.
        let goldOfItems = goldAnswers.filter { ids.contains($0.key) }.values
        let goldCounts = goldAnswers.isEmpty ? nil : (1...5).map { choice in goldOfItems.filter { $0 == choice }.count }
        let compared = summary.rows.filter { $0.chosen || $0.kind == "ensemble" }.map(\.ref)
        let matrix = compared.map { a in compared.map { b in agreement(answersByRef[a]!, answersByRef[b]!) } }
        var steps: [(step: Int, loss: Double)] = [], validation: [(step: Int, loss: Double, accuracy: Double)] = []
        var notes: [String] = []
        if let runName = pipeline.trainingRun, let run = try store.trainingRun(named: runName) {
            steps = try store.trainingLog(runId: run.id!).map { ($0.step, $0.loss) }
            validation = try store.evaluations(runId: run.id!).map { ($0.step, $0.loss, $0.accuracy) }
            if let first = validation.first, let last = validation.last, last.step > first.step {
                notes.append(String(format: "Validation (%@): loss %.4f → %.4f, accuracy %.4f → %.4f from step %d to %d.", runName, first.loss, last.loss, first.accuracy, last.accuracy, first.step, last.step))
            }
        }
        if pipeline.gold != nil {
            notes.append("Public and private scores are simulated from the gold file: an item is public when the FNV-1a hash of its id is even. The error bars are ±1 binomial standard error of the public score.")
        }
        if !pipeline.chosen.isEmpty {
            notes.append(pipeline.config.isEmpty
                ? "★ marks the \(pipeline.chosen.count) sets with the best public scores, as `--top \(pipeline.chosen.count)` would choose them (identical content once)."
                : "★ marks the \(pipeline.chosen.count) members with the best public scores (ties: the newer first); the ensembles combine them.")
        }
        // `ensemble` writes submissions/NAME.csv; the first ensemble is the submission.
        let submission = try pipeline.ensembles.first.map {
            store.workspace.relative(store.workspace.submissionsFolder.appendingPathComponent("\(try store.predictionSet($0).name).csv"))
        }
        let formatter = ISO8601DateFormatter()
        let data = ReportData(name: pipeline.name, generated: formatter.string(from: pipeline.updatedAt), members: members, goldAnswers: goldCounts,
                              trainingRun: pipeline.trainingRun, steps: steps, validation: validation, agreementLabels: compared, agreement: matrix,
                              submission: submission, notes: notes)
        let folder = store.workspace.root.appendingPathComponent("reports")
        for figure in Report.figures(data) { try writeAtomically(figure.svg + "\n", to: folder.appendingPathComponent(figure.file)) }
        let page = folder.appendingPathComponent("\(pipeline.name).html")
        try writeAtomically(Report.html(data) + "\n", to: page)
        return page
    }
}
