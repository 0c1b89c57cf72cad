import ArgumentParser
import Engine
import Exam
import Foundation
import GGUF
import Store
import Workflow
import Tensor
import Tokenizer
import Training

struct PredictCommand: ParsableCommand {
    static let engineVersion = "suneung-engine 2 (float32 weights, OpenBLAS, shared-prefix reuse)"

    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Score every item of an exam CSV with a GGUF model and store the predictions with their answer-token logits.",
        discussion: """
            Each item's baseline prompt (DESIGN.md) goes through the model's chat template; \
            the logits of the tokens "1".."N" at the last position are kept and the answer \
            is their arg-max. Prompts longer than --max-tokens are shortened by cutting the \
            middle of the passage, never the question, <보기> or choices. With --adapter, a \
            PEFT LoRA adapter's deltas (scale·B·A) are merged into the model's weights. An \
            item on the same passage as the item before reuses its keys and values. Items \
            are committed one by one: a run that is killed leaves no prediction set, and \
            the same command again resumes from the items already scored. The set records \
            the model's and the adapter's sha256, the template, engine and limits in its \
            lineage.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @OptionGroup var notes: SetNotesOptions

    @Option(help: ArgumentHelp("The model file (not with --checkpoint, which names its own).", valueName: "FILE.gguf"))
    var model: String?

    @Option(help: ArgumentHelp("A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) for the model, merged into its weights.", valueName: "DIR"))
    var adapter: String?

    @Option(help: ArgumentHelp("A checkpoint of `suneung train` (RUN/step-N, or RUN for its last): its base model and adapter, as the store recorded them.", valueName: "RUN/step-N"))
    var checkpoint: String?

    @Option(help: ArgumentHelp("The exam CSV to score.", valueName: "FILE.csv"))
    var dataset: String

    @Option(help: "The prediction set's name.")
    var name: String

    @Option(help: "Chat template (default: the model's): gemma, chatml, llama3, exaone3, plain.")
    var template: ChatTemplate?

    @Option(help: "Threads for the engine (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Score only the first N items (they are written to data/ as a dataset of their own).", valueName: "N"))
    var limit: Int?

    @Option(help: ArgumentHelp("Longest prompt in tokens (default: the model's context, at most 4,096).", valueName: "N"))
    var maxTokens: Int?

    @Option(help: ArgumentHelp("A labelled exam CSV: also record the local accuracy.", valueName: "FILE"))
    var gold: String?

    @Option(help: ArgumentHelp("Correct the model's preference for answer positions: permute (every cyclic order of the choices, the probabilities of each choice's content averaged: n passes an item) or pride[:FRACTION] (the position prior estimated from the permuted passes of a seeded sample, default 5% of the items, and divided out of the others' single pass). The stored logits are the corrected ones.", valueName: "permute|pride[:F]"))
    var debias: String?

    @Option(help: ArgumentHelp("With --debias: correct toward this labelled file's answer shares instead of uniform ones (p ∝ p · target / prior).", valueName: "LABELLED.csv"))
    var priorTarget: String?

    func validate() throws {
        if let debias, DebiasMethod(parsing: debias) == nil { throw ValidationError("--debias is permute, pride or pride:FRACTION with 0 < FRACTION ≤ 1 (got '\(debias)')") }
        if priorTarget != nil && debias == nil { throw ValidationError("--prior-target goes with --debias") }
    }

    func run() throws {
        try SetRef.checkName(name)
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        let store = try options.openStore()
        try store.checkNameTakes(name, origin: .engine)
        // The model and adapter: given, or a checkpoint's (checked against the store).
        var model = self.model, adapter = self.adapter, template = self.template
        let trained = try checkpoint.map { try store.checkpoint($0) }
        if let trained {
            guard self.model == nil, self.adapter == nil else { throw ValidationError("--checkpoint names its model and adapter; leave out --model and --adapter") }
            model = trained.run.model
            adapter = store.workspace.root.appendingPathComponent(trained.checkpoint.path).path
            if template == nil, let config = try? JSONDecoder().decode(TrainingConfig.self, from: Data(trained.run.config.utf8)), let name = config.template {
                template = ChatTemplate(rawValue: name)
            }
        }
        guard let model else { throw ValidationError("--model FILE.gguf or --checkpoint RUN/step-N is required") }
        // Everything that can fail on bad input comes before the first write: the
        // items, the model, and every prompt (tokenizing all 869 takes under a second).
        let all = try ExamSet.load(path: dataset).items
        let items = limit.map { Array(all.prefix($0)) } ?? all
        let labelled = try gold.map { gold in
            let labelled = try ExamSet.load(path: gold).items.filter { $0.answer != nil }
            let ids = Set(items.map(\.id))
            guard labelled.contains(where: { ids.contains($0.id) }) else {
                throw StoreError.invalid("\(gold) labels none of the items to score (is it for another dataset?)")
            }
            return labelled
        }
        if let threads { Parallel.threads = threads }
        let file = try GGUFFile(path: model)
        let lora = try adapter.map { try LoRAAdapter(folder: $0) }
        let scorer = try Scorer(model: try Model(file: file, adapter: lora), template: template, maxTokens: maxTokens)
        let prompts = try items.map { item in
            try scorer.prompt(passage: item.paragraph) { passage in
                var cut = item
                cut.paragraph = passage
                let baseline = Prompt.baseline(cut)
                return (baseline.system, baseline.user)
            }
        }

        var examFile = dataset
        if items.count < all.count {
            examFile = try writeSubset(items, of: dataset, workspace: store.workspace)
            print("Scoring the first \(items.count) items, as the dataset \(store.workspace.relative(URL(fileURLWithPath: examFile))).")
        }
        let datasetRecord = try store.dataset(file: examFile)
        let modelSha = try sha256OfFile(model)
        let adapterSha = try adapter.map { folder in
            try sha256Hex(["adapter_config.json", "adapter_model.safetensors"].flatMap { try readFile((folder as NSString).appendingPathComponent($0)) })
        }
        if let trained {
            guard modelSha == trained.run.modelSha256 else {
                throw StoreError.invalid("\(model) has changed since \(trained.run.name) was trained on it (sha256 differs)")
            }
            guard adapterSha == trained.checkpoint.adapterSha256 else {
                throw StoreError.invalid("\(adapter!) has changed since it was saved (sha256 differs from the store's)")
            }
        }
        let method = debias.flatMap(DebiasMethod.init(parsing:))
        let targetShares = try priorTarget.map { answerPrior(try ExamSet.load(path: $0).items) }
        let targetSha = try priorTarget.map { sha256Hex(try readFile($0)) }
        let settings = ([modelSha, adapterSha ?? "no adapter", datasetRecord.sha256, scorer.template.rawValue, String(scorer.maxTokens), Self.engineVersion]
                        + (method.map { ["debias \($0)"] } ?? []) + (targetSha.map { ["target \($0)"] } ?? [])).joined(separator: "\n")
        var lineage = Lineage(commandLine: commandLineText, toolVersion: Suneung.version, datasetPath: datasetRecord.path,
                              model: URL(fileURLWithPath: model).standardizedFileURL.path, modelSha256: modelSha,
                              adapter: adapter.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, adapterSha256: adapterSha,
                              checkpoint: trained.map { "\($0.run.name)/step-\($0.checkpoint.step)" },
                              template: scorer.template.rawValue, maxTokens: scorer.maxTokens, engine: Self.engineVersion, runKey: sha256Hex(settings.utf8))
        lineage.debias = method?.description
        lineage.priorTarget = priorTarget.map { store.workspace.relative(URL(fileURLWithPath: $0)) }
        lineage.priorTargetShares = targetShares.map { Dictionary(uniqueKeysWithValues: $0.map { ("\($0.key)", $0.value) }) }
        if let finished = try store.finishedRun(key: lineage.runKey!, name: name) {
            print("Already scored: \(finished.ref) holds these predictions (same model, adapter, dataset and settings).")
            return try recordGold(labelled, store: store, set: finished)
        }
        var (run, done) = try store.startRun(key: lineage.runKey!, name: name, dataset: datasetRecord, lineage: lineage)
        if !done.isEmpty { print("Resuming \(name): \(done.count) of \(items.count) items were scored before.") }

        // The questions of one passage go together (passages in the file's order), each
        // reusing the keys and values of the one before. Every passage starts from the
        // first item's, computed alone (they share the template's start), never from the
        // previous passage's: an item's logits then depend only on its own passage's
        // earlier items, and a resumed run gives exactly what an uninterrupted one gives
        // (it recomputes the first passage and the interrupted one's scored items).
        var passages: [String: Int] = [:], groups: [[Int]] = []
        for (position, item) in items.enumerated() {
            if let group = passages[item.paragraph] { groups[group].append(position) } else {
                passages[item.paragraph] = groups.count
                groups.append([position])
            }
        }
        if let method {
            try scoreDebiased(method, target: targetShares, items: items, prompts: prompts, groups: groups, done: done, scorer: scorer, store: store, run: &run)
        } else {
            try scorePlain(items: items, prompts: prompts, groups: groups, done: done, scorer: scorer, store: store, run: run)
        }
        let shortened = prompts.filter { $0.charactersCut > 0 }.count
        if shortened > 0 { print("\(shortened) prompts were longer than \(scorer.maxTokens) tokens; their passages were shortened in the middle.") }

        switch try store.finishRun(run, dataset: datasetRecord, choiceValues: .logits, origin: .engine, notes: notes.notes) {
        case .created(let set):
            print("Stored \(set.ref): \(items.count) items with logits -> \(store.workspace.relative(store.workspace.predictionFile(for: set.ref)))")
            try recordGold(labelled, store: store, set: set)
        case .identical(let set):
            print("No new version: the predictions equal \(set.ref).")
            try recordGold(labelled, store: store, set: set)
        }
    }

    /// Scores each item once, the questions of a passage one after another.
    func scorePlain(items: [ExamItem], prompts: [Scorer.Prompt], groups: [[Int]], done: [Int: PredictionRow], scorer: Scorer, store: Store, run: PredictionRunRecord) throws {
        let pending = groups.indices.filter { groups[$0].contains { done[$0] == nil } }
        var progress = ProgressBar(total: items.count - done.count)
        var firstItem = PrefixCache(), reused = 0, total = 0
        for index in pending.isEmpty ? [] : Set(pending + [0]).sorted() {
            var cache = firstItem
            for position in groups[index] {
                let item = items[position]
                let logits = try scorer.answerLogits(prompts[position].tokens, choices: item.choices.count, cache: &cache)
                if index == 0 && position == groups[0][0] { firstItem = cache }
                guard done[position] == nil else { continue }
                reused += cache.reused
                total += prompts[position].tokens.count
                let answer = logits.indices.max { (logits[$0], -$0) < (logits[$1], -$1) }! + 1
                let values = (0..<PredictionRow.maxChoices).map { $0 < logits.count ? Double(logits[$0]) : nil }
                try store.addRunRow(run, position: position, row: PredictionRow(id: item.id, answer: answer, values: values))
                progress.advance(tokens: prompts[position].tokens.count)
            }
        }
        if reused > 0 {
            print("\(reused) of \(total) prompt tokens were reused from the items before (the template's start, and the passage for its later questions).")
        }
    }

    /// Scores with every cyclic permutation of the choices (all items for `permute`, a
    /// seeded sample for `pride`), then, for `pride`, the other items once, dividing out
    /// the position prior the sample's passes show. Passages keep their reuse of keys and
    /// values: the permutations of a question share its passage and question.
    func scoreDebiased(_ method: DebiasMethod, target: [Int: [Double]]?, items: [ExamItem], prompts: [Scorer.Prompt], groups: [[Int]], done: [Int: PredictionRow],
                       scorer: Scorer, store: Store, run: inout PredictionRunRecord) throws {
        let choiceCounts = items.map(\.choices.count)
        let sample = method.sample(choiceCounts: choiceCounts)
        // PriDe needs every sampled item's passes for its prior, even those scored
        // before a resume; `permute` skips what is done.
        let needsPasses = { (position: Int) in sample.contains(position) && (done[position] == nil || method != .permute) }
        let passes = (0..<items.count).reduce(0) { $0 + (needsPasses($1) ? choiceCounts[$1] : (!sample.contains($1) && done[$1] == nil ? 1 : 0)) }
        var progress = ProgressBar(total: passes)
        var firstItem = PrefixCache()
        _ = try scorer.answerLogits(prompts[0].tokens, choices: choiceCounts[0], cache: &firstItem)
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
                    let prompt = k == 0 ? prompts[position] : try scorer.prompt(passage: item.paragraph) { passage in
                        var cut = item
                        cut.paragraph = passage
                        cut.choices = rotated(item.choices, by: k)
                        let baseline = Prompt.baseline(cut)
                        return (baseline.system, baseline.user)
                    }
                    let logits = try scorer.answerLogits(prompt.tokens, choices: n, cache: &cache)
                    let p = softmax(logits.map(Double.init))
                    positionProbabilities.append(p)
                    priorSum[n] = zip(priorSum[n] ?? Array(repeating: 0, count: n), p).map(+)
                    priorPasses[n, default: 0] += 1
                    progress.advance(tokens: prompt.tokens.count)
                }
                try record(position, probabilities: corrected(contentProbabilities(passes: positionProbabilities), prior: nil, target: target?[n]))
            }
        }
        guard case .pride = method else { return }
        // The prior over positions: the mean of the sample's position probabilities.
        let prior = Dictionary(uniqueKeysWithValues: priorSum.map { n, sum in (n, sum.map { $0 / Double(priorPasses[n]!) }) })
        run.lineage.debiasPrior = Dictionary(uniqueKeysWithValues: prior.map { ("\($0.key)", $0.value) })
        try store.updateLineage(of: run)
        print("PriDe's position prior from \(sample.count) sampled items: " + prior.keys.sorted().map { n in "\(n) choices " + prior[n]!.map { String(format: "%.3f", $0) }.joined(separator: " ") }.joined(separator: "; "))
        for group in groups {
            var cache = firstItem
            for position in group where !sample.contains(position) && done[position] == nil {
                let n = choiceCounts[position]
                let logits = try scorer.answerLogits(prompts[position].tokens, choices: n, cache: &cache)
                try record(position, probabilities: corrected(softmax(logits.map(Double.init)), prior: prior[n], target: target?[n]))
                progress.advance(tokens: prompts[position].tokens.count)
            }
        }
    }

    func recordGold(_ labelled: [ExamItem]?, store: Store, set: PredictionSetRecord) throws {
        guard let labelled, let gold else { return }
        let (correct, total) = try store.table(of: set).accuracy(against: labelled)
        try store.addScores(to: set, [(.local, Double(correct) / Double(total), "gold \(gold): \(correct)/\(total)")], author: notes.author ?? defaultAuthor())
        print("\(set.ref): local \(formatScore(Double(correct) / Double(total))) (\(correct)/\(total) on \(gold))")
    }

    /// The first items of an exam file as a file of their own in data/, so that the
    /// prediction set is over a dataset that exists on disk.
    func writeSubset(_ items: [ExamItem], of path: String, workspace: Workspace) throws -> String {
        let bytes = try readFile(path)
        let records = try CSV.parse(bytes)
        // The source's hash in the name: two files called test.csv get two subsets.
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let url = workspace.root.appendingPathComponent("data/\(stem).\(sha256Hex(bytes).prefix(8)).first-\(items.count).csv")
        try writeAtomically(CSV.write(records.prefix(items.count + 1).map(\.fields)), to: url)
        return url.path
    }
}
