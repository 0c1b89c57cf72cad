import Engine
import Exam
import Foundation
import GGUF
import Serving
import Store
import Tensor
import Tokenizer
import Training

/// What `predict` is asked: a model (or a checkpoint), an exam file, a name, and the
/// scoring settings. The pipeline builds one per stage.
public struct PredictRequest: Sendable {
    public var model: String?
    public var adapter: String?
    public var checkpoint: String?
    public var dataset: String
    public var name: String
    public var template: ChatTemplate?
    public var threads: Int?
    public var limit: Int?
    public var maxTokens: Int?
    /// The engine's precision (`auto`: the model file's own, `Precision.resolved(for:)`).
    public var precision: Precision
    public var gold: String?
    public var debias: String?
    public var priorTarget: String?
    public var notes: Store.SetNotes
    /// Kept in the set's lineage.
    public var commandLine: String
    /// Scoring on OpenAI-compatible servers instead of the embedded engine
    /// (`PredictOnEndpoints`): their addresses, the model they serve, the environment
    /// variable that holds their key, requests in flight per server, seconds per request.
    public var endpoints: [String] = []
    public var servedModel: String?
    public var apiKeyEnv: String?
    public var concurrency = 4
    public var requestSeconds = 300.0

    public init(
        model: String? = nil, adapter: String? = nil, checkpoint: String? = nil, dataset: String, name: String,
        template: ChatTemplate? = nil, threads: Int? = nil, limit: Int? = nil,
        maxTokens: Int? = nil, precision: Precision = .auto, gold: String? = nil, debias: String? = nil, priorTarget: String? = nil,
        notes: Store.SetNotes = Store.SetNotes(), commandLine: String
    ) {
        self.model = model
        self.adapter = adapter
        self.checkpoint = checkpoint
        self.dataset = dataset
        self.name = name
        self.template = template
        self.threads = threads
        self.limit = limit
        self.maxTokens = maxTokens
        self.precision = precision
        self.gold = gold
        self.debias = debias
        self.priorTarget = priorTarget
        self.notes = notes
        self.commandLine = commandLine
    }

    static let needsModel = "--model FILE.gguf or --checkpoint RUN/step-N is required"

    /// The combinations that cannot work, before anything is read: a usage error.
    public func check() throws {
        try SetRef.checkName(name)
        if let debias, DebiasMethod(parsing: debias) == nil {
            throw UsageError("--debias is permute, pride or pride:FRACTION with 0 < FRACTION ≤ 1 (got '\(excerpt(debias))')")
        }
        if priorTarget != nil && debias == nil { throw UsageError("--prior-target goes with --debias") }
        if let limit, limit < 1 { throw UsageError("--limit must be at least 1") }
        if checkpoint != nil && (model != nil || adapter != nil) {
            throw UsageError("--checkpoint names its model and adapter; leave out --model and --adapter")
        }
        if !endpoints.isEmpty || servedModel != nil || apiKeyEnv != nil {
            try checkEndpoints()
            return
        }
        if checkpoint == nil && model == nil { throw UsageError(Self.needsModel) }
    }

    func checkEndpoints() throws {
        guard !endpoints.isEmpty, servedModel != nil else {
            throw UsageError("--endpoint URL and --served-model NAME go together (the model's name as the server lists it at /v1/models)")
        }
        let engineOnly = [
            ("--model", model != nil), ("--adapter", adapter != nil), ("--checkpoint", checkpoint != nil), ("--threads", threads != nil),
            ("--max-tokens", maxTokens != nil), ("--precision", precision != .auto), ("--debias", debias != nil)
        ]
        if let (option, _) = engineOnly.first(where: \.1) {
            throw UsageError("\(option) is for the embedded engine; with --endpoint the server's model scores (leave out \(option))")
        }
        let addresses = try endpoints.map { address in
            do { return try Endpoint(address: address, key: nil, seconds: 1).url } catch let error as EndpointError {
                throw UsageError(error.message)
            }
        }
        if Set(addresses).count < addresses.count { throw UsageError("an --endpoint is given twice") }
        guard (1...64).contains(concurrency) else { throw UsageError("--concurrency must be 1 to 64 requests per endpoint") }
        guard (1...3600).contains(requestSeconds) else { throw UsageError("--request-timeout must be 1 to 3600 seconds") }
        if let apiKeyEnv, apiKeyEnv.isEmpty || !apiKeyEnv.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw UsageError("--api-key-env takes the name of an environment variable (letters, digits, _), not the key itself")
        }
    }
}

