/// The known name closest to `name` by edit distance, if it is close enough to be a
/// likely typo.
public func nearestName(to name: String, among names: [String]) -> String? {
    let target = Array(name.lowercased())
    func distance(_ other: String) -> Int {
        let other = Array(other.lowercased())
        var previous = Array(0...other.count)
        for (i, a) in target.enumerated() {
            var current = [i + 1]
            for (j, b) in other.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a == b ? 0 : 1)))
            }
            previous = current
        }
        return previous[other.count]
    }
    guard let best = names.min(by: { (distance($0), $0) < (distance($1), $1) }) else { return nil }
    return distance(best) <= max(2, target.count / 3) ? best : nil
}
