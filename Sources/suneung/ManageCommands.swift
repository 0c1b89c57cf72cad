import ArgumentParser
import Exam
import Foundation
import Store
import TeamClient
import Workflow

struct TagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag",
        abstract: "Add tags to a set (or remove them with --remove); `list --tag T` filters by them."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME (its latest version) or NAME@vK.")
    var ref: String

    @Argument(help: "Tags: letters, digits, '.', '_', '-'.")
    var tags: [String]

    @Flag(help: "Remove these tags instead.")
    var remove = false

    func run() throws {
        let store = try options.openStore()
        let set = try store.predictionSet(ref)
        if remove {
            let missing = try store.removeTags(tags, from: set)
            if !missing.isEmpty { print("\(set.ref) had no tag \(missing.joined(separator: ", ")).") }
        } else {
            try store.addTags(tags, to: set)
        }
        let now = try store.tags(of: set)
        print("\(set.ref): \(now.isEmpty ? "no tags" : "tags " + now.joined(separator: ", "))")
    }
}

struct NoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "note",
        abstract: "Set a set's note (what the team says of it), or clear it with --clear."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME (its latest version) or NAME@vK.")
    var ref: String

    @Argument(help: "The note.")
    var text: String?

    @Flag(help: "Remove the note.")
    var clear = false

    func validate() throws {
        if clear == (text != nil) { throw ValidationError("give the note, or --clear") }
    }

    func run() throws {
        let store = try options.openStore()
        let set = try store.predictionSet(ref)
        try store.setNote(text, of: set)
        print(text.map { "\(set.ref): note \"\(excerpt($0, limit: 200))\"" } ?? "\(set.ref): note cleared")
    }
}

struct RenameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rename",
        abstract: "Rename a set, every version of it; ensembles, uploads and lineage keep pointing at the same versions.",
        discussion:
            "Its files in predictions/ are renamed with it. A submission CSV already written keeps its file name. NEW must not exist."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "The name now.")
    var old: String

    @Argument(help: "The new name (letters, digits, '.', '_', '-'; at most 100).")
    var new: String

    func validate() throws {
        if old.contains("@") { throw ValidationError("rename takes a NAME: all its versions are renamed together") }
    }

    func run() throws {
        let store = try options.openStore()
        let refs = try store.rename(old, to: new)
        print("Renamed \(old) to \(new): \(refs.map(\.description).joined(separator: ", ")).")
    }
}

/// `hide` and `unhide`: out of `list` and `--top` unless `--all`; nothing is deleted.
struct HideCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hide",
        abstract: "Hide sets from list, --top, agree and select (list --all still shows them); nothing is deleted.",
        discussion: "NAME hides every version; NAME@vK that version."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME or NAME@vK, one or more.")
    var refs: [String]

    func run() throws { try setHidden(true, refs: refs, options: options) }
}

struct UnhideCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unhide",
        abstract: "Show hidden sets again."
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME or NAME@vK, one or more.")
    var refs: [String]

    func run() throws { try setHidden(false, refs: refs, options: options) }
}

func setHidden(_ hidden: Bool, refs: [String], options: WorkspaceOptions) throws {
    let store = try options.openStore()
    let sets = try refs.flatMap { try store.versions(try SetRef(parsing: $0)) }
    try store.setHidden(hidden, sets)
    print("\(hidden ? "Hidden" : "Shown"): \(sets.map(\.ref.description).joined(separator: ", ")).")
}

