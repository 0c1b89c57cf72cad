import Engine
import Ensemble
import Exam
import Foundation
import Report
import Store
import Tokenizer
import Training
import Yams

/// The main job in one call: each stage is the workflow a user would run by hand
/// (predict, import, train, score, ensemble), so the pipeline adds no second way of
/// doing anything; each finds the work the store already holds and skips it.
public enum Pipeline {
    public static let keys = [
        "name", "model", "test", "gold", "zero_shot", "imports", "max_tokens", "precision", "template", "train", "top", "methods",
        "weights",
        "endpoint", "served_model", "api_key_env", "concurrency", "request_timeout"
    ]

    public struct Settings: Sendable {
        var name: String
        /// The GGUF file: the zero-shot set's model unless `endpoint` is given, and the
        /// model the training adapts.
        var model: String?
        var test: String
        var gold: String?
        var zeroShot = true
        var imports: String?
        var maxTokens: Int?
        var precision = Precision.auto
        var template: ChatTemplate?
        var train: [String: ConfigValue]?
        var top = 5
        var methods = ["vote", "average"]
        var weights = "score"
        /// The zero-shot set scored on the team's servers (`predict --endpoint`).
        var endpoints: [String] = []
        var servedModel: String?
        var apiKeyEnv: String?
        var concurrency: Int?
        var requestSeconds: Double?
    }

