import Ensemble
import Exam
import Foundation
import Hummingbird
import Logging
import Store
import Workflow

/// A request's context: who the token says is asking.
public struct ServerContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The token that was presented (every route but /health and /login has one).
    public var token: TokenRecord?
    /// The token's holder, for the access log (which runs outside the token check).
    let holder = RequestHolder()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies (a prediction CSV, a bundle, an exam file) up to 64 MB; more is 413.
    public var maxUploadSize: Int { Server.maxBody }
}

public enum Server {
    public static let maxBody = 64 * 1024 * 1024
    /// The cookie a browser keeps its token in, after /login?token=...
    static let cookieName = "suneung_token"

    /// The whole application: the JSON API under /api/v1, the dashboard, /health, and the
    /// token check in front of them; each request in `log`, if given.
    public static func router(store: Store, log: RequestLog? = nil) -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        if let log { router.add(middleware: RequestLogMiddleware(log: log)) }
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: TokenMiddleware(store: store))
        router.get("/health") { _, _ in HealthResponse(status: "ok", version: suneungVersion) }
        router.get("/login") { request, _ in try await login(request, store: store) }
        API(store: store).register(on: router.group("api/v1"))
        Dashboard(store: store).register(on: router)
        return router
    }

    /// Serves a workspace until SIGINT or SIGTERM; returns once every connection is done.
    public static func run(store: Store, host: String, port: Int, log: RequestLog, onStart: @escaping @Sendable (Int) -> Void) async throws
    {
        var logger = Logger(label: "suneung.serve")
        logger.logLevel = .warning
        let app = Application(
            router: router(store: store, log: log),
            configuration: .init(address: .hostname(host, port: port), serverName: "suneung/\(suneungVersion)"),
            onServerRunning: { channel in onStart(channel.localAddress?.port ?? port) }, logger: logger)
        try await app.runService()
    }

    /// A browser signs in once: the token becomes an HttpOnly cookie for 30 days.
    static func login(_ request: Request, store: Store) async throws -> Response {
        guard let token = try FormValues(query: request)["token"],
            try await blocking({ try store.liveToken(token) }) != nil
        else {
            throw APIError(.unauthorized, "unknown or revoked token: ask the server's owner for one (`suneung token add NAME`)")
        }
        var response = Response.redirect(to: "/")
        response.setCookie(
            try Cookie.validated(name: cookieName, value: token, maxAge: 30 * 24 * 3600, path: "/", httpOnly: true, sameSite: .strict))
        return response
    }
}

struct HealthResponse: ResponseCodable {
    var status: String
    var version: String
}

