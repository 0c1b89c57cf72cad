import Exam
import Foundation
import Hummingbird
import Store
import Synchronization

/// The server's access log: one line a request, on stderr and appended to
/// `serve --log FILE`: time (UTC), the token holder's name (- for none), method, path,
/// status, milliseconds. Never a token: the path is logged without its query (/login
/// carries one there) and headers are not logged.
public final class RequestLog: Sendable {
    private let file: Mutex<FileHandle?>
    private let toStandardError: Bool

    /// `path`: a file the lines are appended to (created 600 if missing: it names who
    /// did what); `toStandardError`: also on stderr.
    public init(appendingTo path: String?, toStandardError: Bool = true) throws {
        var handle: FileHandle?
        if let path {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
            guard fd >= 0 else { throw StoreError.invalid("cannot open the log \(path): \(String(cString: strerror(errno)))") }
            handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        }
        file = Mutex(handle)
        self.toStandardError = toStandardError
    }

    func record(holder: String?, method: String, path: String, status: Int, milliseconds: Int) {
        let time = Date.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let line = Data(
            "\(time) \(holder.map { excerpt($0, limit: 60) } ?? "-") \(method) \(excerpt(path, limit: 300)) \(status) \(milliseconds)ms\n"
                .utf8)
        // One writer at a time, so that lines never interleave.
        file.withLock { handle in
            if toStandardError { FileHandle.standardError.write(line) }
            handle?.write(line)
        }
    }
}

/// Who a request's token belongs to, once TokenMiddleware knows: the context is a
/// value each middleware passes on, so the log, outside it, reads this shared box.
final class RequestHolder: Sendable {
    let name = Mutex<String?>(nil)
}

/// Logs every request with its final status, an error's included.
struct RequestLogMiddleware: RouterMiddleware {
    let log: RequestLog

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        func record(_ status: HTTPResponse.Status) {
            let elapsed = ContinuousClock.now - start
            let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            log.record(
                holder: context.holder.name.withLock { $0 }, method: request.method.rawValue, path: request.uri.path, status: status.code,
                milliseconds: milliseconds)
        }
        do {
            let response = try await next(request, context)
            record(response.status)
            return response
        } catch {
            record((error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }
}