struct UploadsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uploads",
        abstract: "The upload log: every recorded leaderboard upload in time order, and how many remain today.",
        discussion: """
            An upload is a `suneung score REF --public X [--private Y]` (the pipeline's simulated \
            scores are not uploads). Today's remaining uploads follow daily_submissions and \
            timezone in config/competition.yaml (default 10 a day, Asia/Seoul); retracted \
            uploads are shown but not counted.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: "Output format.")
    var format: OutputFormat = .table

    @OptionGroup var remote: RemoteOptions

    func run() throws {
        let log: UploadLog
        if let name = remote.remote {
            log = try options.client(name).uploads()
        } else {
            log = try UploadLog(store: try options.openStore())
        }
        let uploads = log.uploads
        switch format {
        case .json:
            try printJSON(log)
        case .csv:
            print(
                CSV.write(
                    [["id", "set", "public", "private", "note", "author", "created", "retracted"]]
                        + uploads.map {
                            [
                                "\($0.id)", $0.set, csvNumber($0.public), csvNumber($0.private), $0.note ?? "", $0.author ?? "",
                                iso8601($0.createdAt), $0.retractedAt.map(iso8601) ?? ""
                            ]
                        }), terminator: "")
        case .table:
            if uploads.isEmpty {
                print("No uploads recorded yet: after each upload, `suneung score NAME --public X`.")
            } else {
                var table = TextTable([
                    ("#", .right), ("time", .left), ("set", .left), ("public", .right), ("private", .right), ("author", .left),
                    ("note", .left)
                ])
                for upload in uploads {
                    table.add([
                        "\(upload.id)", timestamp(upload.createdAt), upload.set + (upload.retractedAt == nil ? "" : " (retracted)"),
                        formatScore(upload.public), formatScore(upload.private),
                        excerpt(upload.author ?? "", limit: 24), excerpt(upload.note ?? "", limit: 60)
                    ])
                }
                print(table.rendered)
            }
            print("Today (\(log.timezone)): \(log.usedToday) of \(log.dailySubmissions) uploads used, \(log.remainingToday) left.")
        }
    }
}

struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract:
            """
            Check the store: SQLite's integrity check, every set's rows against their sha256, the files in predictions/ and submissions/; \
            repair what can be rebuilt.
            """,
        discussion: """
            A missing or changed file is written again from the store's rows (which the \
            recorded sha256 vouches for); a file in predictions/ named as a set's file \
            (NAME@vK.csv) whose set does not exist is moved to quarantine/, and anything \
            else there (a folder of old CSVs, notes) is left alone; what a killed command \
            left is finished. A managed folder that is a symbolic link is refused. Rows that no longer match their \
            sha256 cannot be repaired here (restore the store from a backup). --check only \
            reports. Exit 1 when a problem remains.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Flag(help: "Report only; change nothing.")
    var check = false

    func run() throws {
        let store = try options.openStore()
        let repair = !check && store.writable
        if !check && !store.writable { print("The workspace is read-only: checking only, nothing is repaired.") }
        let report = try store.fsck(repair: repair)
        print("Checked \(report.sets) sets.")
        print(
            report.database.isEmpty
                ? "database: ok (integrity_check, foreign_key_check)" : "database: " + report.database.joined(separator: "\n  "))
        for path in report.rebuilt { print("\(repair ? "rebuilt" : "would rebuild") \(excerpt(path, limit: 1000))") }
        for path in report.strays {
            print("\(repair ? "removed" : "would remove") \(excerpt(path, limit: 1000)) (a killed command's temporary file)")
        }
        for path in report.quarantined {
            print("\(repair ? "quarantined" : "would quarantine") \(excerpt(path, limit: 1000)) (a set's file, but no such set)")
        }
        for problem in report.corrupted { print("corrupted: \(problem)") }
        if report.clean { print("Everything is in order.") }
        if !report.database.isEmpty || !report.corrupted.isEmpty || (!repair && !report.clean) { throw ExitCode.failure }
    }
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a submission CSV made outside suneung, as the competition would, without storing it.",
        discussion:
            """
            The header id,answer; every test id exactly once, in test order; each answer within its item's choices. Every problem is \
            reported. Exit 1 if there is one.
            """
    )

    @Argument(help: "The submission CSV.")
    var file: String

    @Option(help: ArgumentHelp("The test set.", valueName: "TEST.csv"))
    var dataset: String

    func run() throws {
        let shape = DatasetShape(try ExamSet.load(path: dataset))
        try validateSubmission(bytes: try readFile(file), file: file, dataset: shape)
        print("\(file): a valid submission for \(dataset) (\(shape.ids.count) rows, test order).")
    }
}
