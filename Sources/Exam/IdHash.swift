/// FNV-1a (64-bit) of an item id's UTF-8 bytes: a split by id that does not change
/// when rows are reordered or added, and that any language can repeat.
public func fnv1a(_ id: String) -> UInt64 {
    id.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
}

/// The simulated leaderboard's halves: an item is public when the FNV-1a hash of its
/// id is even, private when odd (the competition's real split is unknown to us).
public func isPublicItem(_ id: String) -> Bool { fnv1a(id) % 2 == 0 }
