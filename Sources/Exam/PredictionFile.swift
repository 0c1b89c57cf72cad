import Foundation

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
    /// 1-based; 0 when the file's answer is not one of the item's choices and was kept
    /// as uploaded (`invalidAnswer`): it counts as wrong and abstains in ensembles.
    public var answer: Int
    /// Always 5 entries; nil where the file left the value empty (or the item has
    /// fewer choices).
    public var values: [Double?]
    /// The answer field verbatim, when it is not a choice (`정`, `[D`, 5 on a 4-choice item).
    public var invalidAnswer: String?

    public init(
        id: String, answer: Int, values: [Double?] = Array(repeating: nil, count: PredictionRow.maxChoices), invalidAnswer: String? = nil
    ) {
        self.id = id
        self.answer = answer
        self.values = values
        self.invalidAnswer = invalidAnswer
    }

    /// What the canonical and submission CSVs hold in the answer column.
    public var answerField: String { invalidAnswer ?? String(answer) }
}

/// What `import --invalid` does with answers that are not one of an item's choices.
public enum InvalidAnswerRule: String, Sendable, CaseIterable, Codable {
    /// The file is refused (the default).
    case refuse
    /// Kept verbatim, counted as wrong, abstaining in votes and averages.
    case asWrong = "as-wrong"
}

/// How a prediction file is read.
public struct PredictionFileOptions: Sendable {
    public var invalidAnswers: InvalidAnswerRule
    /// The file may cover part of the dataset (validation or train predictions).
    public var subset: Bool

    public init(invalidAnswers: InvalidAnswerRule = .refuse, subset: Bool = false) {
        self.invalidAnswers = invalidAnswers
        self.subset = subset
    }
}

/// A prediction file as read: the table and what the reader noticed on the way.
public struct PredictionFileReading: Sendable {
    public var table: PredictionTable
    /// Answers kept verbatim under `--invalid as-wrong`.
    public var invalidAnswers: Int
    /// Columns the reader does not use, by their header name.
    public var ignoredColumns: [String]
    /// Items whose answer is not the arg-max of their values (the answer column is what
    /// votes; the values are what averages).
    public var argmaxDisagreements: Int
    /// Items with a value past their choices (a 5th logit on a 4-choice item), ignored.
    public var valuesPastChoices: Int
    /// "comma" or "tab".
    public var separator: String
}