    /// Runs every stage that has work left; returns the pipeline as recorded.
    @discardableResult
    public static func run(
        config: String, threads: Int?, author: String?, commandLine: String, store: Store, events: WorkflowEvents = { _ in }
    ) throws -> Outcome {
        let settings = try read(config)
        let resolve = store.workspace.resolve
        let notes = Store.SetNotes(author: author)
        let test = resolve(settings.test), model = settings.model.map(resolve)
        let gold = try settings.gold.map { path -> [ExamItem] in
            let gold = try Gold(path: resolve(path))
            _ = try gold.labelled(try ExamSet.load(path: test).items, id: \.id, what: "the items of \(settings.test)")
            return gold.items
        }
        // The training settings are checked before any stage runs.
        var trainingConfig: TrainingConfig?
        if var train = settings.train {
            train["model"] = train["model"] ?? .scalar(model!)
            train["name"] = .scalar("\(settings.name)-lora")
            trainingConfig = try TrainingConfig(values: train, source: "\(config): train")
            let file = resolve(trainingConfig!.train)
            if let unlabelled = try ExamSet.load(path: file).items.first(where: { $0.answer == nil }) {
                throw TrainingError("\(file): item \(unlabelled.id) has no answer; training needs a labelled file")
            }
        }
        var members: [String] = []
        // What an earlier, interrupted run had left: said again under the summary.
        var resumed: [String] = []
        func engineRequest(model: String? = nil, checkpoint: String? = nil, name: String) -> PredictRequest {
            PredictRequest(
                model: model, checkpoint: checkpoint, dataset: test, name: name, template: settings.template, threads: threads,
                maxTokens: settings.maxTokens, precision: settings.precision, notes: notes, commandLine: commandLine)
        }
        // The zero-shot set: on the servers when the config names them, else the engine's.
        var zeroShot = engineRequest(model: model, name: "\(settings.name)-zero-shot")
        if !settings.endpoints.isEmpty {
            zeroShot = PredictRequest(
                dataset: test, name: zeroShot.name, template: settings.template, notes: notes, commandLine: commandLine)
            zeroShot.endpoints = settings.endpoints
            zeroShot.servedModel = settings.servedModel
            zeroShot.apiKeyEnv = settings.apiKeyEnv
            zeroShot.concurrency = settings.concurrency ?? zeroShot.concurrency
            zeroShot.requestSeconds = settings.requestSeconds ?? zeroShot.requestSeconds
        }
        if settings.zeroShot {
            // predict's checks, said in the config's terms (key names for option names).
            do { try zeroShot.check() } catch { throw TrainingError("\(config): \(Self.configTerms("\(error)"))") }
        }
        func predict(_ request: PredictRequest) throws {
            let scored = try store.unfinishedRows(name: request.name)
            if scored > 0 { resumed.append("predictions \(request.name): \(scored) items had been scored") }
            members.append(try Predict.run(request, store: store, events: events).ref.description)
        }

        if settings.zeroShot {
            events(
                .stage(
                    settings.endpoints.isEmpty
                        ? "1. zero-shot predictions of the base model"
                        : "1. zero-shot predictions of \(settings.servedModel!) on the servers"))
            try predict(zeroShot)
        }
        if let folder = settings.imports {
            events(.stage("2. prediction files of runs made elsewhere"))
            let files = try FileManager.default.contentsOfDirectory(atPath: resolve(folder)).filter {
                $0.hasSuffix(".csv") && $0 != "leaderboard.csv"
            }.sorted()
            for file in files {
                let report = try importPredictions(
                    [ImportRequest(file: resolve(folder) + "/" + file, name: String(file.dropLast(4)))], datasetFile: test,
                    options: PredictionFileOptions(),
                    notes: notes, lineage: Lineage(commandLine: commandLine, toolVersion: suneungVersion), store: store)[0]
                if case .created(let set) = report.outcome { events(.note("Imported \(set.ref) from \(file)")) }
                members.append(report.outcome.set.ref.description)
            }
        }
        var runName: String?
        if let trainingConfig {
            events(.stage("3. LoRA training"))
            let name = trainingConfig.name
            runName = name
            var request = TrainRequest(values: [:], source: "\(config): train", threads: threads)
            if let run = try store.trainingRun(named: name) {
                let stored = try TrainingConfig(stored: run.config)
                var given = trainingConfig
                given.model = stored.model
                guard given == stored else {
                    throw TrainingError(
                        "\(config): the train settings differ from those \(name) was trained with; give the pipeline another name to train anew"
                    )
                }
                request.resume = name
                request.values = ["model": .scalar(model!)]
                if let last = try store.checkpoints(run: name).last, last.checkpoint.step < run.totalSteps {
                    resumed.append("training \(name): from step \(last.checkpoint.step) of \(run.totalSteps)")
                }
            } else {
                request.values = try Train.values(of: trainingConfig)
            }
            try Train.run(request, store: store, events: events)

            events(.stage("4. predictions of every checkpoint"))
            for (run, checkpoint) in try store.checkpoints(run: name) {
                try predict(engineRequest(checkpoint: "\(run.name)/step-\(checkpoint.step)", name: "\(run.name)-step-\(checkpoint.step)"))
            }
        }

        events(.stage("5. scores"))
        if let gold {
            for member in members {
                try scoreOnGold(member, gold: gold, file: resolve(settings.gold!), author: author, store: store, events: events)
            }
        } else {
            events(
                .note(
                    "No gold file: the top \(settings.top) are chosen by the public scores recorded with `suneung score NAME --public X`."))
        }
        // Ranked as `ensemble --top` ranks: best public score first, copies counted once.
        let memberRefs = Set(members)
        let ranked = MemberSelection.rank(try store.summaries().filter { memberRefs.contains($0.ref) }, by: .public)
        let chosen = ranked.kept.prefix(settings.top).map(\.ref)
        for copy in ranked.skipped { events(.note("Skipped \(copy.skipped): the same answers and values as \(copy.sameAs).")) }
        var ensembles: [String] = []
        if chosen.count >= 2 {
            events(.stage("6. ensembles of the top \(chosen.count) by public score"))
            for method in settings.methods {
                let name = "\(settings.name)-top\(chosen.count)-\(method)"
                let built = try buildEnsemble(
                    EnsembleSpec(name: name, members: Array(chosen), method: method, weights: method == "vote" ? nil : settings.weights),
                    store: store,
                    lineage: Lineage(commandLine: commandLine, toolVersion: suneungVersion), author: author)
                events(
                    .note(
                        "Ensemble \(name): \(built.method) over \(built.members.count) members; \(built.created ? "recorded" : "unchanged:") \(built.recorded!) -> \(built.submissionFile!)"
                    ))
                let ref = built.recorded!
                ensembles.append(ref)
                if let gold {
                    try scoreOnGold(ref, gold: gold, file: resolve(settings.gold!), author: author, store: store, events: events)
                }
            }
        } else {
            events(
                .note(
                    "Fewer than two members have a public score: no ensemble yet (record scores with `suneung score`, then run the pipeline again)."
                ))
        }

        let record = PipelineRecord(
            name: settings.name, config: String(decoding: try readFile(config), as: UTF8.self), trainingRun: runName,
            members: members, chosen: chosen, ensembles: ensembles, gold: settings.gold.map(resolve), updatedAt: Date())
        try store.savePipeline(record)
        let report = try PipelineReport.write(store: store, pipeline: record)
        let submission = try ensembles.first.map {
            store.workspace.relative(store.workspace.submissionsFolder.appendingPathComponent("\(try store.predictionSet($0).name).csv"))
                + " (\($0))"
        }
        return Outcome(
            record: record, summary: try PipelineSummary(store: store, pipeline: record), resumed: resumed, submission: submission,
            report: store.workspace.relative(report))
    }

