/// The ordered item ids of a dataset and each item's number of choices: all that a
/// prediction file is checked against.
public struct DatasetShape: Sendable, Equatable {
    public var ids: [String]
    public var choiceCounts: [Int]

    public init(ids: [String], choiceCounts: [Int]) {
        self.ids = ids
        self.choiceCounts = choiceCounts
    }

    public init(_ exam: ExamSet) {
        self.init(ids: exam.items.map(\.id), choiceCounts: exam.items.map(\.choices.count))
    }
}

/// What the per-choice numbers of a prediction set are.
public enum ChoiceValues: String, Sendable, Codable {
    case logits
    case probabilities

    /// The CSV column prefix: `logit_1` or `prob_1`.
    public var columnPrefix: String { self == .logits ? "logit_" : "prob_" }
}

/// One row of a prediction set: the answer and up to 5 per-choice values.
public struct PredictionRow: Sendable, Equatable {
    public static let maxChoices = 5

    public var id: String
    public var answer: Int
    /// Always 5 entries; nil where the file left the value empty (or the item has
    /// fewer choices).
    public var values: [Double?]

    public init(id: String, answer: Int, values: [Double?] = Array(repeating: nil, count: PredictionRow.maxChoices)) {
        self.id = id
        self.answer = answer
        self.values = values
    }
}

/// A prediction set in canonical form: rows in dataset order, validated against it.
public struct PredictionTable: Sendable, Equatable {
    public var choiceValues: ChoiceValues?
    public var rows: [PredictionRow]

    public init(choiceValues: ChoiceValues?, rows: [PredictionRow]) {
        self.choiceValues = choiceValues
        self.rows = rows
    }

    /// Reads a prediction CSV (`id,answer[,logit_1..logit_5 | prob_1..prob_5]`, any row
    /// order) and checks it against the dataset: every id exactly once and no other,
    /// answers within the item's choices, finite numbers, a value for every valid choice.
    public static func read(bytes: [UInt8], file: String, dataset: DatasetShape) throws -> PredictionTable {
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes)
        } catch {
            throw FileProblem(file: file, line: error.line, message: error.message)
        }
        guard let header = records.first else {
            throw FileProblem(file: file, line: 1, message: "the file is empty (expected the header id,answer[,logit_1..logit_5])")
        }
        var idColumn: Int?, answerColumn: Int?
        var valueColumns: [Int?] = Array(repeating: nil, count: PredictionRow.maxChoices)
        var kinds: Set<ChoiceValues> = []
        for (index, name) in header.fields.enumerated() {
            func duplicate() -> FileProblem { FileProblem(file: file, line: 1, field: name, message: "column \(name) appears twice") }
            switch name {
            case "id":
                guard idColumn == nil else { throw duplicate() }
                idColumn = index
            case "answer":
                guard answerColumn == nil else { throw duplicate() }
                answerColumn = index
            default:
                guard let (kind, choice) = valueColumn(name) else {
                    throw FileProblem(file: file, line: 1, field: name, message: "unexpected column \(name) (expected id, answer, and optionally logit_1..logit_5 or prob_1..prob_5)")
                }
                guard valueColumns[choice - 1] == nil else { throw duplicate() }
                valueColumns[choice - 1] = index
                kinds.insert(kind)
            }
        }
        guard let idColumn, let answerColumn else {
            let missing = [idColumn == nil ? "id" : nil, answerColumn == nil ? "answer" : nil].compactMap { $0 }
            throw FileProblem(file: file, line: 1, message: "missing column \(missing.joined(separator: ", ")) (the header is \(header.fields.joined(separator: ",")))")
        }
        guard kinds.count <= 1 else {
            throw FileProblem(file: file, line: 1, message: "both logit_* and prob_* columns; a file holds one kind")
        }
        let choiceValues = kinds.first

        var position: [String: Int] = [:]
        for (index, id) in dataset.ids.enumerated() { position[id] = index }
        var rows: [PredictionRow?] = Array(repeating: nil, count: dataset.ids.count)
        var lineOfRow: [Int] = Array(repeating: 0, count: dataset.ids.count)
        var unknown: [(line: Int, id: String)] = []
        for record in records.dropFirst() {
            func problem(_ field: String?, _ message: String) -> FileProblem {
                FileProblem(file: file, line: record.line, field: field, message: message)
            }
            guard record.fields.count == header.fields.count else {
                throw problem(nil, "expected \(header.fields.count) fields, found \(record.fields.count)")
            }
            let id = record.fields[idColumn]
            guard let index = position[id] else {
                unknown.append((record.line, id))
                continue
            }
            guard rows[index] == nil else {
                throw problem("id", "duplicate id \(id) (first on line \(lineOfRow[index]))")
            }
            let choices = dataset.choiceCounts[index]
            let answerText = record.fields[answerColumn]
            guard let answer = Int(answerText) else {
                throw problem("answer", "answer '\(answerText)' is not an integer")
            }
            guard (1...choices).contains(answer) else {
                throw problem("answer", "answer \(answer) is outside 1...\(choices) for item \(id), which has \(choices) choices")
            }
            var values: [Double?] = Array(repeating: nil, count: PredictionRow.maxChoices)
            if let choiceValues {
                for choice in 1...choices {
                    let field = "\(choiceValues.columnPrefix)\(choice)"
                    guard let column = valueColumns[choice - 1] else {
                        throw problem(field, "item \(id) has \(choices) choices but the file has no column \(field)")
                    }
                    let text = record.fields[column]
                    guard !text.isEmpty else {
                        throw problem(field, "empty \(field) for item \(id), which has \(choices) choices")
                    }
                    guard let value = Double(text) else {
                        throw problem(field, "'\(text)' is not a number")
                    }
                    guard value.isFinite else {
                        throw problem(field, "\(text) is not a finite number")
                    }
                    if choiceValues == .probabilities && value < 0 {
                        throw problem(field, "probability \(text) is negative")
                    }
                    values[choice - 1] = value
                }
                // Values past the item's choice count (a 5th logit on a 4-choice item)
                // mean nothing and are not kept.
            }
            rows[index] = PredictionRow(id: id, answer: answer, values: values)
            lineOfRow[index] = record.line
        }
        if let first = unknown.first {
            throw FileProblem(file: file, line: first.line, field: "id", message: "\(unknown.count) id\(unknown.count > 1 ? "s" : "") not in the dataset, first \(first.id) (is this file for another test set?)")
        }
        let missing = rows.indices.filter { rows[$0] == nil }
        if !missing.isEmpty {
            let shown = missing.prefix(3).map { dataset.ids[$0] }.joined(separator: ", ")
            throw FileProblem(file: file, message: "\(missing.count) of the dataset's \(dataset.ids.count) items have no row (\(shown)\(missing.count > 3 ? ", ..." : ""))")
        }
        if choiceValues == .probabilities {
            for (index, row) in rows.enumerated() where row!.values.compactMap({ $0 }).reduce(0, +) <= 0 {
                throw FileProblem(file: file, line: lineOfRow[index], message: "the probabilities of item \(row!.id) sum to 0")
            }
        }
        return PredictionTable(choiceValues: choiceValues, rows: rows.map { $0! })
    }

    static func valueColumn(_ name: String) -> (ChoiceValues, Int)? {
        for kind in [ChoiceValues.logits, .probabilities] where name.hasPrefix(kind.columnPrefix) {
            if let choice = Int(name.dropFirst(kind.columnPrefix.count)), (1...PredictionRow.maxChoices).contains(choice) {
                return (kind, choice)
            }
        }
        return nil
    }

    /// The canonical CSV: header, one row per item in dataset order, all five value
    /// columns when the set has values (empty past an item's choices), numbers in
    /// Swift's shortest round-trip form. The same table always gives the same bytes.
    public var canonicalCSV: String {
        var lines = [["id", "answer"] + (choiceValues.map { kind in (1...PredictionRow.maxChoices).map { "\(kind.columnPrefix)\($0)" } } ?? [])]
        for row in rows {
            var fields = [row.id, String(row.answer)]
            if choiceValues != nil {
                fields += row.values.map { $0.map { "\($0)" } ?? "" }
            }
            lines.append(fields)
        }
        return CSV.write(lines)
    }

    /// The submission CSV: `id,answer` in dataset order.
    public var submissionCSV: String {
        CSV.write([["id", "answer"]] + rows.map { [$0.id, String($0.answer)] })
    }
}