/// Every bad row of a prediction file, counted by kind, the first 20 shown with lines.
public struct PredictionFileProblems: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case notAChoice = "answer that is not a choice number|answers that are not a choice number"
        case outsideChoices = "answer outside the item's choices|answers outside the item's choices"
        case unknownId = "id not in the dataset|ids not in the dataset"
        case duplicateId = "duplicate id|duplicate ids"
        case fieldCount = "row with the wrong number of fields|rows with the wrong number of fields"
        case badValue = "row with missing or bad values|rows with missing or bad values"
        case controlCharacter = "row with a control character|rows with a control character"
        case missingRows = "missing rows|missing rows"

        func counted(_ n: Int) -> String {
            let forms = rawValue.split(separator: "|")
            return self == .missingRows ? String(forms[0]) : "\(n) \(n == 1 ? forms[0] : forms[1])"
        }
    }

    public static let shown = 20

    public var file: String
    public var problems: [(kind: Kind, problem: FileProblem)]

    public func count(_ kind: Kind) -> Int { problems.filter { $0.kind == kind }.count }

    public var description: String {
        let counts = Kind.allCases.compactMap { kind in count(kind) > 0 ? kind.counted(count(kind)) : nil }
        var lines = [
            "\(file): \(problems.count) problem\(problems.count == 1 ? "" : "s") (\(counts.joined(separator: ", ")))\(problems.count > Self.shown ? "; the first \(Self.shown)" : ""):"
        ]
        lines += problems.prefix(Self.shown).map { "  " + $0.problem.description }
        if count(.notAChoice) + count(.outsideChoices) == problems.count {
            lines.append("To store the file as it was uploaded (those answers count as wrong and abstain in ensembles): --invalid as-wrong")
        } else if count(.missingRows) > 0 && count(.missingRows) == problems.count {
            lines.append("A file that covers part of the dataset (validation or train predictions) is stored with --subset.")
        }
        return lines.joined(separator: "\n")
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

    /// Reads a prediction file and checks it against the dataset. What teams' scripts
    /// write is accepted: comma- or tab-separated; header names in any case; spaces
    /// around values; `1.0` as answer 1; per-choice columns `logit_1..logit_5` or
    /// `prob_1..prob_5`, or one `logits`/`probs` column holding a JSON or Python list
    /// (or numpy's `[0.1 0.2 0.3 0.4]`); other columns ignored. Every id exactly once
    /// and no other (all of the dataset's unless `subset`), finite numbers, a value for
    /// every valid choice. Every bad row is reported, not only the first.
    public static func read(bytes: [UInt8], file: String, dataset: DatasetShape, options: PredictionFileOptions = PredictionFileOptions())
        throws -> PredictionFileReading
    {
        let firstLine = bytes.prefix { $0 != UInt8(ascii: "\n") }
        let tab = UInt8(ascii: "\t")
        let separator = firstLine.contains(tab) && !firstLine.contains(UInt8(ascii: ",")) ? tab : UInt8(ascii: ",")
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes, separator: separator)
        } catch {
            throw FileProblem(file: file, line: error.line, message: error.message)
        }
        guard let header = records.first else {
            throw FileProblem(file: file, line: 1, message: "the file is empty (expected the header id,answer[,logit_1..logit_5])")
        }
        let columns = try Columns(header: header.fields, file: file)

        var position: [String: Int] = [:]
        for (index, id) in dataset.ids.enumerated() { position[id] = index }
        var rows: [PredictionRow?] = Array(repeating: nil, count: dataset.ids.count)
        var lineOfRow: [Int] = Array(repeating: 0, count: dataset.ids.count)
        var problems: [(kind: PredictionFileProblems.Kind, problem: FileProblem)] = []
        var invalidAnswers = 0, disagreements = 0, pastChoices = 0
        for record in records.dropFirst() {
            func problem(_ kind: PredictionFileProblems.Kind, _ field: String?, _ message: String) {
                problems.append((kind, FileProblem(file: file, line: record.line, field: field, message: message)))
            }
            guard record.fields.count == header.fields.count else {
                problem(.fieldCount, nil, "expected \(header.fields.count) fields, found \(record.fields.count)")
                continue
            }
            // NUL would be cut by number parsing ("1\0" read as 1) and by SQLite.
            if let stray = controlCharacterProblem(in: record.fields) {
                problem(.controlCharacter, excerpt(header.fields[stray.field]), stray.message)
                continue
            }
            let id = trimmed(record.fields[columns.id])
            guard let index = position[id] else {
                problem(.unknownId, "id", "\(excerpt(id)) is not an item of the dataset (is this file for another test set?)")
                continue
            }
            guard rows[index] == nil else {
                problem(.duplicateId, "id", "duplicate id \(excerpt(id)) (first on line \(lineOfRow[index]))")
                continue
            }
            lineOfRow[index] = record.line
            let choices = dataset.choiceCounts[index]
            let answerText = record.fields[columns.answer]
            var answer = 0
            var invalid: String?
            switch choiceNumber(trimmed(answerText)) {
            case let n? where (1...choices).contains(n):
                answer = n
            case _?:
                invalid = answerText
                if options.invalidAnswers == .refuse {
                    problem(
                        .outsideChoices, "answer",
                        "answer \(excerpt(trimmed(answerText))) is outside 1...\(choices) for item \(excerpt(id))")
                }
            case nil:
                invalid = answerText
                if options.invalidAnswers == .refuse {
                    problem(
                        .notAChoice, "answer", "'\(excerpt(answerText))' is not a choice number (item \(excerpt(id)), \(choices) choices)")
                }
            }
            if invalid != nil { invalidAnswers += 1 }
            var values: [Double?] = Array(repeating: nil, count: PredictionRow.maxChoices)
            if let kind = columns.kind {
                do {
                    values = try columns.values(of: record.fields, choices: choices, kind: kind)
                    if columns.hasValuePastChoices(record.fields, choices: choices) { pastChoices += 1 }
                } catch {
                    problem(.badValue, error.field, error.message + " (item \(excerpt(id)))")
                    continue
                }
                if answer > 0 {
                    let valid = values.prefix(choices).map { $0! }
                    if valid.firstIndex(of: valid.max()!)! + 1 != answer { disagreements += 1 }
                }
            }
            rows[index] = PredictionRow(id: id, answer: answer, values: values, invalidAnswer: invalid)
        }
        if !options.subset {
            let missing = rows.indices.filter { rows[$0] == nil && lineOfRow[$0] == 0 }
            if !missing.isEmpty {
                let shown = missing.prefix(3).map { excerpt(dataset.ids[$0]) }.joined(separator: ", ")
                problems.append(
                    (
                        .missingRows,
                        FileProblem(
                            file: file,
                            message:
                                "\(missing.count) of the dataset's \(dataset.ids.count) items have no row (\(shown)\(missing.count > 3 ? ", ..." : ""))"
                        )
                    ))
            }
        }
        guard problems.isEmpty else { throw PredictionFileProblems(file: file, problems: problems) }
        let present = rows.compactMap { $0 }
        guard !present.isEmpty else {
            throw FileProblem(file: file, message: "no rows (only the header)")
        }
        return PredictionFileReading(
            table: PredictionTable(choiceValues: columns.kind, rows: present), invalidAnswers: invalidAnswers,
            ignoredColumns: columns.ignored, argmaxDisagreements: disagreements, valuesPastChoices: pastChoices,
            separator: separator == tab ? "tab" : "comma")
    }

    /// An answer field as a choice number: `3`, ` 3 `, `3.0`; nil for anything else.
    static func choiceNumber(_ text: String) -> Int? {
        if let n = Int(text) { return n }
        if let x = Double(text), x.isFinite, x == x.rounded(), abs(x) < 1e9 { return Int(x) }
        return nil
    }

    /// Where a file keeps each thing: found from its header.
    struct Columns {
        var id: Int
        var answer: Int
        var kind: ChoiceValues?
        /// logit_1..logit_5 / prob_1..prob_5, or one list column.
        var perChoice: [Int?] = Array(repeating: nil, count: PredictionRow.maxChoices)
        var list: Int?
        var ignored: [String] = []

        init(header: [String], file: String) throws {
            var id: Int?, answer: Int?
            var kinds: Set<ChoiceValues> = []
            var seen: [String: Int] = [:]
            for (index, raw) in header.enumerated() {
                let name = trimmed(raw).lowercased()
                if let earlier = seen[name] {
                    throw FileProblem(
                        file: file, line: 1, field: excerpt(raw),
                        message: "column \(excerpt(raw)) appears twice (columns \(earlier + 1) and \(index + 1))")
                }
                seen[name] = index
                switch name {
                case "id": id = index
                case "answer": answer = index
                case "logits", "logit":
                    list = index
                    kinds.insert(.logits)
                case "probs", "prob", "probabilities", "probability":
                    list = index
                    kinds.insert(.probabilities)
                default:
                    if let (kind, choice) = PredictionTable.valueColumn(name) {
                        perChoice[choice - 1] = index
                        kinds.insert(kind)
                    } else {
                        ignored.append(raw)
                    }
                }
            }
            guard let id, let answer else {
                let missing = [id == nil ? "id" : nil, answer == nil ? "answer" : nil].compactMap { $0 }
                throw FileProblem(
                    file: file, line: 1,
                    message: "missing column \(missing.joined(separator: ", ")) (the header is \(excerpt(header.joined(separator: ","))))")
            }
            guard kinds.count <= 1 else {
                throw FileProblem(
                    file: file, line: 1,
                    message:
                        "both logit and probability columns: a file holds one kind of values (logit_1..logit_5 or logits, prob_1..prob_5 or probs)"
                )
            }
            guard list == nil || !perChoice.contains(where: { $0 != nil }) else {
                throw FileProblem(
                    file: file, line: 1, message: "both a list column and per-choice columns of values: a file holds one or the other")
            }
            self.id = id
            self.answer = answer
            self.kind = kinds.first
        }

        struct ValueError: Error {
            var field: String
            var message: String
        }

        /// Whether the row holds a value past the item's choices (which is ignored).
        func hasValuePastChoices(_ fields: [String], choices: Int) -> Bool {
            if let list {
                return (PredictionTable.numberList(trimmed(fields[list]))?.count ?? 0) > choices
            }
            return perChoice[choices...].contains { column in column.map { !trimmed(fields[$0]).isEmpty } ?? false }
        }

        /// The item's values, checked: one finite number per valid choice.
        func values(of fields: [String], choices: Int, kind: ChoiceValues) throws(ValueError) -> [Double?] {
            var numbers: [Double?] = Array(repeating: nil, count: PredictionRow.maxChoices)
            if let list {
                let field = kind == .logits ? "logits" : "probs"
                guard let parsed = PredictionTable.numberList(trimmed(fields[list])) else {
                    throw ValueError(field: field, message: "'\(excerpt(fields[list]))' is not a list of numbers")
                }
                guard parsed.count >= choices, parsed.count <= PredictionRow.maxChoices else {
                    throw ValueError(
                        field: field,
                        message: "\(parsed.count) values for \(choices) choices"
                            + (parsed.count > PredictionRow.maxChoices ? " (an item has at most \(PredictionRow.maxChoices))" : ""))
                }
                for (choice, value) in parsed.prefix(choices).enumerated() { numbers[choice] = value }
            } else {
                for choice in 1...choices {
                    let field = "\(kind.columnPrefix)\(choice)"
                    guard let column = perChoice[choice - 1] else {
                        throw ValueError(field: field, message: "\(choices) choices but no column \(field)")
                    }
                    let text = trimmed(fields[column])
                    guard !text.isEmpty else { throw ValueError(field: field, message: "empty \(field) with \(choices) choices") }
                    guard let value = Double(text) else { throw ValueError(field: field, message: "'\(excerpt(text))' is not a number") }
                    guard value.isFinite else { throw ValueError(field: field, message: "\(excerpt(text)) is not a finite number") }
                    numbers[choice - 1] = value
                }
            }
            // Values past the item's choice count (a 5th logit on a 4-choice item) mean
            // nothing and are not kept.
            for (choice, value) in numbers.prefix(choices).enumerated() {
                let field = list == nil ? "\(kind.columnPrefix)\(choice + 1)" : (kind == .logits ? "logits" : "probs")
                guard value!.isFinite else { throw ValueError(field: field, message: "\(value!) is not a finite number") }
                if kind == .probabilities && value! < 0 { throw ValueError(field: field, message: "probability \(value!) is negative") }
            }
            if kind == .probabilities && numbers.prefix(choices).reduce(0, { $0 + $1! }) <= 0 {
                throw ValueError(field: list == nil ? "prob_1" : "probs", message: "the probabilities sum to 0")
            }
            return numbers
        }
    }

    /// `[0.1, 0.2]` (JSON or Python, tuples too) or numpy's `[0.1 0.2]`.
    static func numberList(_ text: String) -> [Double]? {
        func number(_ value: PythonValue) -> Double? {
            switch value {
            case .int(let n): Double(n)
            case .float(let x): x
            default: nil
            }
        }
        if let parsed = try? PythonLiteral.parse(text), case .list(let items) = parsed {
            let numbers = items.compactMap(number)
            return numbers.count == items.count ? numbers : nil
        }
        guard text.hasPrefix("["), text.hasSuffix("]") else { return nil }
        let parts = text.dropFirst().dropLast().split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        let numbers = parts.compactMap { Double($0) }
        return numbers.count == parts.count && !numbers.isEmpty ? numbers : nil
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
    /// Swift's shortest round-trip form, zero unsigned (SQLite keeps -0.0 as 0, so a
    /// signed zero could not come back from the store as written). The same table
    /// always gives the same bytes.
    public var canonicalCSV: String {
        var lines = [
            ["id", "answer"] + (choiceValues.map { kind in (1...PredictionRow.maxChoices).map { "\(kind.columnPrefix)\($0)" } } ?? [])
        ]
        for row in rows {
            var fields = [row.id, row.answerField]
            if choiceValues != nil {
                fields += row.values.map { $0.map { $0 == 0 ? "0.0" : "\($0)" } ?? "" }
            }
            lines.append(fields)
        }
        return CSV.write(lines)
    }

    /// The submission CSV: `id,answer` in dataset order.
    public var submissionCSV: String {
        CSV.write([["id", "answer"]] + rows.map { [$0.id, $0.answerField] })
    }
}

