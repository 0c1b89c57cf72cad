import ArgumentParser
import Exam
import Foundation
import Store
import Synchronization
import TeamClient
import Workflow

/// `--workspace`, shared by every command that touches the store.
struct WorkspaceOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The workspace folder (default: the nearest folder, from here upwards, that holds suneung.sqlite; else the current folder).",
            valueName: "DIR"))
    var workspace: String?

    var located: Workspace { Workspace.locate(explicit: workspace) }

    /// Opens the store; times are shown from then on in the competition's time zone.
    func openStore() throws -> Store {
        let store = try Store(workspace: located)
        useCompetitionTimeZone()
        return store
    }

    /// A team server's client (`--remote NAME`); times shown in the competition's zone.
    func client(_ remote: String) throws -> RemoteClient {
        useCompetitionTimeZone()
        return try RemoteClient(remote: remote, workspace: located)
    }

    /// Times are shown in the competition's zone (also for a remote's data).
    func useCompetitionTimeZone() {
        let zone = ((try? Competition.load(workspace: located)) ?? Competition()).timeZone
        displayTimeZone.withLock { $0 = zone }
    }
}

/// Who made a set and what the team says of it: on every command that creates one.
struct SetNotesOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Who made it (default: git config user.name, else $USER).", valueName: "NAME"))
    var author: String?

    @Option(name: .customLong("tag"), help: ArgumentHelp("A tag (repeatable): letters, digits, '.', '_', '-'.", valueName: "TAG"))
    var tags: [String] = []

    @Option(help: "A note kept with the set.")
    var note: String?

    var notes: Store.SetNotes { Store.SetNotes(author: author ?? defaultAuthor(), tags: tags, note: note) }
}

/// Output formats of the commands that print tables.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case table, csv, json }

/// JSON as the commands print it: sorted keys, ISO 8601 dates, missing values null.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(iso8601(date))
    }
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A score in CSV: full precision, empty when missing.
func csvNumber(_ value: Double?) -> String { value.map { "\($0)" } ?? "" }

/// The command line as typed, quoted where a shell would need it; kept in lineage.
var commandLineText: String {
    CommandLine.arguments.map { argument in
        let safe = argument.unicodeScalars.allSatisfy {
            $0.properties.isAlphabetic || ("0"..."9").contains($0) || "@%+=:,./_-".unicodeScalars.contains($0)
        }
        return safe && !argument.isEmpty ? argument : "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// A score to four places, as %.4f writes it; by hand, since String(format:) took a
/// fifth of the upload log's time over 20,000 uploads.
func formatScore(_ score: Double?) -> String {
    guard let score else { return "-" }
    guard score.isFinite, abs(score) < 1e12 else { return String(format: "%.4f", score) }
    let units = Int((abs(score) * 10_000).rounded(.toNearestOrEven))
    let fraction = String(units % 10_000)
    return (score < 0 && units > 0 ? "-" : "") + "\(units / 10_000)." + String(repeating: "0", count: 4 - fraction.count) + fraction
}

func percent(_ part: Int, of whole: Int) -> String {
    whole == 0 ? "-" : String(format: "%.1f%%", 100 * Double(part) / Double(whole))
}

/// The competition's time zone (config/competition.yaml), set when a store is opened.
let displayTimeZone = Mutex<TimeZone>(TimeZone(identifier: "UTC")!)

/// A time in the competition's zone, with the zone's name: `2026-11-30 14:02 KST`.
func timestamp(_ date: Date) -> String {
    Competition.timestamp(date, zone: displayTimeZone.withLock { $0 })
}

/// A text table whose columns line up in a terminal, Hangul and Hanja counted as
/// two cells wide.
struct TextTable {
    enum Alignment { case left, right }

    var columns: [(title: String, alignment: Alignment)]
    var rows: [[String]] = []
    /// A two-column summary reads better without titles.
    var showsHeader = true

    init(_ columns: [(String, Alignment)]) {
        self.columns = columns.map { (title: $0.0, alignment: $0.1) }
    }

    /// A cell may be text from anywhere (a remote's names and notes): control
    /// characters are shown escaped, never sent to the terminal.
    mutating func add(_ row: [String]) { rows.append(row.map { excerpt($0, limit: .max) }) }

    var rendered: String {
        let all = [columns.map(\.title)] + rows
        let widths = columns.indices.map { column in all.map { displayWidth($0[column]) }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            var text = cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - displayWidth(cell))
                return columns[index].alignment == .left ? cell + pad : pad + cell
            }.joined(separator: "  ")
            // By hand: a regular expression a line took a third of a second over 20,000 rows.
            while text.hasSuffix(" ") { text.removeLast() }
            return text
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ((showsHeader ? [line(columns.map(\.title)), rule] : []) + rows.map(line)).joined(separator: "\n")
    }
}

func displayWidth(_ text: String) -> Int {
    text.unicodeScalars.reduce(0) { width, scalar in
        switch scalar.value {
        case 0x0300...0x036F, 0x200B...0x200F: width
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
            0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
            0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
            width + 2
        default: width + 1
        }
    }
}

/// Lines printed so far reach the terminal before progress lines on standard error.
func flushStandardOutput() {
    fflush(nil) // every output stream: stdout is a C global Swift 6 will not touch
}

func iso8601(_ date: Date) -> String { CivilTime(date).iso8601 }

extension ScoreKind: ExpressibleByArgument {}

/// A list option: `A,B,C`.
func commaList(_ text: String) -> [String] {
    text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// `--top K [--by S] [--exclude A,B]`: the K best-scored sets, as `MemberSelection.top`
/// chooses them (list, ensemble and agree take the same rule).
struct TopOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            The K sets with the best scores (--by): not ensembles, subsets or hidden sets; content two names share counts once (the better \
            scored); ties: the newer version first.
            """,
            valueName: "K"))
    var top: Int?

    @Option(help: "With --top: the score that ranks: public, private or local.")
    var by: ScoreKind = .public

    @Option(help: ArgumentHelp("With --top: leave these out (NAME for every version, or NAME@vK), comma-separated.", valueName: "LIST"))
    var exclude: String?

    func validate() throws {
        if top == nil && exclude != nil { throw ValidationError("--exclude goes with --top") }
    }

    /// The K sets; the copies passed over are said when `sayCopies`.
    func choose(_ k: Int, store: Store, datasetFile: String?, includeHidden: Bool = false, sayCopies: Bool = true) throws
        -> [PredictionSetRecord]
    {
        let chosen = try MemberSelection(store: store).top(
            k, by: by, datasetFile: datasetFile, excluding: exclude.map(commaList) ?? [], includeHidden: includeHidden)
        if sayCopies {
            for copy in chosen.skippedCopies { print("Skipped \(copy.skipped): the same answers and values as \(copy.sameAs).") }
        }
        return chosen.sets
    }
}