/// The items a request scores (the first `--limit` of the dataset) with their gold
/// labels, read before anything is written; both ways of scoring store them alike.
struct ChosenItems {
    let request: PredictRequest
    let all: [ExamItem]
    let items: [ExamItem]
    let labelled: [ExamItem]?

    init(_ request: PredictRequest) throws {
        self.request = request
        let all = try ExamSet.load(path: request.dataset).items
        let items = request.limit.map { Array(all.prefix($0)) } ?? all
        (self.all, self.items) = (all, items)
        labelled = try request.gold.map { path in
            let gold = try Gold(path: path)
            _ = try gold.labelled(items, id: \.id, what: "the items to score")
            return gold.items
        }
    }

    /// The dataset the set predicts: the file, or the first items written as a subset.
    func record(store: Store, events: WorkflowEvents) throws -> DatasetRecord {
        var file = request.dataset
        if items.count < all.count {
            file = try Predict.writeSubset(items, of: request.dataset, workspace: store.workspace)
            events(.note("Scoring the first \(items.count) items, as the dataset \(store.workspace.relative(URL(fileURLWithPath: file)))."))
        }
        return try store.dataset(file: file)
    }

    /// The local accuracy on the gold file, recorded with the set.
    func recordGold(store: Store, set: PredictionSetRecord, events: WorkflowEvents) throws {
        guard let labelled, let file = request.gold else { return }
        let (correct, total) = try store.table(of: set).accuracy(against: labelled)
        try store.addScores(
            to: set, [(.local, Double(correct) / Double(total), "gold \(file): \(correct)/\(total)")], author: request.notes.author)
        events(.note("\(set.ref): local \(String(format: "%.4f", Double(correct) / Double(total))) (\(correct)/\(total) on \(file))"))
    }
}

/// Scoring exam items with a GGUF model: `predict`, and the pipeline's stages 1 and 4.
public enum Predict {
    /// The engine's version; the lineage adds the precision and the kernel that ran.
    public static let engineVersion = "suneung-engine 3 (shared-prefix reuse)"