/// An error answered as JSON `{"error": ..., "code": ...}` with its HTTP status.
struct APIError: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var message: String
    var code: String?

    init(_ status: HTTPResponse.Status, _ message: String, code: String? = nil) {
        self.status = status
        self.message = message
        self.code = code
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        if !request.uri.path.hasPrefix("/api/") && request.uri.path != "/health" {
            var response = Dashboard.errorPage(status: status, message: message)
            response.status = status
            return response
        }
        var fields: [String: String] = ["error": message]
        if let code { fields["code"] = code }
        let body = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The store's errors as statuses: not found 404, refused 422, a sender's missing
/// piece 409 (with a code the client acts on), too large 413, anything else 500.
struct ErrorMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, error.body ?? error.status.reasonPhrase)
        } catch let error as any HTTPResponseError {
            // The body's size limit, and Hummingbird's own refusals.
            throw APIError(
                error.status,
                error.status == .contentTooLarge ? "the body is larger than \(Server.maxBody / 1024 / 1024) MB" : error.status.reasonPhrase)
        } catch let error as StoreError {
            switch error {
            case .notFound(let message): throw APIError(.notFound, message)
            case .badReference(let message), .invalid(let message): throw APIError(.unprocessableContent, message)
            case .noStore(let message), .newerSchema(let message), .corrupted(let message): throw APIError(.internalServerError, message)
            }
        } catch let error as SyncError {
            let code: String
            switch error {
            case .datasetMissing: code = "dataset-missing"
            case .contentMissing: code = "content-missing"
            case .memberMissing: code = "member-missing"
            }
            throw APIError(.conflict, error.description, code: code)
        } catch let error as DecodingError {
            throw APIError(.badRequest, "malformed JSON: \(describe(error))")
        } catch let error as any Error & CustomStringConvertible where Self.refusal(error) {
            throw APIError(.unprocessableContent, error.description)
        } catch {
            // Not the request's fault (a full disk, a database error): said, not hidden.
            context.logger.error("\(request.method) \(request.uri.path): \(error)")
            throw APIError(.internalServerError, "the server could not do it: \(error)")
        }
    }

    /// The errors that mean the request's content was refused (as the CLI's exit 1).
    static func refusal(_ error: any Error) -> Bool {
        error is FileProblem || error is FileProblems || error is PredictionFileProblems || error is CSVError || error is PythonLiteralError
            || error is ImportRefused || error is UsageError || error is EnsembleError
    }

    func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            (context.codingPath.isEmpty ? "" : "at '\(context.codingPath.map(\.stringValue).joined(separator: "."))': ")
                + context.debugDescription
        @unknown default: "\(error)"
        }
    }
}

/// Every request but /health, /login and the API's description presents a live token: `Authorization: Bearer
/// TOKEN` (or the dashboard's cookie). None or unknown: 401; a read token that changes
/// something: 403.
struct TokenMiddleware: RouterMiddleware {
    let store: Store

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        if path == "/health" || path == "/login" || path == "/api/v1/openapi.json" { return try await next(request, context) }
        let reading = request.method == .get || request.method == .head
        var presented: String?
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            presented = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        } else if reading, let cookie = request.cookies[Server.cookieName] {
            // The dashboard's cookie reads; a write always sends its token (no cross-site writes).
            presented = cookie.value
        }
        // One indexed read in WAL mode, which never waits for a writer: done here, so
        // that a long write elsewhere does not hold up the check.
        guard let presented, !presented.isEmpty, presented.utf8.count <= 200, let token = try store.liveToken(presented) else {
            if !path.hasPrefix("/api/") && request.method == .get { return Dashboard.signIn(status: .unauthorized) }
            throw APIError(
                .unauthorized,
                presented == nil
                    ? "no token: send `Authorization: Bearer TOKEN` (`suneung token add NAME` on the server makes one)"
                    : "unknown or revoked token")
        }
        if !reading && token.role != .write {
            throw APIError(.forbidden, "\(token.name)'s token is read-only: this request changes the store")
        }
        var context = context
        context.token = token
        context.holder.name.withLock { $0 = token.name }
        return try await next(request, context)
    }
}

/// How long a request's work may take before its client is answered 503. The store's
/// queries are indexed and what a bundle carries is bounded, so this is a guard: a
/// request that somehow runs long cannot hold its client, or a shutdown, for hours.
let requestDeadline: TimeInterval = 60

/// Runs the store's blocking work off the server's event loops and Swift's
/// cooperative threads (SQLite waits for its lock there), answering within
/// `requestDeadline` whatever the work does.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let answer = AnswerOnce(continuation)
        DispatchQueue.global().async { answer.resume(with: Result { try body() }) }
        DispatchQueue.global().asyncAfter(deadline: .now() + requestDeadline) {
            answer.resume(
                with: .failure(APIError(.serviceUnavailable, "the request took longer than \(Int(requestDeadline)) s; try again later")))
        }
    }
}

/// A continuation resumed by whichever comes first: the work or its deadline.
final class AnswerOnce<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?

    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = continuation }

    func resume(with result: Result<T, any Error>) {
        lock.lock()
        let waiting = continuation
        continuation = nil
        lock.unlock()
        waiting?.resume(with: result)
    }
}
