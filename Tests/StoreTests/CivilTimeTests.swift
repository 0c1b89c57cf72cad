import Foundation
import Workflow
import XCTest

/// The tables' and CSVs' times by arithmetic agree with Foundation's formatters.
final class CivilTimeTests: XCTestCase {
    func testAgreesWithFoundationsFormatters() {
        let iso = ISO8601DateFormatter()
        let seoul = TimeZone(identifier: "Asia/Seoul")!
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = seoul
        local.dateFormat = "yyyy-MM-dd HH:mm"
        var generator = SystemRandomNumberGenerator()
        // 1970 to 2100, whole seconds and milliseconds, leap days and the turn of years.
        var dates = (0..<2_000).map { _ in
            Date(
                timeIntervalSince1970: Double(Int.random(in: 0...4_102_444_800, using: &generator)) + Double(
                    Int.random(in: 0...999, using: &generator)) / 1000)
        }
        dates += ["2024-02-29T23:59:59Z", "2000-03-01T00:00:00Z", "2026-12-31T15:00:00Z", "1999-12-31T23:59:59Z"].map {
            iso.date(from: $0)!
        }
        for date in dates {
            XCTAssertEqual(CivilTime(date).iso8601, iso.string(from: date), "\(date.timeIntervalSince1970)")
            XCTAssertEqual(Competition.timestamp(date, zone: seoul), local.string(from: date) + " KST", "\(date.timeIntervalSince1970)")
        }
    }
}
