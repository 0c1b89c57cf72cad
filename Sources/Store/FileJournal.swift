import Exam
import Foundation
import GRDB

/// A file that belongs to a set: written inside the set's transaction and kept only if
/// the set exists once the transaction is over.
struct ManagedFile {
    var url: URL
    /// nil: nothing to write, the file is only looked after (the old file of a rename,
    /// which goes once its set no longer has that name).
    var text: String?
    var owner: SetRef
    /// Run on the file as written, before the commit (a submission's check).
    var verify: ((URL) throws -> Void)?

    init(url: URL, text: String?, owner: SetRef, verify: ((URL) throws -> Void)? = nil) {
        self.url = url
        self.text = text
        self.owner = owner
        self.verify = verify
    }
}

/// One line of a journal: a file and the set it is written for.
struct JournalEntry: Codable {
    var path: String
    var owner: String
}

// MARK: - Files written with their rows

extension Store {
    static let journalPrefix = ".suneung-pending-"
    /// A real journal names a few files per set; anything larger was not written by suneung.
    static let maxJournalBytes = 1 << 20

    /// Runs a write transaction whose rows own files: the files are written (each
    /// atomically) before the commit, and a journal names them first. A failure settles
    /// them with the rolled-back rows; a kill -9 between the files and the commit leaves
    /// a journal, and the next write transaction (holding the write lock, so that no
    /// writer is between its files and its commit) settles each file whose owner set
    /// does not exist. So a set never exists without its file, nor a file without its set.
    func writeWithFiles<T>(_ body: (Database) throws -> (T, [ManagedFile])) throws -> T {
        try requireWritable()
        let journal = workspace.root.appendingPathComponent("\(Store.journalPrefix)\(getpid())-\(UUID().uuidString.prefix(8)).json")
        var written: [JournalEntry] = []
        var entries: [JournalEntry] = []
        do {
            let result = try write { db -> T in
                let (result, files) = try body(db)
                guard !files.isEmpty else { return result }
                entries = files.map { JournalEntry(path: $0.url.standardizedFileURL.path, owner: $0.owner.description) }
                try writeAtomically(String(decoding: try JSONEncoder().encode(entries), as: UTF8.self), to: journal)
                for (file, entry) in zip(files, entries) {
                    guard let text = file.text else { continue }
                    try writeAtomically(text, to: file.url)
                    written.append(entry)
                    try file.verify?(file.url)
                }
                return result
            }
            // Committed: the files of owners that no longer exist (a rename's old names) go.
            if !entries.isEmpty, (try? database.write({ db in try settle(entries, trusted: true, in: db) })) != nil {
                unlink(journal.path)
            }
            return result
        } catch {
            // Rolled back: what was written goes, or is written back from the set that
            // still owns its path (the submission a newer version shared). Where even
            // that fails, the journal stays for the next writer.
            if written.isEmpty || (try? database.write({ db in try settle(written, trusted: true, in: db) })) != nil {
                unlink(journal.path)
            }
            throw error
        }
    }

    /// Each journalled file whose owner set does not exist goes, unless its path belongs
    /// to a set that exists: then it is written back from that set's rows. `trusted`:
    /// the writer's own list, which may name its `--out` anywhere; a journal read from
    /// disk may have been planted, so only files directly in predictions/ and
    /// submissions/ are touched, and never anything but a regular file.
    func settle(_ entries: [JournalEntry], trusted: Bool, in db: Database) throws {
        for entry in entries {
            guard let ref = try? SetRef(parsing: entry.owner), let version = ref.version else { continue }
            let url = URL(fileURLWithPath: entry.path).standardizedFileURL
            guard trusted || workspace.isManagedFile(url) else { continue }
            let exists = try PredictionSetRecord.filter(Column("name") == ref.name && Column("version") == version).fetchCount(db) > 0
            if !exists { try release(url, in: db) }
        }
    }

    /// A file no set was made for: removed, or written back from the set that owns the
    /// path (a live set's file in predictions/; the newest submission recorded there).
    func release(_ url: URL, in db: Database) throws {
        guard let text = try ownedText(at: url, in: db) else {
            removeRegularFile(url)
            return
        }
        if (try? readFile(url.path)) != Array(text.utf8) { try writeAtomically(text, to: url) }
    }

    /// What an existing set says a path should hold, if one owns it.
    func ownedText(at url: URL, in db: Database) throws -> String? {
        if url.deletingLastPathComponent().path == workspace.predictionsFolder.path, url.pathExtension == "csv",
            let ref = try? SetRef(parsing: String(url.deletingPathExtension().lastPathComponent)), let version = ref.version,
            let set = try PredictionSetRecord.filter(Column("name") == ref.name && Column("version") == version).fetchOne(db)
        {
            return try Store.table(setId: set.id!, choiceValues: set.choiceValues, in: db).canonicalCSV
        }
        guard
            let setId = try Int64.fetchOne(
                db, sql: "SELECT setId FROM submission WHERE path = ? ORDER BY id DESC LIMIT 1", arguments: [workspace.relative(url)]),
            let set = try PredictionSetRecord.fetchOne(db, key: setId)
        else { return nil }
        return try Store.table(setId: setId, choiceValues: set.choiceValues, in: db).submissionCSV
    }