    /// Scores every item and stores the set (or finds the finished run with the same
    /// settings, or resumes an interrupted one); returns the set.
    @discardableResult
    public static func run(_ request: PredictRequest, store: Store, events: WorkflowEvents = { _ in }) throws -> PredictionSetRecord {
        try request.check()
        if !request.endpoints.isEmpty { return try PredictOnEndpoints.run(request, store: store, events: events) }
        let name = request.name
        try store.checkNameTakes(name, origin: .engine)
        // The model and adapter: given, or a checkpoint's (checked against the store).
        var model = request.model, adapter = request.adapter, template = request.template
        let trained = try request.checkpoint.map { try store.checkpoint($0) }
        if let trained {
            model = trained.run.model
            adapter = store.workspace.root.appendingPathComponent(trained.checkpoint.path).path
            if template == nil, let config = try? TrainingConfig(stored: trained.run.config), let name = config.template {
                template = ChatTemplate(rawValue: name)
            }
        }
        guard let model else { throw StoreError.invalid(PredictRequest.needsModel) }
        // Everything that can fail on bad input comes before the first write: the
        // items, the model, and every prompt (tokenizing all 869 takes under a second).
        let chosen = try ChosenItems(request)
        let items = chosen.items
        let targetShares = try request.priorTarget.map { try Self.targetShares($0, for: items) }
        if let threads = request.threads { Parallel.threads = threads }
        let file = try GGUFFile(path: model)
        let lora = try adapter.map { try LoRAAdapter(path: $0) }
        let scorer = try Scorer(
            model: try Model(file: file, adapter: lora, precision: request.precision), template: template, maxTokens: request.maxTokens)
        let prompts = try items.map { try scorer.prompt(for: $0) }

        let datasetRecord = try chosen.record(store: store, events: events)
        let modelSha = try sha256OfFile(model)
        let adapterSha = try adapter.map(Self.adapterSha256)
        if let trained {
            guard modelSha == trained.run.modelSha256 else {
                throw StoreError.invalid("\(model) has changed since \(trained.run.name) was trained on it (sha256 differs)")
            }
            guard adapterSha == trained.checkpoint.adapterSha256 else {
                throw StoreError.invalid("\(adapter!) has changed since it was saved (sha256 differs from the store's)")
            }
        }
        let method = request.debias.flatMap(DebiasMethod.init(parsing:))
        let priorTarget = request.priorTarget
        let targetSha = try priorTarget.map { sha256Hex(try readFile($0)) }
        let settings =
            ([
                modelSha, adapterSha ?? "no adapter", datasetRecord.sha256, scorer.template.rawValue, String(scorer.maxTokens),
                engineVersion,
                "precision \(scorer.model.precision.rawValue)"
            ]
            + (method.map { ["debias \($0)"] } ?? []) + (targetSha.map { ["target \($0)"] } ?? [])).joined(separator: "\n")
        var lineage = Lineage(
            commandLine: request.commandLine, toolVersion: suneungVersion, datasetPath: datasetRecord.path,
            model: URL(fileURLWithPath: model).standardizedFileURL.path, modelSha256: modelSha,
            adapter: adapter.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, adapterSha256: adapterSha,
            checkpoint: trained.map { "\($0.run.name)/step-\($0.checkpoint.step)" },
            template: scorer.template.rawValue, maxTokens: scorer.maxTokens,
            engine: "\(engineVersion); \(scorer.model.precision.kernelDescription)", runKey: sha256Hex(settings.utf8))
        lineage.debias = method?.description
        lineage.priorTarget = priorTarget.map { store.workspace.relative(URL(fileURLWithPath: $0)) }
        lineage.priorTargetShares = targetShares.map { Dictionary(uniqueKeysWithValues: $0.map { ("\($0.key)", $0.value) }) }
        if let finished = try store.finishedRun(key: lineage.runKey!, name: name) {
            events(.note("Already scored: \(finished.ref) holds these predictions (same model, adapter, dataset and settings)."))
            try chosen.recordGold(store: store, set: finished, events: events)
            return finished
        }
        var (run, done) = try store.startRun(key: lineage.runKey!, name: name, dataset: datasetRecord, lineage: lineage)
        if !done.isEmpty { events(.note("Resuming \(name): \(done.count) of \(items.count) items were scored before.")) }

        // The questions of one passage go together (passages in the file's order), each
        // reusing the keys and values of the one before. Every passage starts from the
        // first item's, computed alone (they share the template's start), never from the
        // previous passage's: an item's logits then depend only on its own passage's
        // earlier items, and a resumed run gives exactly what an uninterrupted one gives
        // (it recomputes the first passage and the interrupted one's scored items).
        var passages: [String: Int] = [:], groups: [[Int]] = []
        for (position, item) in items.enumerated() {
            if let group = passages[item.paragraph] {
                groups[group].append(position)
            } else {
                passages[item.paragraph] = groups.count
                groups.append([position])
            }
        }
        if let method {
            try Self.scoreDebiased(
                method, target: targetShares, items: items, prompts: prompts, groups: groups, done: done, scorer: scorer, store: store,
                run: &run, events: events)
        } else {
            try Self.scorePlain(
                items: items, prompts: prompts, groups: groups, done: done, scorer: scorer, store: store, run: run, events: events)
        }
        let shortened = prompts.filter { $0.charactersCut > 0 }.count
        if shortened > 0 {
            events(.note("\(shortened) prompts were longer than \(scorer.maxTokens) tokens; their passages were shortened in the middle."))
        }

        return try finish(run, dataset: datasetRecord, values: "logits", chosen: chosen, store: store, events: events)
    }

