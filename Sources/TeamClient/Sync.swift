import Exam
import Foundation
import Store
import Workflow

/// What a push or a pull did, set by set.
public struct SyncReport: Sendable {
    public var created: [String] = []
    /// Content the other side had: only scores, uploads and tags it lacked went.
    public var known: [String] = []
    public var scoresAdded = 0
    public var datasetsSent = 0
    /// Sets the receiving side refused (a limit, a bad value), with its reason: the
    /// others went on.
    public var refused: [String] = []

    /// A refusal of one set, after which the sync goes on; anything else (the server is
    /// gone, a token refused) stops it.
    static func isRefusal(_ error: any Error) -> Bool {
        if let failure = error as? RemoteClient.Failure {
            return (400..<500).contains(failure.status) && ![401, 403, 404].contains(failure.status)
        }
        return error is StoreError || error is FileProblem || error is FileProblems || error is PredictionFileProblems || error is SyncError
    }

    mutating func refuse(_ ref: String, _ error: any Error) throws {
        guard Self.isRefusal(error) else { throw error }
        refused.append("\(ref): \(error)")
    }
}

extension RemoteClient {
    /// Sends sets (an ensemble's members first) with their scores, uploads and tags.
    /// Content the server has under the same name is not sent again; a name it has
    /// with other content becomes a new version there. `progress` hears each set.
    public func push(_ sets: [PredictionSetRecord], from store: Store, progress: (Int, Int, String) -> Void = { _, _, _ in }) throws
        -> SyncReport
    {
        // Members before their ensembles, each once, in the store's order.
        var ordered: [PredictionSetRecord] = []
        var seen: Set<Int64> = []
        func add(_ set: PredictionSetRecord) throws {
            guard !seen.contains(set.id!) else { return }
            if let submission = try store.submission(of: set) { for member in submission.members { try add(member.set) } }
            seen.insert(set.id!)
            ordered.append(set)
        }
        for set in sets.sorted(by: { $0.id! < $1.id! }) { try add(set) }
        var bundles = try ordered.map { try store.bundle(of: $0, withCSV: false) }
        let datasets = Array(Set(bundles.map(\.datasetContentSha256))).sorted()
        let have: HaveAnswer = try send(
            "POST", "/api/v1/sync/have",
            json: HaveRequest(
                sets: bundles.map {
                    HaveRequest.Entry(name: $0.name, csvSha256: $0.csvSha256, dataset: $0.datasetContentSha256, origin: $0.origin)
                }, datasets: datasets))
        // All or nothing: a name the server gives to another kind of set stops the push
        // before anything is sent.
        guard have.conflicts.isEmpty else {
            throw StoreError.invalid(
                "nothing was pushed: on \(url), " + have.conflicts.joined(separator: "; ")
                    + " (rename the local set: `suneung rename OLD NEW`)")
        }
        var report = SyncReport()
        for (sha, present) in zip(datasets, have.datasets) where !present {
            guard let dataset = try store.dataset(contentSha256: sha) else { continue }
            let _: DatasetAnswer = try send("PUT", "/api/v1/datasets/\(sha)", body: Data(try store.datasetFile(dataset)), type: "text/csv")
            report.datasetsSent += 1
        }
        for index in bundles.indices {
            progress(index + 1, bundles.count, bundles[index].ref.description)
            do {
                // What the server would refuse is refused here, before the rows are read.
                try bundles[index].check()
                if !have.sets[index] { bundles[index].csv = try store.canonicalCSV(of: ordered[index]) }
                let outcome: ReceiveOutcome = try send(
                    "POST", "/api/v1/sync/bundles", body: try SetBundle.encoder.encode(bundles[index]), type: "application/json")
                report.scoresAdded += outcome.scoresAdded
                if outcome.created {
                    report.created.append("\(bundles[index].ref) -> \(outcome.ref)")
                } else {
                    report.known.append(outcome.ref)
                }
            } catch {
                try report.refuse(bundles[index].ref.description, error)
            }
        }
        return report
    }

    /// Brings every set of the server (with scores, ensembles and uploads) that the
    /// store lacks; idempotent.
    public func pull(into store: Store, progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> SyncReport {
        let bundles: [SetBundle] = try get("/api/v1/sync/bundles", decoder: SetBundle.decoder)
        // All or nothing: a local name of another kind stops the pull before anything is received.
        var conflicts: [String] = []
        for bundle in bundles {
            do { try store.checkNameTakes(bundle.name, origin: bundle.origin) } catch {
                conflicts.append("\(bundle.ref) on \(url): \(error)")
            }
        }
        guard conflicts.isEmpty else {
            throw StoreError.invalid(
                "nothing was pulled: " + conflicts.joined(separator: "; ") + " (rename the local set: `suneung rename OLD NEW`)")
        }
        var report = SyncReport()
        for sha in Set(bundles.map(\.datasetContentSha256)).sorted() where try store.dataset(contentSha256: sha) == nil {
            _ = try store.receiveDataset(
                bytes: Array(try request("GET", "/api/v1/datasets/\(sha)", body: nil, type: nil)), contentSha256: sha)
            report.datasetsSent += 1
        }
        for (index, var bundle) in bundles.enumerated() {
            progress(index + 1, bundles.count, bundle.ref.description)
            do {
                // Checked before its rows are fetched: a set this store would refuse costs nothing.
                try bundle.check()
                if try store.set(named: bundle.name, csvSha256: bundle.csvSha256, datasetContentSha256: bundle.datasetContentSha256) == nil
                {
                    bundle.csv = String(
                        decoding: try request("GET", "/api/v1/sets/\(pathValue(bundle.ref.description))/csv", body: nil, type: nil),
                        as: UTF8.self)
                }
                let outcome = try store.receive(bundle)
                report.scoresAdded += outcome.scoresAdded
                if outcome.created { report.created.append("\(bundle.ref) -> \(outcome.ref)") } else { report.known.append(outcome.ref) }
            } catch {
                try report.refuse(bundle.ref.description, error)
            }
        }
        return report
    }
}