extension PredictionTable {
    /// Correct answers over the items whose ids the gold set shares and labels.
    public func accuracy(against gold: [ExamItem]) -> (correct: Int, total: Int) {
        var answers: [String: Int] = [:]
        for item in gold { answers[item.id] = item.answer }
        var correct = 0, total = 0
        for row in rows {
            guard let answer = answers[row.id] else { continue }
            total += 1
            if row.answer == answer { correct += 1 }
        }
        return (correct, total)
    }
}

/// Checks a submission CSV as the competition would: the header `id,answer`, every
/// test id exactly once and in test order, each answer within its item's choices.
public func validateSubmission(bytes: [UInt8], file: String, dataset: DatasetShape) throws {
    let records: [CSVRecord]
    do {
        records = try CSV.parse(bytes)
    } catch {
        throw FileProblem(file: file, line: error.line, message: error.message)
    }
    guard records.first?.fields == ["id", "answer"] else {
        throw FileProblem(file: file, line: 1, message: "the header must be id,answer")
    }
    let rows = records.dropFirst()
    guard rows.count == dataset.ids.count else {
        throw FileProblem(file: file, message: "\(rows.count) rows for a test set of \(dataset.ids.count) items")
    }
    for (index, record) in rows.enumerated() {
        guard record.fields.count == 2, record.fields[0] == dataset.ids[index] else {
            throw FileProblem(file: file, line: record.line, field: "id", message: "row \(index + 1) is \(record.fields.first ?? "empty"), expected \(dataset.ids[index]) (test-file order)")
        }
        guard let answer = Int(record.fields[1]), (1...dataset.choiceCounts[index]).contains(answer) else {
            throw FileProblem(file: file, line: record.line, field: "answer", message: "answer '\(record.fields[1])' is not within 1...\(dataset.choiceCounts[index])")
        }
    }
}