    /// A complete run made the prediction set (or found equal to the latest version), said
    /// so, with the local accuracy recorded when there is a gold file.
    static func finish(
        _ run: PredictionRunRecord, dataset: DatasetRecord, values: String, chosen: ChosenItems, store: Store, events: WorkflowEvents
    ) throws -> PredictionSetRecord {
        let set: PredictionSetRecord
        switch try store.finishRun(run, dataset: dataset, choiceValues: .logits, origin: .engine, notes: chosen.request.notes) {
        case .created(let created):
            set = created
            events(
                .note(
                    "Stored \(set.ref): \(dataset.itemCount) items with \(values) -> \(store.workspace.relative(store.workspace.predictionFile(for: set.ref)))"
                ))
        case .identical(let same):
            set = same
            events(.note("No new version: the predictions equal \(set.ref)."))
        }
        try chosen.recordGold(store: store, set: set, events: events)
        return set
    }

    /// Scores each item once, the questions of a passage one after another.
    static func scorePlain(
        items: [ExamItem], prompts: [Scorer.Prompt], groups: [[Int]], done: [Int: PredictionRow], scorer: Scorer, store: Store,
        run: PredictionRunRecord, events: WorkflowEvents
    ) throws {
        let pending = groups.indices.filter { groups[$0].contains { done[$0] == nil } }
        events(.begin(total: items.count - done.count))
        var firstItem = PrefixCache(), reused = 0, total = 0
        for index in pending.isEmpty ? [] : Set(pending + [0]).sorted() {
            var cache = firstItem
            for position in groups[index] {
                let item = items[position]
                let logits = try scorer.answerLogits(prompts[position].tokens, choices: item.choices.count, cache: &cache, item: item.id)
                if index == 0 && position == groups[0][0] { firstItem = cache }
                guard done[position] == nil else { continue }
                reused += cache.reused
                total += prompts[position].tokens.count
                let answer = logits.indices.max { (logits[$0], -$0) < (logits[$1], -$1) }! + 1
                let values = (0..<PredictionRow.maxChoices).map { $0 < logits.count ? Double(logits[$0]) : nil }
                try store.addRunRow(run, position: position, row: PredictionRow(id: item.id, answer: answer, values: values))
                events(.item(tokens: prompts[position].tokens.count))
            }
        }
        if reused > 0 {
            events(
                .note(
                    "\(reused) of \(total) prompt tokens were reused from the items before (the template's start, and the passage for its later questions)."
                ))
        }
    }

