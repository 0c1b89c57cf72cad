import Foundation

/// How member weights come from public scores (or are given).
public enum WeightScheme: Sendable, Equatable, CustomStringConvertible {
    /// w = public accuracy.
    case score
    /// w = score − lowest member score + 0.01.
    case excess
    /// The best of K members gets K, the next K−1, ...; equal scores keep member order.
    case rank
    /// w ∝ exp(score / T), normalised to sum 1.
    case softmax(temperature: Double)
    case uniform
    /// Member name = weight.
    case explicit([String: Double])

    public static let excessFloor = 0.01

    /// `score`, `excess`, `rank`, `softmax:T`, `uniform`, or `name=w,name=w,...`.
    public init(parsing text: String) throws(EnsembleError) {
        switch text {
        case "score": self = .score
        case "excess": self = .excess
        case "rank": self = .rank
        case "uniform": self = .uniform
        default:
            if text.hasPrefix("softmax:") {
                guard let t = Double(text.dropFirst("softmax:".count)), t.isFinite, t > 0 else {
                    throw .invalid("softmax:T needs a temperature T > 0, e.g. softmax:0.01 (got '\(text)')")
                }
                self = .softmax(temperature: t)
                return
            }
            guard text.contains("=") else {
                throw .invalid("unknown weights '\(text)' (use score, excess, rank, softmax:T, uniform, or name=w,name=w,...)")
            }
            var weights: [String: Double] = [:]
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, let w = Double(parts[1]) else {
                    throw .invalid("'\(pair)' is not name=weight")
                }
                guard w.isFinite, w >= 0 else { throw .invalid("weight \(parts[1]) of \(parts[0]) is negative or not finite") }
                guard weights[parts[0]] == nil else { throw .invalid("\(parts[0]) has two weights") }
                weights[parts[0]] = w
            }
            guard weights.values.contains(where: { $0 > 0 }) else { throw .invalid("the explicit weights are all zero") }
            self = .explicit(weights)
        }
    }

    public var usesPublicScores: Bool {
        switch self {
        case .score, .excess, .rank, .softmax: true
        case .uniform, .explicit: false
        }
    }

    public var description: String {
        switch self {
        case .score: "score"
        case .excess: "excess"
        case .rank: "rank"
        case .softmax(let t): "softmax:\(t)"
        case .uniform: "uniform"
        case .explicit(let weights): weights.keys.sorted().map { "\($0)=\(weights[$0]!)" }.joined(separator: ",")
        }
    }

    /// One weight per member, in member order.
    public func weights(for members: [Member]) throws(EnsembleError) -> [Double] {
        var scores: [Double] = []
        if usesPublicScores {
            for member in members {
                guard let score = member.publicScore else {
                    throw .invalid(
                        "\(member.name) has no public score, so it cannot take '\(self)' weights (record one with `suneung score \(member.name) --public X`, or use --weights uniform or name=w,...)"
                    )
                }
                scores.append(score)
            }
        }
        switch self {
        case .score:
            guard scores.contains(where: { $0 > 0 }) else {
                throw .invalid("every member's public score is 0: 'score' weights would all be zero")
            }
            return scores
        case .excess:
            let lowest = scores.min() ?? 0
            return scores.map { $0 - lowest + WeightScheme.excessFloor }
        case .rank:
            // Stable: equal scores keep the members' order.
            let order = members.indices.sorted { (scores[$0], -$0) > (scores[$1], -$1) }
            var weights = Array(repeating: 0.0, count: members.count)
            for (place, index) in order.enumerated() { weights[index] = Double(members.count - place) }
            return weights
        case .softmax(let t):
            let top = scores.max() ?? 0
            let exps = scores.map { exp(($0 - top) / t) }
            let sum = exps.reduce(0, +)
            return exps.map { $0 / sum }
        case .uniform:
            return Array(repeating: 1, count: members.count)
        case .explicit(let given):
            let names = Set(members.map(\.name))
            if let unknown = given.keys.sorted().first(where: { !names.contains($0) }) {
                throw .invalid(
                    "the weights name \(unknown), which is not a member (members: \(members.map(\.name).joined(separator: ", ")))")
            }
            return try members.map { member throws(EnsembleError) in
                guard let w = given[member.name] else { throw .invalid("no weight for member \(member.name)") }
                return w
            }
        }
    }
}
