import AsyncHTTPClient
import Exam
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// One HTTP request and its answer, bounded in size and time: what the team client and
/// the serving-engine client both send through. No retry here: each caller knows which
/// failures are worth another try. AsyncHTTPClient rather than URLSession: Linux's
/// URLSession keeps a core busy while it waits (seen: 7.8 s of CPU in an 8 s wait),
/// which on a two-core machine slows the very server it waits for.
public enum HTTPAttempt {
    public struct Request: Sendable {
        public var method: String
        public var url: String
        public var headers: [(String, String)]
        public var body: Data?

        public init(method: String, url: String, headers: [(String, String)] = [], body: Data? = nil) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
        }
    }

    /// What one attempt came to.
    public enum Outcome: Sendable {
        case answered(Answer)
        /// No answer began (refused, dropped, an empty reply): worth another try.
        case unreachable(String)
        /// Past a bound, or an answer broken off: said as is.
        case failed(Failure)
    }

    public struct Answer: Sendable {
        public var status: Int
        /// The headers a caller acts on: a redirect's Location, a 429's Retry-After.
        public var location: String?
        public var retryAfter: String?
        public var body: Data
    }

    public struct Failure: Sendable {
        public enum Kind: Sendable {
            /// Past the size bound, past the deadline, cut off midway, or not HTTP (a
            /// header with control characters, say: NIO refuses to read it).
            case tooLarge, late, brokenOff, malformed
        }
        public var kind: Kind
        public var message: String
    }

    /// One client for the process (never shut down): connections are kept between
    /// requests; redirects are not followed (a token would go with them).
    static let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10))))

    /// One attempt, its answer read as it arrives, so that one past its bound is cut
    /// off before it is held; given up at the deadline.
    public static func perform(_ request: Request, bounds: Bounds, deadline: DispatchTime) -> Outcome {
        let reader = AnswerReader(bounds: bounds)
        let sent: HTTPClient.Request
        do {
            var headers = HTTPHeaders()
            for (name, value) in request.headers { headers.add(name: name, value: value) }
            sent = try HTTPClient.Request(
                url: request.url, method: HTTPMethod(rawValue: request.method), headers: headers, body: request.body.map { .bytes($0) })
        } catch {
            return .unreachable("\(error)")
        }
        let nanoseconds = Int64(clamping: deadline.uptimeNanoseconds) - Int64(clamping: DispatchTime.now().uptimeNanoseconds)
        let task = client.execute(request: sent, delegate: reader, deadline: .now() + .nanoseconds(max(nanoseconds, 0)))
        do {
            return .answered(try task.futureResult.wait())
        } catch is AnswerReader.TooLarge {
            return .failed(Failure(kind: .tooLarge, message: bounds.sizeMessage))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return .failed(Failure(kind: .late, message: bounds.lateMessage(received: reader.received)))
        } catch let error as HTTPParserError where !reader.headReceived {
            return .failed(
                Failure(kind: .malformed, message: "the answer from \(bounds.url) is not valid HTTP (\(error)): suneung did not read it"))
        } catch {
            guard reader.headReceived else { return .unreachable("\(error)") }
            return .failed(
                Failure(
                    kind: .brokenOff,
                    message: "the answer from \(bounds.url) broke off after \(reader.received) bytes: \(excerpt("\(error)", limit: 200))"))
        }
    }

    /// An attempt's bounds, and how passing them is said.
    public struct Bounds: Sendable {
        public let url: String
        public let maxBytes: Int
        public let seconds: Double

        public init(url: String, maxBytes: Int, seconds: Double) {
            self.url = url
            self.maxBytes = maxBytes
            self.seconds = seconds
        }

        var sizeMessage: String {
            "the answer from \(url) exceeded \(maxBytes >= 1 << 20 ? "\(maxBytes >> 20) MB" : "\(maxBytes) bytes"): suneung stopped reading it"
        }

        func lateMessage(received: Int) -> String {
            "no complete answer from \(url) within \(seconds.rounded() == seconds ? String(Int(seconds)) : String(seconds)) s (\(received) bytes of it arrived)"
        }
    }
}

/// The client's delegate for one attempt: keeps the body up to its bound and fails the
/// request past it (a Content-Length over the bound at once).
final class AnswerReader: HTTPClientResponseDelegate, Sendable {
    typealias Response = HTTPAttempt.Answer
    struct TooLarge: Error {}

    let bounds: HTTPAttempt.Bounds
    private struct State {
        var head: HTTPResponseHead?
        var body = Data()
    }
    private let state = Mutex(State())

    init(bounds: HTTPAttempt.Bounds) { self.bounds = bounds }

    var received: Int { state.withLock { $0.body.count } }
    var headReceived: Bool { state.withLock { $0.head != nil } }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLock { $0.head = head }
        if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > bounds.maxBytes {
            return task.eventLoop.makeFailedFuture(TooLarge())
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let fits = state.withLock { state in
            guard state.body.count + buffer.readableBytes <= bounds.maxBytes else { return false }
            state.body.append(contentsOf: buffer.readableBytesView)
            return true
        }
        return fits ? task.eventLoop.makeSucceededVoidFuture() : task.eventLoop.makeFailedFuture(TooLarge())
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        try state.withLock { state in
            guard let head = state.head else { throw HTTPClientError.remoteConnectionClosed }
            return HTTPAttempt.Answer(
                status: Int(head.status.code), location: head.headers.first(name: "Location"),
                retryAfter: head.headers.first(name: "Retry-After"), body: state.body)
        }
    }
}