    /// What a run leaves: the record, its summary, what an interrupted run had done,
    /// the submission and the report.
    public struct Outcome: Sendable {
        public var record: PipelineRecord
        public var summary: PipelineSummary
        public var resumed: [String]
        public var submission: String?
        public var report: String
    }

    /// The simulated leaderboard: public and private accuracy on the gold file's halves,
    /// and local accuracy on all of it (recorded once; equal scores are not repeated).
    static func scoreOnGold(_ ref: String, gold: [ExamItem], file: String, author: String?, store: Store, events: WorkflowEvents) throws {
        let set = try store.predictionSet(ref)
        let table = try store.table(of: set)
        let publicScore = table.accuracy(against: gold.filter { isPublicItem($0.id) })
        let privateScore = table.accuracy(against: gold.filter { !isPublicItem($0.id) })
        guard publicScore.total > 0, privateScore.total > 0 else {
            throw TrainingError("\(file) labels too few of \(ref)'s items for both halves of the simulated leaderboard")
        }
        let local = table.accuracy(against: gold)
        let note = "simulated leaderboard (\(publicScore.total) public, \(privateScore.total) private items)"
        let results = try store.addScores(
            to: set,
            [
                (.public, Double(publicScore.correct) / Double(publicScore.total), note),
                (.private, Double(privateScore.correct) / Double(privateScore.total), note),
                (.local, Double(local.correct) / Double(local.total), "gold \(file): \(local.correct)/\(local.total); \(note)")
            ],
            author: author, simulated: true)
        for result in results {
            events(
                .note(
                    "\(set.ref): \(result.kind.rawValue) \(String(format: "%.4f", result.value))\(result.recorded ? "" : ", already the latest recorded")"
                ))
        }
    }

