import Foundation
import Store
import Synchronization
import Yams

/// The competition's rules that the ledger needs: how many uploads a day, and in which
/// time zone a day starts. Read from `config/competition.yaml`; defaults when absent.
public struct Competition: Sendable, Equatable {
    public static let file = "config/competition.yaml"
    public static let keys = ["daily_submissions", "timezone"]

    public var dailySubmissions = 10
    public var timeZone: TimeZone = Competition.seoul

    /// Asia/Seoul has had no daylight saving since 1988: a fixed +09:00 where the
    /// system has no time-zone database.
    static let seoul = TimeZone(identifier: "Asia/Seoul") ?? TimeZone(secondsFromGMT: 9 * 3600)!

    public init() {}

    /// The settings of a workspace (defaults if it has no competition.yaml).
    public static func load(workspace: Workspace) throws -> Competition {
        let path = workspace.root.appendingPathComponent(file).path
        guard FileManager.default.fileExists(atPath: path) else { return Competition() }
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw StoreError.invalid("\(file): not valid YAML: \(error)") }
        var competition = Competition()
        guard let mapping = loaded as? [String: Any] else {
            if loaded == nil { return competition }
            throw StoreError.invalid("\(file): expected keys daily_submissions and timezone")
        }
        for key in mapping.keys.sorted() where !keys.contains(key) {
            throw StoreError.invalid("\(file): unknown key '\(key)' (the keys are \(keys.joined(separator: ", ")))")
        }
        if let value = mapping["daily_submissions"] {
            guard let count = value as? Int, count >= 1 else {
                throw StoreError.invalid("\(file): daily_submissions must be a whole number ≥ 1")
            }
            competition.dailySubmissions = count
        }
        if let value = mapping["timezone"] {
            let name = "\(value)"
            guard let zone = name == "Asia/Seoul" ? seoul : TimeZone(identifier: name) else {
                throw StoreError.invalid("\(file): unknown timezone '\(name)' (e.g. Asia/Seoul, UTC, Europe/London)")
            }
            competition.timeZone = zone
        }
        return competition
    }

    /// The file `init` writes.
    public static let template = """
        # The competition's upload rules, for `suneung uploads` (uploads left today).
        daily_submissions: 10     # leaderboard uploads allowed per day
        timezone: Asia/Seoul      # where the day starts (IANA name)

        """

    /// A time in a zone, with the zone's name: `2026-11-30 14:02 KST`. By arithmetic,
    /// with the zone's name kept per offset: a DateFormatter a row took 6 s over the
    /// 20,000 uploads of a long competition.
    public static func timestamp(_ date: Date, zone: TimeZone) -> String {
        let offset = zone.secondsFromGMT(for: date)
        let time = CivilTime(date, offset: offset)
        let name = zoneNames.withLock { names in
            let key = "\(zone.identifier) \(offset)"
            if let known = names[key] { return known }
            let name = zoneName(zone, at: date)
            names[key] = name
            return name
        }
        return "\(time.date) \(time.twoDigits(time.hour)):\(time.twoDigits(time.minute)) \(name)"
    }

    private static let zoneNames = Mutex<[String: String]>([:])

    /// KST, UTC, CET ... where the system knows an abbreviation; else the UTC offset.
    public static func zoneName(_ zone: TimeZone, at date: Date) -> String {
        if zone.identifier == "Asia/Seoul" || zone.secondsFromGMT(for: date) == 9 * 3600 && zone.identifier.hasPrefix("GMT") {
            return "KST"
        }
        if let abbreviation = zone.abbreviation(for: date), !abbreviation.hasPrefix("GMT") || abbreviation == "GMT" { return abbreviation }
        let offset = zone.secondsFromGMT(for: date) / 60
        return String(format: "UTC%@%02d:%02d", offset < 0 ? "-" : "+", abs(offset) / 60, abs(offset) % 60)
    }

    /// Uploads counted against today's limit: those recorded since midnight in the
    /// competition's time zone, not retracted.
    public func uploadsToday(_ uploads: [Store.UploadEntry], now: Date = Date()) -> Int {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = calendar.startOfDay(for: now)
        return uploads.filter { $0.retractedAt == nil && $0.createdAt >= start && $0.createdAt <= now }.count
    }
}

/// The upload log and today's count against the competition's limit: what `uploads`,
/// the server and its dashboard show.
public struct UploadLog: Codable, Sendable {
    public var uploads: [Store.UploadEntry]
    public var dailySubmissions: Int
    public var timezone: String
    public var usedToday: Int
    public var remainingToday: Int

    public init(store: Store, now: Date = Date()) throws {
        let competition = try Competition.load(workspace: store.workspace)
        uploads = try store.uploads()
        dailySubmissions = competition.dailySubmissions
        timezone = competition.timeZone.identifier
        usedToday = competition.uploadsToday(uploads, now: now)
        remainingToday = max(0, dailySubmissions - usedToday)
    }
}

/// The calendar fields of a time at a UTC offset, by Howard Hinnant's civil-from-days
/// arithmetic (proleptic Gregorian, as ISO 8601): what the tables and CSVs print.
public struct CivilTime: Sendable {
    public var year, month, day, hour, minute, second: Int

    public init(_ date: Date, offset: Int = 0) {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down)) + offset
        let days = (seconds >= 0 ? seconds : seconds - 86_399) / 86_400
        let inDay = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        hour = inDay / 3_600
        minute = inDay % 3_600 / 60
        second = inDay % 60
    }

    func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `2026-11-30`.
    public var date: String { "\(year)-\(twoDigits(month))-\(twoDigits(day))" }

    /// `2026-11-30T05:02:00Z` for a time at offset 0, as ISO8601DateFormatter writes it.
    public var iso8601: String { "\(date)T\(twoDigits(hour)):\(twoDigits(minute)):\(twoDigits(second))Z" }
}
