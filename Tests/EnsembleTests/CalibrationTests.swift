import Foundation
import XCTest

@testable import Ensemble

/// The bias statistics and the calibration fit against scipy
/// (scripts/reference/calibration_fixtures.py).
final class CalibrationTests: XCTestCase {
    struct Fixture: Decodable {
        struct Chi: Decodable {
            var observed: [Int]
            var shares: [Double]
            var statistic: Double
            var df: Int
            var p: Double
        }
        struct Item: Decodable {
            var logits: [Double]
            var gold: Int
        }
        struct Fit: Decodable {
            var temperature: Double
            var positionBias: [Double]
            var loss: Double
        }
        var chisquare: [Chi]
        var items: [Item]
        var fits: [String: Fit]
    }

    func fixture() throws -> Fixture {
        let url = Bundle.module.url(forResource: "Fixtures/calibration", withExtension: "json")!
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testChiSquareAsScipy() throws {
        for case_ in try fixture().chisquare {
            let result = try XCTUnwrap(chiSquare(observed: case_.observed, expectedShares: case_.shares))
            XCTAssertEqual(result.statistic, case_.statistic, accuracy: 1e-9 * max(1, case_.statistic), "\(case_.observed)")
            XCTAssertEqual(result.degreesOfFreedom, case_.df)
            XCTAssertEqual(result.pValue, case_.p, accuracy: 1e-9 * max(case_.p, 1e-300) + 1e-15, "\(case_.observed)")
            XCTAssertEqual(result.pValue / case_.p, 1, accuracy: 1e-8, "relative, \(case_.observed)")
        }
        XCTAssertNil(chiSquare(observed: [3, 0], expectedShares: [1, 0]), "one position left: no test")
        // By hand: observed (30, 10) against (1/2, 1/2): (10² + 10²) / 20 = 10, df 1,
        // p = erfc(√(10/2)) = 0.001565...
        let byHand = try XCTUnwrap(chiSquare(observed: [30, 10], expectedShares: [0.5, 0.5]))
        XCTAssertEqual(byHand.statistic, 10, accuracy: 1e-12)
        XCTAssertEqual(byHand.pValue, erfc(sqrt(5)), accuracy: 1e-14)
    }

    func testCalibrationAsScipy() throws {
        let fixture = try fixture()
        for kind in CalibrationKind.allCases {
            let fit = try fitCalibration(logits: fixture.items.map(\.logits), gold: fixture.items.map(\.gold), kind: kind)
            let expected = try XCTUnwrap(fixture.fits[kind.rawValue])
            XCTAssertEqual(fit.temperature, expected.temperature, accuracy: 1e-6 * expected.temperature, kind.rawValue)
            for (ours, theirs) in zip(fit.positionBias, expected.positionBias) {
                XCTAssertEqual(ours, theirs, accuracy: 1e-6, kind.rawValue)
            }
            // A calibrated member's probabilities sum to 1 and follow the fit.
            let p = fit.probabilities(logits: fixture.items[0].logits)
            XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-12)
        }
    }
}
