import Crypto
import Exam
import Foundation

/// A team's project folder: the store and the folders of files it exports.
public struct Workspace: Sendable {
    public static let databaseName = "suneung.sqlite"
    public static let folders = ["config", "data", "predictions", "submissions", "checkpoints"]

    public var root: URL

    public init(root: URL) { self.root = root.standardizedFileURL }

    /// `explicit` if given, else the nearest folder from `start` upwards that holds a
    /// store, else `start` itself.
    public static func locate(explicit: String?, from start: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        -> Workspace
    {
        if let explicit { return Workspace(root: URL(fileURLWithPath: explicit, relativeTo: start)) }
        var folder = start.standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent(databaseName).path) {
                return Workspace(root: folder)
            }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { return Workspace(root: start) }
            folder = parent
        }
    }

    public var databasePath: String { root.appendingPathComponent(Workspace.databaseName).path }
    public var predictionsFolder: URL { root.appendingPathComponent("predictions") }
    public var submissionsFolder: URL { root.appendingPathComponent("submissions") }

    public func predictionFile(for ref: SetRef) -> URL {
        predictionsFolder.appendingPathComponent("\(ref).csv")
    }

    /// Creates the folders (idempotent).
    public func createFolders() throws {
        for folder in Workspace.folders {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
    }

    /// A path from a config or flag: ~ is the home folder; a relative path is from the
    /// workspace root.
    public func resolve(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        return (expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : root.appendingPathComponent(expanded)).standardizedFileURL.path
    }

    /// A path as the user would type it from the workspace root.
    public func relative(_ url: URL) -> String {
        let path = url.standardizedFileURL.path
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}

/// Writes a file so that a reader sees the old content or the new, never a part:
/// a temporary file in the same folder (named by the writer's pid, so that what a
/// killed writer leaves can be told apart and removed), flushed, then renamed over the
/// target. POSIX calls rather than Foundation's, which make temporary files of their own.
public func writeAtomically(_ text: String, to url: URL) throws {
    let folder = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let temporary = temporaryFile(for: url, pid: getpid())
    func failure(_ what: String) -> FileProblem {
        let reason = String(cString: strerror(errno))
        unlink(temporary.path)
        return FileProblem(file: url.path, message: "cannot \(what): \(reason)")
    }
    // A link planted under the temporary name would otherwise be followed and its
    // target truncated: the name is cleared and the file made new, never through a link.
    unlink(temporary.path)
    let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
    guard fd >= 0 else { throw failure("write") }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else {
            close(fd)
            throw failure("write")
        }
        written += n
    }
    guard fsync(fd) == 0 else {
        close(fd)
        throw failure("flush")
    }
    close(fd)
    guard rename(temporary.path, url.path) == 0 else { throw failure("replace the file") }
}

/// The temporary file `writeAtomically` uses for a target, by the writer's pid.
func temporaryFile(for url: URL, pid: Int32) -> URL {
    url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(pid).tmp")
}

public func sha256Hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    SHA256.hash(data: Array(bytes)).map { String(format: "%02x", $0) }.joined()
}

/// sha256 of a file, read in chunks (model files are hundreds of MB).
public func sha256OfFile(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw FileProblem(file: path, message: "cannot be read") }
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
