import ArgumentParser
import Exam
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Inspect exam CSV files.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate an exam CSV (id,paragraph,problems[,question_plus]) and print its statistics.",
            discussion:
                """
                Prints the item count, 4-/5-choice counts, items with <보기>, items with answers, the answer distribution, paragraph length \
                percentiles (characters) and every problem found, each with file, line and field. Exits with status 1 when the file has \
                problems.
                """
        )

        @Argument(help: "The exam CSV file.")
        var file: String

        func run() throws {
            let (items, problems) = ExamSet.parse(bytes: try readFile(file), file: file)
            print(file)
            var table = TextTable([("", .left), ("", .left)])
            table.showsHeader = false
            table.add(["items", "\(items.count)"])
            let choiceCounts = Dictionary(grouping: items, by: \.choices.count).mapValues(\.count)
            table.add(["choices", choiceCounts.keys.sorted().map { "\($0): \(choiceCounts[$0]!)" }.joined(separator: ", ")])
            table.add(["with <보기>", "\(items.filter { $0.questionPlus != nil }.count)"])
            let answered = items.compactMap(\.answer)
            table.add(["with answers", "\(answered.count)"])
            if !answered.isEmpty {
                let counts = Dictionary(grouping: answered, by: { $0 }).mapValues(\.count)
                table.add([
                    "answers",
                    counts.keys.sorted().map { "\($0): \(counts[$0]!) (\(percent(counts[$0]!, of: answered.count)))" }.joined(
                        separator: ", ")
                ])
            }
            let lengths = items.map(\.paragraph.count).sorted()
            if !lengths.isEmpty {
                func percentile(_ p: Double) -> Int {
                    lengths[min(lengths.count - 1, Int((p / 100 * Double(lengths.count - 1)).rounded()))]
                }
                table.add([
                    "paragraph chars",
                    "min \(lengths[0]), p10 \(percentile(10)), p50 \(percentile(50)), p90 \(percentile(90)), p99 \(percentile(99)), max \(lengths.last!)"
                ])
            }
            table.add(["problems", problems.isEmpty ? "none" : "\(problems.count)"])
            print(indent(table.rendered))
            guard problems.isEmpty else {
                for problem in problems { print("  \(problem)") }
                throw ExitCode.failure
            }
        }
    }
}
