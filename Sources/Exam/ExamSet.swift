import Foundation

/// One multiple-choice item of the competition's exam CSV.
public struct ExamItem: Sendable, Equatable {
    public var id: String
    public var paragraph: String
    public var question: String
    public var choices: [String]
    /// The <보기> text: the `question_plus` column, or the `question_plus` key inside
    /// `problems` (the real test file keeps it there); nil when absent or empty.
    public var questionPlus: String?
    /// 1-based; nil in a test file.
    public var answer: Int?

    public init(id: String, paragraph: String, question: String, choices: [String], questionPlus: String? = nil, answer: Int? = nil) {
        self.id = id
        self.paragraph = paragraph
        self.question = question
        self.choices = choices
        self.questionPlus = questionPlus
        self.answer = answer
    }
}

/// A problem found in a file, located by file, line and field.
public struct FileProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String

    public init(file: String, line: Int? = nil, field: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var place = excerpt(file, limit: 1000)
        if let line { place += ":\(line)" }
        if let field { place += " [\(field)]" }
        return "\(place): \(message)"
    }
}

/// Several problems in one file; prints the first few and how many more there are.
public struct FileProblems: Error, Sendable, CustomStringConvertible {
    public var problems: [FileProblem]

    public init(_ problems: [FileProblem]) { self.problems = problems }

    public var description: String {
        let shown = problems.prefix(10).map(\.description)
        let more = problems.count > 10 ? ["... and \(problems.count - 10) more problems"] : []
        return (shown + more).joined(separator: "\n")
    }
}

public struct ExamSet: Sendable {
    public static let requiredColumns = ["id", "paragraph", "problems"]
    public static let choiceCountRange = 2...5

    public var items: [ExamItem]

    public init(items: [ExamItem]) { self.items = items }

    /// The labelled items' answers, by id.
    public var answers: [String: Int] {
        var answers: [String: Int] = [:]
        for item in items { answers[item.id] = item.answer }
        return answers
    }

    /// Reads and validates an exam CSV; any problem fails the whole file.
    public static func load(path: String) throws -> ExamSet {
        let result = parse(bytes: try readFile(path), file: path)
        guard result.problems.isEmpty else { throw FileProblems(result.problems) }
        return ExamSet(items: result.items)
    }

    /// Parses every record it can and collects every problem, for `data check`.
    /// Items with problems are left out of `items`.
    public static func parse(bytes: [UInt8], file: String) -> (items: [ExamItem], problems: [FileProblem]) {
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes)
        } catch {
            return ([], [FileProblem(file: file, line: error.line, message: error.message)])
        }
        guard let header = records.first else {
            return (
                [],
                [FileProblem(file: file, line: 1, message: "the file is empty (expected the header id,paragraph,problems,question_plus)")]
            )
        }
        var column: [String: Int] = [:]
        for (index, name) in header.fields.enumerated() where column[name] == nil {
            column[name] = index
        }
        let missing = requiredColumns.filter { column[$0] == nil }
        guard missing.isEmpty else {
            return (
                [],
                [
                    FileProblem(
                        file: file, line: 1,
                        message:
                            "missing column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")) (the header is \(excerpt(header.fields.joined(separator: ","))))"
                    )
                ]
            )
        }

        var items: [ExamItem] = []
        var problems: [FileProblem] = []
        var firstLineOfId: [String: Int] = [:]
        for record in records.dropFirst() {
            func problem(_ field: String?, _ message: String) {
                problems.append(FileProblem(file: file, line: record.line, field: field, message: message))
            }
            guard record.fields.count == header.fields.count else {
                problem(nil, "expected \(header.fields.count) fields, found \(record.fields.count)")
                continue
            }
            if let stray = controlCharacterProblem(in: record.fields) {
                problem(excerpt(header.fields[stray.field]), stray.message)
                continue
            }
            // A checkout with CRLF line ends (git's autocrlf on Windows) has them inside
            // multi-line fields too: the same text, so the same items and dataset.
            let fields = record.fields.map(Self.unixLineEnds)
            let id = fields[column["id"]!]
            guard !id.isEmpty else {
                problem("id", "empty id")
                continue
            }
            if let earlier = firstLineOfId[id] {
                problem("id", "duplicate id \(excerpt(id)) (first on line \(earlier))")
                continue
            }
            firstLineOfId[id] = record.line
            let paragraph = fields[column["paragraph"]!]
            let plusColumn = column["question_plus"].map { fields[$0] } ?? ""
            do {
                var item = try problemsField(fields[column["problems"]!])
                item.id = id
                item.paragraph = paragraph
                if !plusColumn.isEmpty { item.questionPlus = plusColumn }
                items.append(item)
            } catch let error as ItemError {
                problem("problems", error.message)
            } catch {
                problem("problems", "\(error)")
            }
        }
        return (items, problems)
    }

    struct ItemError: Error { var message: String }

    /// CRLF and lone CR as LF.
    static func unixLineEnds(_ text: String) -> String {
        text.contains("\r") ? text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n") : text
    }

    /// Reads question, choices, answer and an optional question_plus from the
    /// `problems` literal.
    static func problemsField(_ text: String) throws -> ExamItem {
        let value: PythonValue
        do {
            value = try PythonLiteral.parse(text)
        } catch {
            throw ItemError(message: "not a Python literal: \(error)")
        }
        guard case .dict = value else { throw ItemError(message: "expected a dict, found a \(value.typeName)") }
        guard let questionValue = value["question"] else { throw ItemError(message: "no 'question' key") }
        guard case .string(let question) = questionValue else {
            throw ItemError(message: "'question' is a \(questionValue.typeName), expected str")
        }
        guard let choicesValue = value["choices"] else { throw ItemError(message: "no 'choices' key") }
        guard case .list(let list) = choicesValue else {
            throw ItemError(message: "'choices' is a \(choicesValue.typeName), expected a list")
        }
        var choices: [String] = []
        for (index, choice) in list.enumerated() {
            guard case .string(let text) = choice else {
                throw ItemError(message: "choice \(index + 1) is a \(choice.typeName), expected str")
            }
            choices.append(text)
        }
        guard choiceCountRange.contains(choices.count) else {
            throw ItemError(
                message: "\(choices.count) choices (an item has \(choiceCountRange.lowerBound) to \(choiceCountRange.upperBound))")
        }
        var answer: Int?
        switch value["answer"] {
        case nil, .none?, .string("")?:
            answer = nil
        case .int(let n)?:
            guard (1...choices.count).contains(n) else {
                throw ItemError(message: "answer \(n) is outside 1...\(choices.count)")
            }
            answer = n
        case let other?:
            throw ItemError(message: "'answer' is a \(other.typeName) (\(other)), expected an int or None")
        }
        var questionPlus: String?
        switch value["question_plus"] {
        case nil, .none?: break
        case .string(let text)?: questionPlus = text.isEmpty ? nil : text
        case let other?: throw ItemError(message: "'question_plus' is a \(other.typeName), expected str")
        }
        return ExamItem(id: "", paragraph: "", question: question, choices: choices, questionPlus: questionPlus, answer: answer)
    }
}

/// Reads a whole file, with the path in the error.
public func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            throw FileProblem(file: path, message: isDirectory.boolValue ? "is a folder, not a file" : "cannot be read")
        }
        throw FileProblem(file: path, message: "no such file")
    }
    return [UInt8](data)
}