    /// Scores with every cyclic permutation of the choices (all items for `permute`, a
    /// seeded sample for `pride`), then, for `pride`, the other items once, dividing out
    /// the position prior the sample's passes show. Passages keep their reuse of keys and
    /// values: the permutations of a question share its passage and question.
    static func scoreDebiased(
        _ method: DebiasMethod, target: [Int: [Double]]?, items: [ExamItem], prompts: [Scorer.Prompt], groups: [[Int]],
        done: [Int: PredictionRow],
        scorer: Scorer, store: Store, run: inout PredictionRunRecord, events: WorkflowEvents
    ) throws {
        let choiceCounts = items.map(\.choices.count)
        let sample = method.sample(choiceCounts: choiceCounts)
        // PriDe needs every sampled item's passes for its prior, even those scored
        // before a resume; `permute` skips what is done.
        let needsPasses = { (position: Int) in sample.contains(position) && (done[position] == nil || method != .permute) }
        let passes = (0..<items.count).reduce(0) {
            $0 + (needsPasses($1) ? choiceCounts[$1] : (!sample.contains($1) && done[$1] == nil ? 1 : 0))
        }
        events(.begin(total: passes))
        var firstItem = PrefixCache()
        _ = try scorer.answerLogits(prompts[0].tokens, choices: choiceCounts[0], cache: &firstItem, item: items[0].id)
        func record(_ position: Int, probabilities: [Double]) throws {
            guard done[position] == nil else { return }
            let answer = probabilities.indices.max { (probabilities[$0], -$0) < (probabilities[$1], -$1) }! + 1
            let values = (0..<PredictionRow.maxChoices).map { $0 < probabilities.count ? log(max(probabilities[$0], 1e-30)) : nil }
            try store.addRunRow(run, position: position, row: PredictionRow(id: items[position].id, answer: answer, values: values))
        }
        var priorSum: [Int: [Double]] = [:], priorPasses: [Int: Int] = [:]
        for group in groups {
            var cache = firstItem
            for position in group where needsPasses(position) {
                let item = items[position], n = item.choices.count
                var positionProbabilities: [[Double]] = []
                for k in 0..<n {
                    var permuted = item
                    permuted.choices = rotated(item.choices, by: k)
                    let prompt = k == 0 ? prompts[position] : try scorer.prompt(for: permuted)
                    let logits = try scorer.answerLogits(prompt.tokens, choices: n, cache: &cache, item: item.id)
                    let p = softmax(logits.map(Double.init))
                    positionProbabilities.append(p)
                    priorSum[n] = zip(priorSum[n] ?? Array(repeating: 0, count: n), p).map(+)
                    priorPasses[n, default: 0] += 1
                    events(.item(tokens: prompt.tokens.count))
                }
                try record(
                    position, probabilities: corrected(contentProbabilities(passes: positionProbabilities), prior: nil, target: target?[n]))
            }
        }
        guard case .pride = method else { return }
        // The prior over positions: the mean of the sample's position probabilities.
        let prior = Dictionary(uniqueKeysWithValues: priorSum.map { n, sum in (n, sum.map { $0 / Double(priorPasses[n]!) }) })
        run.lineage.debiasPrior = Dictionary(uniqueKeysWithValues: prior.map { ("\($0.key)", $0.value) })
        try store.updateLineage(of: run)
        events(
            .note(
                "PriDe's position prior from \(sample.count) sampled items: "
                    + prior.keys.sorted().map { n in "\(n) choices " + prior[n]!.map { String(format: "%.3f", $0) }.joined(separator: " ") }
                    .joined(separator: "; ")))
        for group in groups {
            var cache = firstItem
            for position in group where !sample.contains(position) && done[position] == nil {
                let n = choiceCounts[position]
                let logits = try scorer.answerLogits(prompts[position].tokens, choices: n, cache: &cache, item: items[position].id)
                try record(position, probabilities: corrected(softmax(logits.map(Double.init)), prior: prior[n], target: target?[n]))
                events(.item(tokens: prompts[position].tokens.count))
            }
        }
    }

    /// A --prior-target file's answer shares per number of choices. A position that no
    /// labelled item answers has the share 0, and p · 0 / prior would rule it out on every
    /// item with that many choices, whatever the model says: refused (for the numbers of
    /// choices the items have) rather than warned about, as a file too small to show
    /// every position is too small to estimate the shares from.
    static func targetShares(_ path: String, for items: [ExamItem]) throws -> [Int: [Double]] {
        let labelled = try ExamSet.load(path: path).items.filter { $0.answer != nil }
        let shares = answerPrior(labelled)
        for n in Set(items.map(\.choices.count)).sorted() {
            guard let zero = shares[n]?.firstIndex(of: 0) else { continue }
            let count = labelled.filter { $0.choices.count == n }.count
            throw StoreError.invalid(
                "\(path): none of its \(count) labelled items with \(n) choices has the answer \(zero + 1), so --prior-target would rule out position \(zero + 1) on every \(n)-choice item; give a labelled file in which every position is some item's answer, or leave out --prior-target"
            )
        }
        return shares
    }

    /// An adapter's sha256: of a PEFT folder's config and weights one after the other,
    /// or of an adapter GGUF file.
    public static func adapterSha256(_ path: String) throws -> String {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            return try sha256OfFile(path)
        }
        return sha256Hex(try [PEFT.configFile, PEFT.weightsFile].flatMap { try readFile((path as NSString).appendingPathComponent($0)) })
    }

    /// The first items of an exam file as a file of their own in data/, so that the
    /// prediction set is over a dataset that exists on disk.
    static func writeSubset(_ items: [ExamItem], of path: String, workspace: Workspace) throws -> String {
        let bytes = try readFile(path)
        let records = try CSV.parse(bytes)
        // The source's hash in the name: two files called test.csv get two subsets.
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let url = workspace.root.appendingPathComponent("data/\(stem).\(sha256Hex(bytes).prefix(8)).first-\(items.count).csv")
        try writeAtomically(CSV.write(records.prefix(items.count + 1).map(\.fields)), to: url)
        return url.path
    }
}
