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
    public static func locate(explicit: String?, from start: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> Workspace {
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
        URL(fileURLWithPath: (path as NSString).expandingTildeInPath, relativeTo: root).standardizedFileURL.path
    }

    /// A path as the user would type it from the workspace root.
    public func relative(_ url: URL) -> String {
        let path = url.standardizedFileURL.path
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}

/// Writes a file so that a reader sees the old content or the new, never a part:
/// a temporary file in the same folder, flushed, then renamed over the target.
public func writeAtomically(_ text: String, to url: URL) throws {
    let folder = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let temporary = temporaryFile(for: url, pid: getpid())
    guard FileManager.default.createFile(atPath: temporary.path, contents: Data(text.utf8)) else {
        throw FileProblem(file: url.path, message: "cannot write (is the folder writable, the disk full?)")
    }
    do {
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.synchronize()
        try handle.close()
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw FileProblem(file: url.path, message: "cannot write: \(error.localizedDescription)")
    }
    if rename(temporary.path, url.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw FileProblem(file: url.path, message: "cannot replace the file: \(reason)")
    }
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