    /// Every write transaction first finishes what a killed writer left: it holds the
    /// write lock, so a journal it finds belongs to a writer that is gone; a temporary
    /// file names its writer's pid.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try database.write { db in
            try recoverJournals(in: db)
            sweepTemporaryFiles()
            return try body(db)
        }
    }

    /// The journals of killed writers: each journalled file is settled, and the writer's
    /// temporary file goes. A journal whose writer still runs (a pid that is alive: it
    /// was not written under this lock, so it was planted) or that is not a regular file
    /// of a journal's size is left alone.
    func recoverJournals(in db: Database) throws {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: workspace.root.path)) ?? []
        where name.hasPrefix(Store.journalPrefix) && name.hasSuffix(".json") {
            let url = workspace.root.appendingPathComponent(name)
            guard let pid = Self.pid(inJournal: name), pid == getpid() || !processIsAlive(pid),
                let size = regularFileSize(url), size <= Store.maxJournalBytes
            else { continue }
            if let data = FileManager.default.contents(atPath: url.path),
                let entries = try? JSONDecoder().decode([JournalEntry].self, from: data)
            {
                try settle(entries, trusted: false, in: db)
                for entry in entries {
                    let file = URL(fileURLWithPath: entry.path).standardizedFileURL
                    if workspace.isManagedFile(file) { removeRegularFile(temporaryFile(for: file, pid: pid)) }
                }
            }
            unlink(url.path)
        }
    }

    /// Temporary files in the workspace, predictions/ and submissions/ of writers that
    /// are gone (killed inside `writeAtomically`), and those Foundation's atomic writes
    /// left (`.dat.nosync*`, from earlier versions); returns what it removed. Regular
    /// files only: a folder or link with such a name is not suneung's.
    @discardableResult
    func sweepTemporaryFiles(remove: Bool = true) -> [String] {
        var swept: [String] = []
        for folder in [workspace.root, workspace.predictionsFolder, workspace.submissionsFolder] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasPrefix(".") {
                let url = folder.appendingPathComponent(name)
                let parts = name.split(separator: ".")
                let deadWriter =
                    name.hasSuffix(".tmp") && parts.count >= 3 && Int32(parts[parts.count - 2]).map { !processIsAlive($0) } == true
                guard deadWriter || name.hasPrefix(".dat.nosync"), regularFileSize(url) != nil else { continue }
                swept.append(workspace.relative(url))
                if remove { unlink(url.path) }
            }
        }
        return swept
    }

    static func pid(inJournal name: String) -> Int32? {
        Int32(name.dropFirst(journalPrefix.count).prefix { $0 != "-" })
    }
}

extension Workspace {
    /// Whether a path is a set's file or a submission directly in predictions/ or
    /// submissions/ (real folders of this workspace, not links), and is a regular file
    /// or absent: what a journal read from disk may make suneung touch.
    func isManagedFile(_ url: URL) -> Bool {
        let folder = url.deletingLastPathComponent()
        guard [predictionsFolder.path, submissionsFolder.path].contains(folder.path), url.pathExtension == "csv",
            !url.lastPathComponent.hasPrefix("."),
            isRealFolder(folder)
        else { return false }
        var status = stat()
        return lstat(url.path, &status) != 0 ? errno == ENOENT : (status.st_mode & S_IFMT) == S_IFREG
    }

    /// A folder of the workspace that is no symbolic link and whose real path is inside
    /// the root's (the root itself may be reached through a link: a user's path).
    func isRealFolder(_ url: URL) -> Bool {
        var status = stat()
        guard url.path.hasPrefix(root.path + "/"), lstat(url.path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR,
            let real = realpath(url.path, nil)
        else { return false }
        defer { free(real) }
        guard let realRoot = realpath(root.path, nil) else { return false }
        defer { free(realRoot) }
        return String(cString: real) == String(cString: realRoot) + url.path.dropFirst(root.path.count)
    }

    /// Refuses a managed folder that is a symbolic link or not a folder: writes and
    /// `fsck` would otherwise act on whatever it points at.
    public func checkFolders() throws {
        for name in Workspace.folders {
            let url = root.appendingPathComponent(name)
            var status = stat()
            guard lstat(url.path, &status) == 0 else { continue }
            let type = status.st_mode & S_IFMT
            guard type != S_IFLNK else {
                throw StoreError.invalid(
                    "\(url.path) is a symbolic link: suneung writes only in the workspace's own folders (make \(name)/ a real folder)")
            }
            guard type == S_IFDIR else { throw StoreError.invalid("\(url.path) is not a folder (suneung keeps its \(name) there)") }
        }
    }
}

/// The size of a regular file (not a link, not a folder), or nil.
func regularFileSize(_ url: URL) -> Int? {
    var status = stat()
    guard lstat(url.path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int(status.st_size)
}

/// unlink(2), which removes no folder and follows no link, for regular files only.
func removeRegularFile(_ url: URL) {
    if regularFileSize(url) != nil { unlink(url.path) }
}

/// Whether a process exists (EPERM: it exists but belongs to another user).
func processIsAlive(_ pid: Int32) -> Bool {
    pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
}
