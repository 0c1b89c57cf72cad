import Exam
import Foundation
import GRDB

/// An exam file the store has seen. Its identity is `contentSha256`, the digest of its
/// parsed items; `sha256` is of the bytes first registered (a short name for people).
public struct DatasetRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "dataset"

    public var id: Int64?
    /// sha256 of the file's bytes as first registered.
    public var sha256: String
    public var itemIds: [String]
    public var choiceCounts: [Int]
    public var itemCount: Int
    /// Where the file was when first registered, relative to the workspace when inside
    /// it (for people; the content digest is what counts).
    public var path: String?
    public var createdAt: Date
    /// sha256 of the parsed items (ids, text, choices, answers): the dataset's identity,
    /// so that the same file with CRLF line ends or a byte-order mark is the same dataset.
    /// nil for datasets registered before it was kept whose file has since changed.
    public var contentSha256: String?

    public var shape: DatasetShape { DatasetShape(ids: itemIds, choiceCounts: choiceCounts) }
    public var shortHash: String { String(sha256.prefix(8)) }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public enum SetOrigin: String, Codable, Sendable {
    case imported
    case engine
    case ensemble

    /// As a sentence says it: "an ensemble's", "imported sets".
    public var described: String {
        switch self {
        case .imported: "imported"
        case .engine: "predicted (engine)"
        case .ensemble: "ensemble"
        }
    }
}

/// Where a prediction set came from. Fields that do not apply stay nil; later
/// producers (the engine, the trainer) fill in theirs.
public struct Lineage: Codable, Sendable, Equatable {
    public var commandLine: String
    public var toolVersion: String
    public var sourceFile: String?
    public var sourceSha256: String?
    public var datasetPath: String?
    /// For the engine's sets: the model file and its sha256, and the scoring settings.
    public var model: String?
    public var modelSha256: String?
    /// A LoRA adapter folder, and the sha256 of its adapter_config.json followed by
    /// its adapter_model.safetensors.
    public var adapter: String?
    public var adapterSha256: String?
    /// The training checkpoint (RUN/step-N) the adapter is.
    public var checkpoint: String?
    public var template: String?
    public var maxTokens: Int?
    public var engine: String?
    /// For the engine's sets: sha256 of everything that determines the results (the
    /// resume key), so that the same command again finds the finished set.
    public var runKey: String?
    /// For imports: the rule for answers that are not a choice (`as-wrong`) and how many
    /// there were; on how many items the answer column is not the arg-max of the values.
    public var invalidAnswerRule: String?
    public var invalidAnswers: Int?
    public var answerArgmaxDisagreements: Int?
    /// For `predict --debias`: the method (`permute`, `pride:FRACTION`), the position
    /// prior PriDe estimated (per number of choices), the labelled file whose answer
    /// shares were the target, and those shares.
    public var debias: String?
    public var debiasPrior: [String: [Double]]?
    public var priorTarget: String?
    public var priorTargetShares: [String: [Double]]?
    /// For ensembles built with `--calibrate`: each member's fitted calibration.
    public var calibration: [MemberCalibration]?
    public var calibrationGold: String?
    /// For `predict --endpoint`: the servers that scored, what they said of themselves,
    /// the method and the timings.
    public var endpoint: EndpointLineage?

    public init(
        commandLine: String, toolVersion: String, sourceFile: String? = nil, sourceSha256: String? = nil, datasetPath: String? = nil,
        model: String? = nil, modelSha256: String? = nil, adapter: String? = nil, adapterSha256: String? = nil, checkpoint: String? = nil,
        template: String? = nil, maxTokens: Int? = nil, engine: String? = nil, runKey: String? = nil
    ) {
        self.commandLine = commandLine
        self.toolVersion = toolVersion
        self.sourceFile = sourceFile
        self.sourceSha256 = sourceSha256
        self.datasetPath = datasetPath
        self.model = model
        self.modelSha256 = modelSha256
        self.adapter = adapter
        self.adapterSha256 = adapterSha256
        self.checkpoint = checkpoint
        self.template = template
        self.maxTokens = maxTokens
        self.engine = engine
        self.runKey = runKey
    }
}

/// Where `predict --endpoint` scored: hosts only (never a key), the served model as
/// the servers reported it, and how (`ChoiceScorer.Offer.method`).
public struct EndpointLineage: Codable, Sendable, Equatable {
    public var hosts: [String]
    public var servedModel: String
    /// /v1/models' `owned_by` (vllm, llamacpp, …), vLLM's `root` and `max_model_len`.
    public var ownedBy: String?
    public var root: String?
    public var contextLength: Int?
    public var method: String
    /// Requests in flight per endpoint.
    public var concurrency: Int
    /// Items each host scored in the run that finished the set, and that run's seconds.
    public var itemsByHost: [String: Int] = [:]
    public var seconds: Double = 0
    /// Choices scored by the method's fallback (outside the top log-probabilities).
    public var fallbacks = 0

