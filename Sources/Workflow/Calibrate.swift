import Ensemble
import Exam
import Foundation
import Store

/// Calibrates each member with values on the labelled items it answers (see
/// `Ensemble.fitCalibration`), so that averaging weighs calibrated probabilities. A
/// member with answers only is left as it is. Returns the members and what was fitted,
/// as the lineage records it.
public func calibrate(_ members: [Member], dataset: DatasetRecord, gold: [String: Int], kind: CalibrationKind) throws -> (
    members: [Member], fits: [MemberCalibration]
) {
    var fits: [MemberCalibration] = []
    let calibrated = try members.map { member -> Member in
        let rows: [[Double]]
        let isLogits: Bool
        switch member.values {
        case .logits(let values):
            rows = values
            isLogits = true
        case .probabilities(let values):
            rows = values
            isLogits = false
        case .none: return member
        }
        // Logits of each item's valid choices; log-probabilities for probabilities.
        let logits = dataset.choiceCounts.indices.map { item -> [Double] in
            let valid = Array(rows[item].prefix(dataset.choiceCounts[item]))
            guard !isLogits else { return valid }
            let largest = valid.max()!
            let sum = valid.reduce(0) { $0 + $1 / largest }
            return valid.map { log(max($0 / largest / sum, 1e-12)) }
        }
        let labelled = dataset.itemIds.indices.filter { gold[dataset.itemIds[$0]] != nil && member.answers[$0] != 0 }
        guard labelled.count >= 2 else {
            throw StoreError.invalid(
                "--calibrate: the gold file labels \(labelled.count) of the items \(member.name) answers; calibration needs labelled items")
        }
        let fit = try fitCalibration(logits: labelled.map { logits[$0] }, gold: labelled.map { gold[dataset.itemIds[$0]]! }, kind: kind)
        fits.append(
            MemberCalibration(
                member: member.name, kind: kind.rawValue, temperature: fit.temperature, positionBias: fit.positionBias,
                items: labelled.count))
        let probabilities = logits.map { fit.probabilities(logits: $0) + Array(repeating: 0, count: PredictionRow.maxChoices - $0.count) }
        return Member(name: member.name, answers: member.answers, values: .probabilities(probabilities), publicScore: member.publicScore)
    }
    return (calibrated, fits)
}