    public static func read(_ path: String) throws -> Settings {
        let text = String(decoding: try readFile(path), as: UTF8.self)
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw TrainingError("\(path): not valid YAML: \(error)") }
        guard let mapping = loaded as? [String: Any] else { throw TrainingError("\(path): expected a mapping of keys to values") }
        for key in mapping.keys.sorted() where !keys.contains(key) {
            let suggestion = nearestName(to: key, among: keys).map { " (did you mean '\($0)'?)" } ?? ""
            throw TrainingError("\(path): unknown key '\(key)'\(suggestion); the keys are: \(keys.joined(separator: ", "))")
        }
        func string(_ key: String) -> String? { mapping[key].map { "\($0)" } }
        for key in ["name", "test"] where mapping[key] == nil { throw TrainingError("\(path): '\(key)' is required") }
        var settings = Settings(name: string("name")!, model: string("model"), test: string("test")!)
        try SetRef.checkName(settings.name)
        settings.gold = string("gold")
        settings.imports = string("imports")
        if let value = mapping["max_tokens"] {
            guard let tokens = value as? Int, tokens >= 1 else { throw TrainingError("\(path): 'max_tokens' must be a whole number ≥ 1") }
            settings.maxTokens = tokens
        }
        if let name = string("precision") {
            guard let precision = Precision(rawValue: name) else {
                throw TrainingError("\(path): 'precision' must be one of \(Precision.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.precision = precision
        }
        if let name = string("template") {
            guard let template = ChatTemplate(rawValue: name) else {
                throw TrainingError("\(path): 'template' must be one of \(ChatTemplate.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.template = template
        }
        if let value = mapping["zero_shot"] {
            guard let flag = value as? Bool else { throw TrainingError("\(path): 'zero_shot' must be true or false") }
            settings.zeroShot = flag
        }
        if let value = mapping["top"] {
            guard let top = value as? Int, top >= 1 else { throw TrainingError("\(path): 'top' must be a whole number ≥ 1") }
            settings.top = top
        }
        if let value = mapping["methods"] {
            guard let methods = value as? [Any], !methods.isEmpty,
                methods.allSatisfy({ ["vote", "weighted-vote", "average"].contains("\($0)") })
            else {
                throw TrainingError("\(path): 'methods' must be a list of vote, weighted-vote, average")
            }
            settings.methods = methods.map { "\($0)" }
        }
        settings.weights = string("weights") ?? "score"
        try readEndpoints(mapping, path: path, into: &settings)
        if settings.model == nil && settings.endpoints.isEmpty {
            throw TrainingError("\(path): 'model' (a GGUF file) or 'endpoint' with 'served_model' (the team's server) is required")
        }
        if mapping["train"] != nil && settings.model == nil {
            throw TrainingError("\(path): 'train' needs 'model', the GGUF file the adapter is trained on")
        }
        if let value = mapping["train"] {
            guard let train = value as? [String: Any] else {
                throw TrainingError("\(path): 'train' must be a mapping of the trainer's keys (see config/train.yaml)")
            }
            settings.train = train.mapValues { value in (value as? [Any]).map { .list($0.map { "\($0)" }) } ?? .scalar("\(value)") }
        }
        return settings
    }

    static func configTerms(_ message: String) -> String {
        [
            ("--endpoint", "'endpoint'"), ("--served-model", "'served_model'"), ("--api-key-env", "'api_key_env'"),
            ("--concurrency", "'concurrency'"), ("--request-timeout", "'request_timeout'"), ("--template", "'template'")
        ].reduce(message) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }

    /// `endpoint` (an address or a list), `served_model`, `api_key_env`, `concurrency`
    /// and `request_timeout`: `predict --endpoint`'s options, which check their values.
    static func readEndpoints(_ mapping: [String: Any], path: String, into settings: inout Settings) throws {
        if let value = mapping["endpoint"] {
            let list = value as? [Any] ?? [value]
            guard !list.isEmpty, list.allSatisfy({ $0 is String }) else {
                throw TrainingError("\(path): 'endpoint' must be a server's address or a list of them (http://HOST:PORT/v1)")
            }
            settings.endpoints = list.map { "\($0)" }
        }
        settings.servedModel = mapping["served_model"].map { "\($0)" }
        settings.apiKeyEnv = mapping["api_key_env"].map { "\($0)" }
        guard settings.endpoints.isEmpty == (settings.servedModel == nil) else {
            throw TrainingError(
                "\(path): 'endpoint' and 'served_model' go together (the model's name as the server lists it at /v1/models)")
        }
        for key in ["api_key_env", "concurrency", "request_timeout"] where mapping[key] != nil && settings.endpoints.isEmpty {
            throw TrainingError("\(path): '\(key)' goes with 'endpoint'")
        }
        if let value = mapping["concurrency"] {
            guard let concurrency = value as? Int else { throw TrainingError("\(path): 'concurrency' must be a whole number") }
            settings.concurrency = concurrency
        }
        if let value = mapping["request_timeout"] {
            guard let seconds = (value as? Double) ?? (value as? Int).map(Double.init) else {
                throw TrainingError("\(path): 'request_timeout' must be a number of seconds")
            }
            settings.requestSeconds = seconds
        }
    }
}

/// A pipeline's members and ensembles with their scores, as the summary table and the
/// report show them.
public struct PipelineSummary: Sendable {
    public var pipeline: PipelineRecord
    public var rows:
        [(ref: String, set: PredictionSetRecord, kind: String, public: Double?, private: Double?, local: Double?, chosen: Bool)] = []

    public init(store: Store, pipeline: PipelineRecord) throws {
        self.pipeline = pipeline
        for ref in pipeline.members + pipeline.ensembles {
            let set = try store.predictionSet(ref)
            let kind =
                set.origin == .ensemble
                ? "ensemble" : set.lineage.checkpoint != nil ? "checkpoint" : set.origin == .engine ? "zero-shot" : "imported"
            rows.append(
                (
                    set.ref.description, set, kind, try store.latestScore(of: set, .public), try store.latestScore(of: set, .private),
                    try store.latestScore(of: set, .local), pipeline.chosen.contains(ref)
                ))
        }
    }
}

/// A pipeline's report: reports/NAME.html and its figures, from the store alone.
public enum PipelineReport {
    /// A workspace without a pipeline, reported as one: the visible sets over the
    /// dataset most of them predict, the best five by public score (as `--top 5`
    /// chooses them), and the ensembles over it. Not saved: it is rebuilt each time.
    public static func workspacePipeline(store: Store) throws -> PipelineRecord? {
        let sets = try store.summaries().filter { !$0.hidden && !$0.subset }
        guard
            let dataset = Dictionary(grouping: sets, by: \.datasetSha256).max(by: { ($0.value.count, $0.key) < ($1.value.count, $1.key) })?
                .key
        else { return nil }
        let over = sets.filter { $0.datasetSha256 == dataset }
        let members = over.filter { $0.origin != .ensemble }.sorted { ($0.public ?? -1, $1.name) > ($1.public ?? -1, $0.name) }.map(\.ref)
        let scored = over.filter { $0.origin != .ensemble && $0.public != nil }.count
        let chosen =
            scored == 0
            ? []
            : try MemberSelection(store: store).top(
                min(5, Set(over.filter { $0.origin != .ensemble && $0.public != nil }.map(\.csvSha256)).count), datasetFile: nil
            ).sets.map(\.ref.description)
        return PipelineRecord(
            name: "workspace", config: "", trainingRun: nil, members: members, chosen: chosen,
            ensembles: over.filter { $0.origin == .ensemble }.map(\.ref), gold: nil, updatedAt: Date())
    }

    /// Writes reports/NAME.html and reports/NAME-*.svg; returns the page's location.
    public static func write(store: Store, pipeline: PipelineRecord) throws -> URL {
        let summary = try PipelineSummary(store: store, pipeline: pipeline)
        let goldAnswers = try pipeline.gold.map { try ExamSet.load(path: $0).answers } ?? [:]
        var members: [ReportData.Member] = []
        var answersByRef: [String: [Int]] = [:], ids: Set<String> = []
        for row in summary.rows {
            let table = try store.table(of: row.set)
            answersByRef[row.ref] = table.rows.map(\.answer)
            ids.formUnion(table.rows.map(\.id))
            let counts = (1...5).map { choice in table.rows.filter { $0.answer == choice }.count }
            let publicItems =
                goldAnswers.isEmpty
                ? publicSplitItems(ofDataset: table.rows.count)
                : table.rows.filter { goldAnswers[$0.id] != nil && isPublicItem($0.id) }.count
            members.append(
                ReportData.Member(
                    ref: row.ref, kind: row.kind, publicScore: row.public, privateScore: row.private, localScore: row.local,
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
                notes.append(
                    String(
                        format: "Validation (%@): loss %.4f → %.4f, accuracy %.4f → %.4f from step %d to %d.", runName, first.loss,
                        last.loss, first.accuracy, last.accuracy, first.step, last.step))
            }
        }
        if pipeline.gold != nil {
            notes.append(
                "Public and private scores are simulated from the gold file: an item is public when the FNV-1a hash of its id is even. The error bars are ±1 binomial standard error of the public score."
            )
        }
        if !pipeline.chosen.isEmpty {
            notes.append(
                pipeline.config.isEmpty
                    ? "★ marks the \(pipeline.chosen.count) sets with the best public scores, as `--top \(pipeline.chosen.count)` would choose them (identical content once)."
                    : "★ marks the \(pipeline.chosen.count) members with the best public scores (ties: the newer first); the ensembles combine them."
            )
        }
        // `ensemble` writes submissions/NAME.csv; the first ensemble is the submission.
        let submission = try pipeline.ensembles.first.map {
            store.workspace.relative(store.workspace.submissionsFolder.appendingPathComponent("\(try store.predictionSet($0).name).csv"))
        }
        let formatter = ISO8601DateFormatter()
        let data = ReportData(
            name: pipeline.name, generated: formatter.string(from: pipeline.updatedAt), members: members, goldAnswers: goldCounts,
            trainingRun: pipeline.trainingRun, steps: steps, validation: validation, agreementLabels: compared, agreement: matrix,
            submission: submission, notes: notes)
        let folder = store.workspace.root.appendingPathComponent("reports")
        for figure in Report.figures(data) { try writeAtomically(figure.svg + "\n", to: folder.appendingPathComponent(figure.file)) }
        let page = folder.appendingPathComponent("\(pipeline.name).html")
        try writeAtomically(Report.html(data) + "\n", to: page)
        return page
    }
}