    public init(
        hosts: [String], servedModel: String, ownedBy: String?, root: String?, contextLength: Int?, method: String, concurrency: Int
    ) {
        self.hosts = hosts
        self.servedModel = servedModel
        self.ownedBy = ownedBy
        self.root = root
        self.contextLength = contextLength
        self.method = method
        self.concurrency = concurrency
    }
}

/// A member's calibration as an ensemble records it: p(c) ∝ exp(l_c / T + b_c).
public struct MemberCalibration: Codable, Sendable, Equatable {
    public var member: String
    /// `temperature` or `prior`.
    public var kind: String
    public var temperature: Double
    /// Per answer position 1...5 (the first 0).
    public var positionBias: [Double]
    /// The labelled items it was fitted on.
    public var items: Int

    public init(member: String, kind: String, temperature: Double, positionBias: [Double], items: Int) {
        self.member = member
        self.kind = kind
        self.temperature = temperature
        self.positionBias = positionBias
        self.items = items
    }
}

/// One version of a named prediction set; its rows live in `predictionRow`.
public struct PredictionSetRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "predictionSet"
    public static let dataset = belongsTo(DatasetRecord.self)

    public var id: Int64?
    public var name: String
    public var version: Int
    public var datasetId: Int64
    public var origin: SetOrigin
    public var choiceValues: ChoiceValues?
    public var lineage: Lineage
    /// sha256 of the canonical CSV, which `export` reproduces byte for byte; with the
    /// dataset it is the set's content identity, across names.
    public var csvSha256: String
    public var createdAt: Date
    /// sha256 of the `id,answer` lines alone: which sets answer alike.
    public var answersSha256: String?
    /// The canonical CSV's size, for a cheap check of the file in predictions/.
    public var csvBytes: Int?
    /// Items with a row: fewer than the dataset's for a subset (`import --subset`).
    public var itemCount: Int?
    /// Answers kept verbatim that are not one of their item's choices.
    public var invalidAnswers: Int = 0
    public var author: String?
    public var note: String?
    /// Out of `list` and `--top` unless asked for.
    public var hidden: Bool = false
    /// Answers per position, per number of choices (for `list`'s bias flag).
    public var answerCounts: AnswerCounts?

    public var ref: SetRef { SetRef(name: name, version: version) }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public enum ScoreKind: String, Codable, Sendable, CaseIterable {
    case `public`
    case `private`
    case local
}

public struct ScoreRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "score"

    public var id: Int64?
    public var setId: Int64
    public var kind: ScoreKind
    public var value: Double
    public var note: String?
    public var createdAt: Date
    /// The leaderboard upload a public or private score came from (nil for local scores
    /// and for the pipeline's simulated leaderboard).
    public var uploadId: Int64?
    public var author: String?
    /// Retracted scores stay in the history but are no longer a set's latest.
    public var retractedAt: Date?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// `NAME` or `NAME@vK`.
public struct SetRef: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// nil means the latest version.
    public var version: Int?

    public init(name: String, version: Int?) {
        self.name = name
        self.version = version
    }

    public init(parsing text: String) throws {
        if let at = text.lastIndex(of: "@") {
            let suffix = text[text.index(after: at)...]
            let digits = suffix.dropFirst()
            guard suffix.first == "v", !digits.isEmpty, digits.count <= 9, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                digits.first != "0",
                let version = Int(digits)
            else {
                throw StoreError.badReference("'\(excerpt(text))' is not NAME or NAME@vK (K = 1, 2, ...)")
            }
            self.init(name: String(text[..<at]), version: version)
        } else {
            self.init(name: text, version: nil)
        }
        try SetRef.checkName(name)
    }

    public var description: String { version.map { "\(name)@v\($0)" } ?? name }

    public static let maxNameLength = 100

    /// Names become file names and list separators, so they keep to letters, digits,
    /// `.`, `_` and `-`, and to 100 characters.
    public static func checkName(_ name: String, what: String = "name") throws {
        guard name.count <= maxNameLength else {
            throw StoreError.badReference("\(what) '\(excerpt(name, limit: 40))' is longer than \(maxNameLength) characters")
        }
        // NAME@vK.csv must fit a file name (255 bytes): Hangul takes 3 bytes a letter.
        guard name.utf8.count <= 2 * maxNameLength else {
            throw StoreError.badReference(
                "\(what) '\(excerpt(name, limit: 40))' is longer than \(2 * maxNameLength) bytes in UTF-8 (it becomes a file name)")
        }
        let allowed = name.unicodeScalars.allSatisfy {
            $0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }
        guard !name.isEmpty, allowed, !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw StoreError.badReference(
                "\(what) '\(excerpt(name))' must be letters, digits, '.', '_' and '-' (not starting with '.' or '-')")
        }
    }
}

