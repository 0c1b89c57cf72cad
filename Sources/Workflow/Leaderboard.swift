import Ensemble
import Foundation
import Store

/// The order of `list` and of the dashboard's leaderboard.
public enum LeaderboardOrder: String, CaseIterable, Sendable {
    /// Best score of that kind first, unscored last; equal scores: the newer first.
    case `public`, `private`, local
    /// Newest first.
    case created
    /// By name, then version (the store's order).
    case name
}

/// Which sets the leaderboard shows; nil shows all.
public struct LeaderboardFilter: Sendable {
    public var includeHidden = false
    public var tag: String?
    public var author: String?
    /// A prefix of the dataset's sha256.
    public var dataset: String?
    /// An origin's name as given (a name that is no origin matches no set).
    public var origin: String?

    public init(includeHidden: Bool = false, tag: String? = nil, author: String? = nil, dataset: String? = nil, origin: String? = nil) {
        self.includeHidden = includeHidden
        self.tag = tag
        self.author = author
        self.dataset = dataset
        self.origin = origin
    }

    public func admits(_ set: Store.SetSummary) -> Bool {
        (includeHidden || !set.hidden) && tag.map { set.tags.contains($0) } != false && author.map { set.author == $0 } != false
            && dataset.map { set.datasetSha256.hasPrefix($0) } != false && origin.map { set.origin.rawValue == $0 } != false
    }
}

/// The sets as `list` and the dashboard show them: filtered, ordered, marked against the
/// best public score of their dataset, and flagged where their answers are biased.
public struct Leaderboard: Sendable {
    public var sets: [Store.SetSummary]
    /// Hidden sets the filter left out.
    public var hiddenCount: Int
    public var marks: [Int64: CloseToBest]
    public var biased: Set<Int64>
    /// Items of the public split: the competition's, or half the dataset's.
    public var publicItems: Int?

    /// `prior`: the answer shares the bias flag compares with (uniform where absent).
    /// `ranked`: only these sets, in this order (`--top K`), instead of `order`.
    public init(
        _ all: [Store.SetSummary], filter: LeaderboardFilter, order: LeaderboardOrder, ranked: [Int64]? = nil, prior: [Int: [Double]] = [:],
        publicItems: Int? = nil
    ) {
        var sets = all.filter(filter.admits)
        if let ranked {
            let place = Dictionary(uniqueKeysWithValues: ranked.enumerated().map { ($1, $0) })
            sets = sets.filter { place[$0.id] != nil }.sorted { place[$0.id]! < place[$1.id]! }
        } else {
            Self.sort(&sets, by: order)
        }
        self.sets = sets
        hiddenCount = filter.includeHidden ? 0 : all.filter(\.hidden).count
        marks = closeToBest(sets, publicItems: publicItems)
        biased = Set(sets.filter { $0.answerCounts?.isBiased(reference: prior) == true }.map(\.id))
        self.publicItems = publicItems
    }

    static func sort(_ sets: inout [Store.SetSummary], by order: LeaderboardOrder) {
        switch order {
        case .name: break
        case .created: sets.sort { ($0.createdAt, $0.version) > ($1.createdAt, $1.version) }
        case .public: sets.sort(by: Self.best(\.public))
        case .private: sets.sort(by: Self.best(\.private))
        case .local: sets.sort(by: Self.best(\.local))
        }
    }

    /// The binomial standard error of a set's public score over the public split.
    public func publicError(_ set: Store.SetSummary) -> Double? {
        set.public.map { standardError(accuracy: $0, items: publicItems ?? publicSplitItems(ofDataset: set.items)) }
    }

    /// Higher score first; sets without that score last, newest first among equals.
    static func best(_ score: KeyPath<Store.SetSummary, Double?>) -> (Store.SetSummary, Store.SetSummary) -> Bool {
        { a, b in
            switch (a[keyPath: score], b[keyPath: score]) {
            case let (x?, y?) where x != y: x > y
            case (_?, nil): true
            case (nil, _?): false
            default: a.createdAt > b.createdAt
            }
        }
    }
}
