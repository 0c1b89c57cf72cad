import Exam
import Foundation
import Serving
import Store
import Tokenizer

/// `predict --endpoint`: the items scored on the team's own servers (vLLM, llama.cpp's
/// server, any OpenAI-compatible one) and stored as the embedded engine's are: a run
/// whose rows are committed item by item, so a kill, a dead server or a full disk loses
/// nothing already scored and the same command resumes.
enum PredictOnEndpoints {
    /// How the prompt is made: what changes the numbers beside the model and the method.
    static let promptVersion = "suneung endpoint scoring 1: the baseline prompt rendered in the chat template here, sent as text"

    static func run(_ request: PredictRequest, store: Store, events: WorkflowEvents) throws -> PredictionSetRecord {
        let name = request.name, servedModel = request.servedModel!
        try store.checkNameTakes(name, origin: .engine)
        guard let template = request.template ?? ChatTemplate(servedModel: servedModel) else {
            throw UsageError(
                "--template is needed: the served model's name '\(excerpt(servedModel))' does not say its family (gemma, chatml, llama3, exaone3, plain)"
            )
        }
        let key = try request.apiKeyEnv.map(Self.key(from:))
        let endpoints = try request.endpoints.map { try Endpoint(address: $0, key: key, seconds: request.requestSeconds) }
        let chosen = try ChosenItems(request)
        let items = chosen.items
        let prompts = items.map { item in
            let baseline = Exam.Prompt.baseline(item)
            return template.renderForServer(system: baseline.system, user: baseline.user)
        }

        // Every server is asked what it offers before anything is stored; they must
        // score the same way, or the set's numbers would depend on which one took an item.
        let scorers = try endpoints.map { try ChoiceScorer.probe($0, servedModel: servedModel, prompt: prompts[0]) }
        let offer = scorers[0].offer
        if let other = scorers.first(where: { $0.offer != offer }) {
            throw StoreError.invalid(
                "\(endpoints[0].host) and \(other.endpoint.host) do not serve '\(servedModel)' alike (\(offer.method); \(other.offer.method)); give endpoints of one engine and model"
            )
        }
        let hosts = endpoints.map(\.host)
        events(.note("Scoring on \(hosts.joined(separator: ", ")) (\(offer.ownedBy ?? "server")): \(offer.method)."))

        let datasetRecord = try chosen.record(store: store, events: events)
        let settings = [
            "endpoint", servedModel, offer.root ?? "", datasetRecord.sha256, template.rawValue, promptVersion, offer.method
        ].joined(separator: "\n")
        var lineage = Lineage(
            commandLine: request.commandLine, toolVersion: suneungVersion, datasetPath: datasetRecord.path, model: servedModel,
            template: template.rawValue, engine: "\(offer.ownedBy ?? "an OpenAI-compatible server") at \(hosts.joined(separator: ", "))",
            runKey: sha256Hex(settings.utf8))
        lineage.endpoint = EndpointLineage(
            hosts: hosts, servedModel: servedModel, ownedBy: offer.ownedBy, root: offer.root, contextLength: offer.contextLength,
            method: offer.method, concurrency: request.concurrency)
        if let finished = try store.finishedRun(key: lineage.runKey!, name: name) {
            events(.note("Already scored: \(finished.ref) holds these predictions (same served model, dataset, template and method)."))
            try chosen.recordGold(store: store, set: finished, events: events)
            return finished
        }
        var (run, done) = try store.startRun(key: lineage.runKey!, name: name, dataset: datasetRecord, lineage: lineage)
        if !done.isEmpty { events(.note("Resuming \(name): \(done.count) of \(items.count) items were scored before.")) }

        let started = Date()
        let pending = items.indices.filter { done[$0] == nil }
        var tally = lineage.endpoint!
        try score(
            pending, items: items, prompts: prompts, scorers: scorers, concurrency: request.concurrency, events: events
        ) { position, host, scores in
            let values = (0..<PredictionRow.maxChoices).map { $0 < scores.logProbabilities.count ? scores.logProbabilities[$0] : nil }
            let logprobs = scores.logProbabilities
            let answer = logprobs.indices.max { (logprobs[$0], -$0) < (logprobs[$1], -$1) }! + 1
            try store.addRunRow(run, position: position, row: PredictionRow(id: items[position].id, answer: answer, values: values))
            tally.itemsByHost[hosts[host], default: 0] += 1
            tally.fallbacks += scores.fallbacks
        }
        tally.seconds = Date().timeIntervalSince(started)
        let perHost = hosts.map { "\($0) \(tally.itemsByHost[$0] ?? 0)" }.joined(separator: ", ")
        events(
            .note(
                "Scored \(pending.count) items in \(String(format: "%.1f", tally.seconds)) s (\(perHost))"
                    + (tally.fallbacks > 0
                        ? "; \(tally.fallbacks) choices were outside the top \(offer.topK) and scored by the fallback." : ".")
            ))
        run.lineage.endpoint = tally

        return try Predict.finish(
            run, dataset: datasetRecord, values: "each choice's log-probability", chosen: chosen, store: store, events: events)
    }