public enum StoreError: Error, Sendable, CustomStringConvertible {
    case noStore(String)
    case newerSchema(String)
    case badReference(String)
    case notFound(String)
    case invalid(String)
    case corrupted(String)

    public var description: String {
        switch self {
        case .noStore(let m), .newerSchema(let m), .badReference(let m), .notFound(let m), .invalid(let m), .corrupted(let m): m
        }
    }
}

/// A set's answers per position, keyed by the items' number of choices: "4": [n1, ...].
public struct AnswerCounts: Codable, Sendable, Equatable, DatabaseValueConvertible {
    public var byChoices: [String: [Int]]

    public init(_ table: PredictionTable, dataset: DatasetRecord) {
        self.init(table, itemIds: dataset.itemIds, choiceCounts: dataset.choiceCounts)
    }

    init(_ table: PredictionTable, itemIds: [String], choiceCounts: [Int]) {
        var choicesOf: [String: Int] = [:]
        for (id, n) in zip(itemIds, choiceCounts) { choicesOf[id] = n }
        var counts: [String: [Int]] = [:]
        for row in table.rows {
            let n = choicesOf[row.id] ?? PredictionRow.maxChoices
            var group = counts["\(n)"] ?? Array(repeating: 0, count: n)
            if row.answer > 0 { group[row.answer - 1] += 1 }
            counts["\(n)"] = group
        }
        byChoices = counts
    }

    public init(from decoder: Decoder) throws { byChoices = try decoder.singleValueContainer().decode([String: [Int]].self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(byChoices)
    }

    public var databaseValue: DatabaseValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(byChoices)) ?? Data(), as: UTF8.self).databaseValue
    }

    public static func fromDatabaseValue(_ value: DatabaseValue) -> AnswerCounts? {
        guard let text = String.fromDatabaseValue(value),
            let counts = try? JSONDecoder().decode([String: [Int]].self, from: Data(text.utf8))
        else { return nil }
        var result = AnswerCounts(byChoices: [:])
        result.byChoices = counts
        return result
    }

    init(byChoices: [String: [Int]]) { self.byChoices = byChoices }

    /// Groups smaller than this say too little for a flag.
    public static let minimumItems = 20

    /// A set is biased when its most frequent answer takes more than this many times its
    /// reference share (`favouriteRatio`, `bias`'s flag).
    public static let biasedRatio = 2.0

    public func isBiased(reference: [Int: [Double]]) -> Bool { favouriteRatio(reference: reference) > Self.biasedRatio }

    /// The most frequent answer's share against `reference` shares (per number of
    /// choices; uniform where absent): the largest ratio over the groups of at least
    /// `minimumItems` items (above `biasedRatio`: the set is biased).
    public func favouriteRatio(reference: [Int: [Double]]) -> Double {
        var worst = 0.0
        for (key, counts) in byChoices {
            guard let n = Int(key), counts.reduce(0, +) >= Self.minimumItems else { continue }
            let total = Double(counts.reduce(0, +))
            let top = counts.indices.max { (counts[$0], -$0) < (counts[$1], -$1) }!
            let shares = reference[n] ?? Array(repeating: 1 / Double(n), count: n)
            let sum = shares.reduce(0, +)
            guard sum > 0, shares[top] > 0 else {
                worst = .infinity
                continue
            }
            worst = max(worst, (Double(counts[top]) / total) / (shares[top] / sum))
        }
        return worst
    }
}

extension PredictionSetRecord {
    /// Whether the set covers only some of its dataset's items (`import --subset`): never
    /// uploaded, so it has no leaderboard score, and never a submission or its member.
    public func isSubset(of dataset: DatasetRecord) -> Bool {
        Self.isSubset(rows: itemCount ?? dataset.itemCount, datasetItems: dataset.itemCount)
    }

    /// The rule, for what carries counts rather than records (summaries, bundles).
    public static func isSubset(rows: Int, datasetItems: Int) -> Bool { rows < datasetItems }
}