extension PredictionTable {
    /// Correct answers over the items whose ids the gold set shares and labels.
    public func accuracy(against gold: [ExamItem]) -> (correct: Int, total: Int) {
        let answers = ExamSet(items: gold).answers
        var correct = 0, total = 0
        for row in rows {
            guard let answer = answers[row.id] else { continue }
            total += 1
            if row.answer == answer { correct += 1 }
        }
        return (correct, total)
    }
}

func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespaces) }

/// Checks a submission CSV as the competition would: the header `id,answer`, every
/// test id exactly once and in test order, each answer within its item's choices.
/// Every problem is reported (the first ones shown), not only the first.
public func validateSubmission(bytes: [UInt8], file: String, dataset: DatasetShape) throws {
    let records: [CSVRecord]
    do {
        records = try CSV.parse(bytes)
    } catch {
        throw FileProblem(file: file, line: error.line, message: error.message)
    }
    guard records.first?.fields == ["id", "answer"] else {
        throw FileProblem(
            file: file, line: 1,
            message: "the header must be id,answer (it is \(excerpt(records.first?.fields.joined(separator: ",") ?? "missing")))")
    }
    let rows = Array(records.dropFirst())
    var problems: [FileProblem] = []
    if rows.count != dataset.ids.count {
        problems.append(FileProblem(file: file, message: "\(rows.count) rows for a test set of \(dataset.ids.count) items"))
    }
    for (index, record) in rows.enumerated() {
        guard index < dataset.ids.count else { break }
        guard record.fields.count == 2, record.fields[0] == dataset.ids[index] else {
            problems.append(
                FileProblem(
                    file: file, line: record.line, field: "id",
                    message:
                        "row \(index + 1) is \(excerpt(record.fields.first ?? "empty")), expected \(dataset.ids[index]) (test-file order)"))
            continue
        }
        guard let answer = Int(record.fields[1]), (1...dataset.choiceCounts[index]).contains(answer) else {
            problems.append(
                FileProblem(
                    file: file, line: record.line, field: "answer",
                    message: "answer '\(excerpt(record.fields[1]))' is not within 1...\(dataset.choiceCounts[index])"))
            continue
        }
    }
    guard problems.isEmpty else { throw FileProblems(problems) }
}