    /// The bearer key, from the environment only (never the command line, the lineage or
    /// a message).
    static func key(from variable: String) throws -> String {
        guard let key = ProcessInfo.processInfo.environment[variable], !key.isEmpty else {
            throw UsageError("--api-key-env \(variable): that environment variable is not set (export \(variable)=KEY first)")
        }
        return key
    }

    /// Scores `pending` on every endpoint at once, `concurrency` requests in flight on
    /// each; `record` runs on the caller's thread, item by item as they finish. An
    /// endpoint still failing after its retries is dropped and its item goes to the
    /// others; an item the server refuses (too long, a choice it cannot score) stops
    /// the run, with what was recorded kept.
    static func score(
        _ pending: [Int], items: [ExamItem], prompts: [String], scorers: [ChoiceScorer], concurrency: Int, events: WorkflowEvents,
        record: (_ position: Int, _ endpoint: Int, ChoiceScorer.Scores) throws -> Void
    ) throws {
        guard !pending.isEmpty else { return }
        let pool = WorkPool(pending: pending, endpoints: scorers.count)
        defer { pool.stop() }
        let choiceCounts = items.map(\.choices.count)
        for (endpoint, scorer) in scorers.enumerated() {
            for _ in 0..<concurrency {
                DispatchQueue.global().async {
                    while let position = pool.take(endpoint) {
                        do {
                            pool.report(.scored(position, endpoint, try scorer.score(prompts[position], choices: choiceCounts[position])))
                        } catch let error as EndpointError where error.kind == .unavailable {
                            pool.drop(endpoint, returning: position, error)
                        } catch let error as EndpointError {
                            pool.report(.failed(position, error))
                        } catch {
                            pool.report(.failed(position, EndpointError(.reply, "\(error)")))
                        }
                    }
                }
            }
        }
        events(.begin(total: pending.count))
        var remaining = pending.count
        while remaining > 0 {
            for outcome in pool.next() {
                switch outcome {
                case .scored(let position, let endpoint, let scores):
                    try record(position, endpoint, scores)
                    remaining -= 1
                    events(.item(tokens: scores.promptTokens))
                case .failed(let position, let error):
                    throw StoreError.invalid(
                        "item \(items[position].id): \(error); \(pending.count - remaining) items scored in this run are kept, and the same command resumes"
                    )
                case .dropped(let endpoint, let error):
                    let alive = pool.aliveCount
                    guard alive > 0 else {
                        throw StoreError.invalid(
                            "every endpoint failed (the last: \(error)); \(pending.count - remaining) items scored in this run are kept, and the same command resumes"
                        )
                    }
                    events(
                        .note(
                            "Dropped \(scorers[endpoint].endpoint.host): \(error). Its items go to the \(alive) other endpoint\(alive == 1 ? "" : "s")."
                        ))
                }
            }
        }
    }
}

/// The items waiting for a worker, and what the workers report back to the thread that
/// records them. A worker with nothing to take waits while items are out on other
/// endpoints: one of those may fail and come back.
final class WorkPool: @unchecked Sendable {
    enum Outcome: Sendable {
        case scored(Int, Int, ChoiceScorer.Scores)
        case failed(Int, EndpointError)
        case dropped(Int, EndpointError)
    }
    // Every variable below is read and written with `condition` locked (hence unchecked).
    private let condition = NSCondition()
    private var pending: [Int]
    private var alive: [Bool]
    /// Items neither scored nor failed yet (pending or in flight).
    private var outstanding: Int
    private var outcomes: [Outcome] = []
    private var stopped = false
    private let ready = DispatchSemaphore(value: 0)

    init(pending: [Int], endpoints: Int) {
        self.pending = pending.reversed()
        outstanding = pending.count
        alive = Array(repeating: true, count: endpoints)
    }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return body()
    }

    /// The next item for this endpoint's worker; nil when it should stop.
    func take(_ endpoint: Int) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopped || !alive[endpoint] || outstanding == 0 { return nil }
            if let position = pending.popLast() { return position }
            condition.wait()
        }
    }

    func report(_ outcome: Outcome) {
        locked {
            outcomes.append(outcome)
            if case .dropped = outcome { return }
            outstanding -= 1
        }
        ready.signal()
    }

    /// Drops a failing endpoint (once) and gives its item back to the others.
    func drop(_ endpoint: Int, returning position: Int, _ error: EndpointError) {
        let first = locked {
            pending.append(position)
            defer { alive[endpoint] = false }
            return alive[endpoint]
        }
        if first { report(.dropped(endpoint, error)) }
    }

    var aliveCount: Int { locked { alive.filter { $0 }.count } }

    /// Waits for a report and takes all there are (a later signal may find none).
    func next() -> [Outcome] {
        ready.wait()
        return locked {
            defer { outcomes = [] }
            return outcomes
        }
    }

    func stop() { locked { stopped = true } }
}
