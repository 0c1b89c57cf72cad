import ArgumentParser
import Exam
import Foundation
import Store
import Training
import Yams

/// The main job in one command. Each stage is the command a user would run by hand
/// (predict, train, score, ensemble), so the pipeline adds no second way of doing
/// anything; each finds the work the store already holds and skips it.
struct PipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Train, predict per checkpoint, score, ensemble the top 5, export the submission and write the report: one resumable command.",
        discussion: """
            Stages: (1) zero-shot predictions of the base model on the test set; (2) the \
            prediction files of runs made elsewhere (`imports`); (3) LoRA training with \
            checkpoints (the keys of config/train.yaml under `train:`); (4) predictions of \
            every checkpoint; (5) scores: with a labelled copy of the test set (`gold`), a \
            simulated leaderboard (public: items whose id's FNV-1a hash is even; private: \
            odd), else the public scores you record with `suneung score`; (6) the top 5 by \
            public score, ensembled by vote and by score-weighted average, exported to \
            submissions/; (7) a summary table and reports/NAME.html. Run it again and it \
            redoes nothing; kill it and the next run resumes where it stopped.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: ArgumentHelp("The pipeline's YAML file (see config/pipeline.yaml).", valueName: "FILE.yaml"))
    var config: String

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    static let keys = ["name", "model", "test", "gold", "zero_shot", "imports", "max_tokens", "template", "train", "top", "methods", "weights"]

    struct Settings {
        var name: String
        var model: String
        var test: String
        var gold: String?
        var zeroShot = true
        var imports: String?
        var maxTokens: String?
        var template: String?
        var train: [String: ConfigValue]?
        var top = 5
        var methods = ["vote", "average"]
        var weights = "score"
    }

    func run() throws {
        let store = try options.openStore()
        let root = store.workspace.root
        let settings = try Self.read(config)
        let resolve = store.workspace.resolve
        let workspace = ["--workspace", root.path]
        let threadFlags = threads.map { ["--threads", "\($0)"] } ?? []
        let test = resolve(settings.test), model = resolve(settings.model)
        let gold = try settings.gold.map { path -> [ExamItem] in
            let items = try ExamSet.load(path: resolve(path)).items.filter { $0.answer != nil }
            let ids = Set(try ExamSet.load(path: test).items.map(\.id))
            guard items.contains(where: { ids.contains($0.id) }) else {
                throw TrainingError("\(path) labels none of the items of \(settings.test): is it the gold file of another dataset?")
            }
            return items
        }
        let predictFlags = (settings.maxTokens.map { ["--max-tokens", $0] } ?? []) + (settings.template.map { ["--template", $0] } ?? [])
        // The training settings are checked before any stage runs.
        var trainingConfig: TrainingConfig?
        if var train = settings.train {
            train["model"] = train["model"] ?? .scalar(model)
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
        func predict(_ arguments: [String], name: String) throws {
            let scored = try store.unfinishedRows(name: name)
            if scored > 0 { resumed.append("predictions \(name): \(scored) items had been scored") }
            try PredictCommand.parse(workspace + arguments + ["--dataset", test, "--name", name] + predictFlags + threadFlags).run()
            members.append(try store.predictionSet(name).ref.description)
        }

        if settings.zeroShot {
            stage("1. zero-shot predictions of the base model")
            try predict(["--model", model], name: "\(settings.name)-zero-shot")
        }
        if let folder = settings.imports {
            stage("2. prediction files of runs made elsewhere")
            let files = try FileManager.default.contentsOfDirectory(atPath: resolve(folder)).filter { $0.hasSuffix(".csv") && $0 != "leaderboard.csv" }.sorted()
            for file in files {
                let name = String(file.dropLast(4))
                try ImportCommand.parse(workspace + [resolve(folder) + "/" + file, "--name", name, "--dataset", test]).run()
                members.append(try store.predictionSet(name).ref.description)
            }
        }
        var runName: String?
        if let trainingConfig {
            stage("3. LoRA training")
            let name = trainingConfig.name
            runName = name
            var arguments = workspace + threadFlags
            if let run = try store.trainingRun(named: name) {
                let stored = try JSONDecoder().decode(TrainingConfig.self, from: Data(run.config.utf8))
                var given = trainingConfig
                given.model = stored.model
                guard given == stored else {
                    throw TrainingError("\(config): the train settings differ from those \(name) was trained with; give the pipeline another name to train anew")
                }
                arguments += ["--resume", name, "--model", model]
                if let last = try store.checkpoints(run: name).last, last.checkpoint.step < run.totalSteps {
                    resumed.append("training \(name): from step \(last.checkpoint.step) of \(run.totalSteps)")
                }
            } else {
                // Every setting as its flag (lists comma-separated), as a user would type them.
                for (key, value) in try TrainCommand.values(of: trainingConfig).sorted(by: { $0.key < $1.key }) {
                    let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
                    switch value {
                    case .scalar(let text): arguments += [flag, text]
                    case .list(let list): arguments += [flag, list.joined(separator: ",")]
                    }
                }
            }
            try TrainCommand.parse(arguments).run()

            stage("4. predictions of every checkpoint")
            for (run, checkpoint) in try store.checkpoints(run: name) {
                try predict(["--checkpoint", "\(run.name)/step-\(checkpoint.step)"], name: "\(run.name)-step-\(checkpoint.step)")
            }
        }

        stage("5. scores")
        if let gold {
            for member in members { try scoreOnGold(member, gold: gold, file: resolve(settings.gold!), store: store, workspace: workspace) }
        } else {
            print("No gold file: the top \(settings.top) are chosen by the public scores recorded with `suneung score NAME --public X`.")
        }
        let scored = try members.compactMap { ref -> (String, Double, Date)? in
            let set = try store.predictionSet(ref)
            return try store.latestScore(of: set, .public).map { (ref, $0, set.createdAt) }
        }
        // Best public score first; ties: the newer set first (as `ensemble --top`).
        let chosen = scored.sorted { ($0.1, $0.2) > ($1.1, $1.2) }.prefix(settings.top).map(\.0)
        var ensembles: [String] = []
        if chosen.count >= 2 {
            stage("6. ensembles of the top \(chosen.count) by public score")
            for method in settings.methods {
                let name = "\(settings.name)-top\(chosen.count)-\(method)"
                let weights = method == "vote" ? [] : ["--weights", settings.weights]
                try EnsembleCommand.parse(workspace + ["--members", chosen.joined(separator: ","), "--method", method, "--name", name] + weights).run()
                let ref = try store.predictionSet(name).ref.description
                ensembles.append(ref)
                if let gold { try scoreOnGold(ref, gold: gold, file: resolve(settings.gold!), store: store, workspace: workspace) }
            }
        } else {
            print("Fewer than two members have a public score: no ensemble yet (record scores with `suneung score`, then run the pipeline again).")
        }

        let record = PipelineRecord(name: settings.name, config: String(decoding: try readFile(config), as: UTF8.self), trainingRun: runName,
                                    members: members, chosen: chosen, ensembles: ensembles, gold: settings.gold.map(resolve), updatedAt: Date())
        try store.savePipeline(record)
        stage("7. summary")
        print(try Summary(store: store, pipeline: record).table.rendered)
        if !resumed.isEmpty { print("\nResumed from an interrupted run: " + resumed.joined(separator: "; ") + ".") }
        let report = try ReportCommand.write(store: store, pipeline: record)
        print("")
        if let best = ensembles.first {
            let name = try store.predictionSet(best).name
            print("Submission: \(store.workspace.relative(store.workspace.submissionsFolder.appendingPathComponent("\(name).csv"))) (\(best))")
        }
        print("Report:     \(store.workspace.relative(report))")
    }

    func stage(_ title: String) {
        print("\n== \(title)")
        flushStandardOutput()
    }

    /// The simulated leaderboard: public and private accuracy on the gold file's halves,
    /// and local accuracy on all of it (recorded once; equal scores are not repeated).
    func scoreOnGold(_ ref: String, gold: [ExamItem], file: String, store: Store, workspace: [String]) throws {
        let table = try store.table(of: try store.predictionSet(ref))
        let publicScore = table.accuracy(against: gold.filter { isPublicItem($0.id) })
        let privateScore = table.accuracy(against: gold.filter { !isPublicItem($0.id) })
        guard publicScore.total > 0, privateScore.total > 0 else { throw TrainingError("\(file) labels too few of \(ref)'s items for both halves of the simulated leaderboard") }
        try ScoreCommand.parse(workspace + [ref, "--public", "\(Double(publicScore.correct) / Double(publicScore.total))",
                                            "--private", "\(Double(privateScore.correct) / Double(privateScore.total))", "--gold", file,
                                            "--note", "simulated leaderboard (\(publicScore.total) public, \(privateScore.total) private items)", "--simulated"]).run()
    }

    static func read(_ path: String) throws -> Settings {
        let text = String(decoding: try readFile(path), as: UTF8.self)
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw TrainingError("\(path): not valid YAML: \(error)") }
        guard let mapping = loaded as? [String: Any] else { throw TrainingError("\(path): expected a mapping of keys to values") }
        for key in mapping.keys.sorted() where !keys.contains(key) {
            let suggestion = nearestName(to: key, among: keys).map { " (did you mean '\($0)'?)" } ?? ""
            throw TrainingError("\(path): unknown key '\(key)'\(suggestion); the keys are: \(keys.joined(separator: ", "))")
        }
        func string(_ key: String) -> String? { mapping[key].map { "\($0)" } }
        for key in ["name", "model", "test"] where mapping[key] == nil { throw TrainingError("\(path): '\(key)' is required") }
        var settings = Settings(name: string("name")!, model: string("model")!, test: string("test")!)
        try SetRef.checkName(settings.name)
        settings.gold = string("gold")
        settings.imports = string("imports")
        settings.maxTokens = string("max_tokens")
        settings.template = string("template")
        if let value = mapping["zero_shot"] {
            guard let flag = value as? Bool else { throw TrainingError("\(path): 'zero_shot' must be true or false") }
            settings.zeroShot = flag
        }
        if let value = mapping["top"] {
            guard let top = value as? Int, top >= 1 else { throw TrainingError("\(path): 'top' must be a whole number ≥ 1") }
            settings.top = top
        }
        if let value = mapping["methods"] {
            guard let methods = value as? [Any], !methods.isEmpty, methods.allSatisfy({ ["vote", "weighted-vote", "average"].contains("\($0)") }) else {
                throw TrainingError("\(path): 'methods' must be a list of vote, weighted-vote, average")
            }
            settings.methods = methods.map { "\($0)" }
        }
        settings.weights = string("weights") ?? "score"
        if let value = mapping["train"] {
            guard let train = value as? [String: Any] else { throw TrainingError("\(path): 'train' must be a mapping of the trainer's keys (see config/train.yaml)") }
            settings.train = train.mapValues { value in (value as? [Any]).map { .list($0.map { "\($0)" }) } ?? .scalar("\(value)") }
        }
        return settings
    }
}
