import Engine
import Foundation
import TestSupport
import XCTest

@testable import Training

/// `Network.keptFloats` (what the recompute rule weighs) against what a block's forward
/// pass really keeps, on every tiny family, with and without dropout: every [Float] the
/// kept activations hold, found by reflection, so a field added to them and not to the
/// count fails here.
final class KeptActivationsTests: XCTestCase {
    func testKeptFloatsCountsWhatABlockKeeps() throws {
        let (tokens, networks) = try TinyTrainingTests.networks(for: self)
        for (architecture, network) in networks {
            var lora = LoRAWeights(config: network.config, modules: LoRAAdapter.Module.allCases, rank: 3, alpha: 6, rsLoRA: false)
            lora.initialize(seed: 5)
            let t = tokens.count
            for dropout in [nil, Network.Dropout(probability: 0.2, seed: 9)] {
                var x = try network.model.embed(tokens[...])
                let kept = try XCTUnwrap(
                    network.blockForward(
                        0, x: &x, rows: t, lora: lora, dropout: dropout, rope: network.model.ropeTables(positions: t), keep: true))
                XCTAssertEqual(
                    Self.floats(in: kept), network.keptFloats(tokens: t, lora: lora, dropout: dropout != nil),
                    "\(architecture), dropout \(dropout != nil)")
            }
        }
    }

    /// The floats of every array a value holds: its own fields, optionals and
    /// dictionaries of arrays included.
    static func floats(in value: Any) -> Int {
        switch value {
        case let array as [Float]: array.count
        case let arrays as [LoRAAdapter.Module: [Float]]: arrays.values.reduce(0) { $0 + $1.count }
        default: Mirror(reflecting: value).children.reduce(0) { $0 + floats(in: $1.value) }
        }
    }
}
