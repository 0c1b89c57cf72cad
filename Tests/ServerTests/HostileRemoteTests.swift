import Foundation
import Glibc
import Hummingbird
import HummingbirdTesting
import Store
import Synchronization
import TestSupport
import XCTest

@testable import Server
@testable import TeamClient

/// A hostile server on 127.0.0.1 (raw sockets, so that it can break HTTP): each
/// connection's request head is recorded, then `answer` writes what it likes. Every
/// answer is bounded and ends when the client goes; `stop()` closes the listener.
final class FakeRemote: Sendable {
    let port: Int
    private let listener: Int32
    private let recorded = Shared<[String]>([])

    var url: String { "http://127.0.0.1:\(port)" }
    var requests: [String] { recorded.value.withLock { $0 } }

    init(answer: @escaping @Sendable (_ request: String, _ connection: FakeConnection) -> Void) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listener >= 0, bound else {
            throw NSError(domain: "FakeRemote", code: 1, userInfo: [NSLocalizedDescriptionKey: "cannot listen on 127.0.0.1"])
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        let recorded = recorded // not self: the remote stops when the test lets it go
        Thread.detachNewThread {
            while true {
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { return } // the listener was closed
                Thread.detachNewThread {
                    let connection = FakeConnection(fd: fd)
                    let head = connection.readHead()
                    recorded.value.withLock { $0.append(head) }
                    answer(head, connection)
                    close(fd)
                }
            }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

    /// An answer with a JSON body and its length.
    static func json(_ status: String, _ body: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    }
}

/// A value that threads share (a Mutex alone cannot be captured by their closures).
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}

struct FakeConnection: Sendable {
    let fd: Int32

    /// The request up to its blank line (at most 64 KB).
    func readHead() -> String {
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while head.count < 65536, !head.ends(with: Array("\r\n\r\n".utf8)) {
            let count = recv(fd, &buffer, 1, 0) // byte by byte: nothing of a body is consumed
            guard count > 0 else { break }
            head.append(buffer[0])
        }
        return String(decoding: head, as: UTF8.self)
    }

    /// False once the client is gone (no SIGPIPE: MSG_NOSIGNAL).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }
}

private extension Array where Element: Equatable {
    func ends(with suffix: [Element]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

/// The client against servers that misbehave on purpose; and the server's request log.
final class HostileRemoteTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-hostile-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    func failure(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> RemoteClient.Failure? {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let failure as RemoteClient.Failure {
            return failure
        } catch {
            XCTFail("not a RemoteClient.Failure: \(error)", file: file, line: line)
        }
        return nil
    }

    /// No C0 or C1 control character (a newline neither: messages are one line).
    func assertPrintable(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        let controls = text.unicodeScalars.filter { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
        XCTAssertTrue(
            controls.isEmpty, "control characters \(controls.map { String($0.value, radix: 16) }) in: \(text.debugDescription)", file: file,
            line: line)
    }

    // MARK: Redirects

    func testARedirectToAnotherOriginIsRefusedAndTheTokenStaysHome() throws {
        let other = try FakeRemote { _, connection in connection.send(FakeRemote.json("200 OK", #"{"name": "mallory", "role": "write"}"#)) }
        let hostile = try FakeRemote { _, connection in
            connection.send("HTTP/1.1 302 Found\r\nLocation: \(other.url)/api/v1/whoami\r\nContent-Length: 0\r\n\r\n")
        }
        let refused = failure { _ = try RemoteClient(url: hostile.url, token: "snt_secret").whoAmI() }
        XCTAssertEqual(refused?.status, 302)
        XCTAssertEqual(
            refused?.message,
            "the server at \(hostile.url) answered 302 (redirect to \(other.url)/api/v1/whoami); suneung does not follow redirects: give the final URL"
        )
        XCTAssertEqual(hostile.requests.count, 1)
        XCTAssertTrue(hostile.requests[0].contains("Bearer snt_secret"), "the server itself has the token")
        XCTAssertEqual(other.requests, [], "the other origin never hears from the client")

        // `remote add` says so and keeps nothing.
        let workspace = root.appendingPathComponent("ws").path
        let added = try SuneungBinary.run(
            ["remote", "add", "team", hostile.url, "--token", "snt_secret", "--workspace", workspace],
            environment: ["XDG_CONFIG_HOME": root.appendingPathComponent("config").path], expect: 1
        ).output
        XCTAssertTrue(added.contains("suneung does not follow redirects: give the final URL"), added)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("config/suneung/credentials").path))
        XCTAssertEqual(other.requests, [])
    }

    /// A Location with control characters is not HTTP: the answer is refused unread (the
    /// HTTP parser stops at the header), not followed, not tried again, nothing of it shown.
    func testARedirectWithControlCharactersIsRefusedUnread() throws {
        let hostile = try FakeRemote { _, connection in
            connection.send("HTTP/1.1 307 Temporary Redirect\r\nLocation: /next\u{1B}[2J\u{1B}]0;owned\u{07}\r\nContent-Length: 0\r\n\r\n")
        }
        let refused = failure { _ = try RemoteClient(url: hostile.url, token: "snt_secret").sets() }
        XCTAssertEqual(hostile.requests.count, 1, "not followed, not tried again")
        assertPrintable(refused?.message ?? "")
        XCTAssertTrue(refused?.message.contains("is not valid HTTP") == true, refused?.message ?? "")
        XCTAssertFalse(refused?.message.contains("owned") == true, refused?.message ?? "")
    }

    // MARK: A server's words

    func testEscapeSequencesInAServersErrorAreShownEscaped() throws {
        let sequences = #"\u001b[2J\u001b]0;owned\u0007\u001b[31mred\u009b0m\u0000"#
        let json = try FakeRemote { _, connection in
            connection.send(FakeRemote.json("500 Internal Server Error", #"{"error": "boom \#(sequences)", "code": "x\u001b[1m"}"#))
        }
        let raw = try FakeRemote { _, connection in
            let body = "bad\u{1B}[2J\u{07}\u{9B}"
            connection.send("HTTP/1.1 502 Bad Gateway\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        }
        for remote in [json, raw] {
            let refused = failure { _ = try RemoteClient(url: remote.url, token: "snt_x").sets() }
            assertPrintable(refused?.message ?? "")
            assertPrintable(refused?.code ?? "")
            XCTAssertTrue(refused?.message.contains(#"\u{1b}[2J"#) == true, refused?.message ?? "")
        }

        // An answer that is not the API's: said so, escaped.
        let garbage = try FakeRemote { _, connection in
            connection.send(FakeRemote.json("200 OK", #"[{"\u001b]0;owned\u0007": "\u001b[2J"}]"#))
        }
        let unexpected = failure { _ = try RemoteClient(url: garbage.url, token: "snt_x").sets() }
        XCTAssertTrue(
            unexpected?.message.hasPrefix("the answer from \(garbage.url) is not what suneung") == true, unexpected?.message ?? "")
        assertPrintable(unexpected?.message ?? "")

        // Through the commands, as a member sees them.
        let workspace = root.appendingPathComponent("ws")
        try SuneungBinary.run(["init", "--workspace", workspace.path])
        try "evil: \"\(json.url)\"\n".write(to: workspace.appendingPathComponent(Remotes.file), atomically: true, encoding: .utf8)
        for command in [["list", "--remote", "evil"], ["pull", "--remote", "evil"]] {
            let output = try SuneungBinary.run(
                command + ["--workspace", workspace.path], environment: ["SUNEUNG_TOKEN": "snt_x"], expect: 1
            )
            .output
            XCTAssertTrue(output.contains("answered 500: boom"), output)
            assertPrintable(output.replacingOccurrences(of: "\n", with: " "))
        }
    }

    // MARK: Deadline and size

    func testAServerThatDripsItsAnswerIsCutOffAtTheDeadline() throws {
        let drip = try FakeRemote { _, connection in
            guard connection.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n") else { return }
            for _ in 0..<1000 {
                guard connection.send("[") else { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        let start = Date()
        let late = failure { _ = try RemoteClient(url: drip.url, token: "snt_x", limits: RemoteLimits(seconds: 2)).sets() }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertTrue(late?.message.hasPrefix("no complete answer from \(drip.url) within 2 s (") == true, late?.message ?? "")

        // The command's deadline comes from $SUNEUNG_REMOTE_TIMEOUT.
        let workspace = root.appendingPathComponent("ws")
        try FileManager.default.createDirectory(at: workspace.appendingPathComponent("config"), withIntermediateDirectories: true)
        try "slow: \"\(drip.url)\"\n".write(to: workspace.appendingPathComponent(Remotes.file), atomically: true, encoding: .utf8)
        let commandStart = Date()
        let output = try SuneungBinary.run(
            ["list", "--remote", "slow", "--workspace", workspace.path],
            environment: ["SUNEUNG_TOKEN": "snt_x", "SUNEUNG_REMOTE_TIMEOUT": "2"], expect: 1
        ).output
        XCTAssertLessThan(Date().timeIntervalSince(commandStart), 8)
        XCTAssertTrue(output.contains("no complete answer from \(drip.url) within 2 s"), output)
    }

    func testABodyShortOfItsLengthFails() throws {
        // The connection closed after 10 of 100 bytes: broken off, not tried again.
        let closing = try FakeRemote { _, connection in connection.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789") }
        let broken = failure { _ = try RemoteClient(url: closing.url, token: "snt_x", limits: RemoteLimits(seconds: 5)).sets() }
        XCTAssertTrue(broken?.message.hasPrefix("the answer from \(closing.url) broke off after ") == true, broken?.message ?? "")
        XCTAssertEqual(closing.requests.count, 1)
        // The connection held open: the deadline.
        let holding = try FakeRemote { _, connection in
            connection.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            Thread.sleep(forTimeInterval: 6)
        }
        let late = failure { _ = try RemoteClient(url: holding.url, token: "snt_x", limits: RemoteLimits(seconds: 2)).sets() }
        XCTAssertTrue(late?.message.hasPrefix("no complete answer from \(holding.url) within 2 s (") == true, late?.message ?? "")
    }

    func testAFloodIsCutOffAtTheBoundWithoutHoldingIt() throws {
        let sent = Shared(0)
        let flood = try FakeRemote { _, connection in
            guard connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n") else { return }
            let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 16)
            // 400 MB at about 60 MB/s, a fast network's pace: loopback's own pace outruns
            // the queue URLSession hands the body over on (see DESIGN.md, the client).
            for _ in 0..<(400 << 4) {
                guard connection.send(chunk) else { return }
                sent.value.withLock { $0 += chunk.count }
                Thread.sleep(forTimeInterval: 0.001)
            }
        }
        let before = maxResidentBytes()
        let client = RemoteClient(url: flood.url, token: "snt_x", limits: RemoteLimits(seconds: 60, jsonBytes: 1 << 20, fileBytes: 8 << 20))
        let bounded = failure { _ = try client.request("GET", "/api/v1/datasets/x", body: nil, type: nil) }
        XCTAssertEqual(bounded?.message, "the answer from \(flood.url) exceeded 8 MB: suneung stopped reading it")
        let grown = maxResidentBytes() - before
        Thread.sleep(forTimeInterval: 0.5)
        let flooded = sent.value.withLock { $0 }
        XCTAssertLessThan(grown, 100 << 20, "the client never held the flood")
        XCTAssertLessThan(flooded, 64 << 20, "the client stopped reading near its bound")
        // The JSON answers have their own bound.
        XCTAssertEqual(failure { _ = try client.sets() }?.message, "the answer from \(flood.url) exceeded 1 MB: suneung stopped reading it")

        // A length announced past the bound is refused before its body.
        let announced = try FakeRemote { _, connection in connection.send("HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n[]") }
        XCTAssertEqual(
            failure {
                _ = try RemoteClient(url: announced.url, token: "snt_x", limits: RemoteLimits(seconds: 5, jsonBytes: 1 << 20)).sets()
            }?.message,
            "the answer from \(announced.url) exceeded 1 MB: suneung stopped reading it")
    }

    func maxResidentBytes() -> Int {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    func testAnEmptyAnswerOrAHalfHeadIsAnErrorNotAHang() throws {
        let empty = try FakeRemote { _, _ in }
        let start = Date()
        let nothing = failure { _ = try RemoteClient(url: empty.url, token: "snt_x", limits: RemoteLimits(seconds: 2)).sets() }
        XCTAssertTrue(nothing?.message.hasPrefix("cannot reach \(empty.url)") == true, nothing?.message ?? "")
        XCTAssertTrue(nothing?.unreachable == true)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "retries stop at the deadline")
        // Closed in the middle of its headers (one with a length: a status line alone
        // crashes Foundation's URLSession on Linux, which no delegate can prevent).
        let half = try FakeRemote { _, connection in connection.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n") }
        XCTAssertNotNil(failure { _ = try RemoteClient(url: half.url, token: "snt_x", limits: RemoteLimits(seconds: 2)).sets() })
    }

    // MARK: Credentials

    /// A server that knows every token and records what it was sent.
    func friendlyRemote() throws -> FakeRemote {
        try FakeRemote { request, connection in
            connection.send(
                FakeRemote.json("200 OK", request.hasPrefix("GET /api/v1/whoami") ? #"{"name": "kim", "role": "write"}"# : "[]"))
        }
    }

    func testTheUsersCredentialsFollowHome() throws {
        let remote = try friendlyRemote()
        let home = root.appendingPathComponent("home")
        let workspace = root.appendingPathComponent("ws").path
        // XDG_CONFIG_HOME empty is unset, as the spec says.
        let environment = ["HOME": home.path, "XDG_CONFIG_HOME": ""]
        let added = try SuneungBinary.run(
            ["remote", "add", "team", remote.url, "--token", "snt_home", "--workspace", workspace], environment: environment
        ).output
        let file = home.appendingPathComponent(".config/suneung/credentials")
        XCTAssertTrue(added.contains("token kept in \(file.path) (the server knows the token: kim, write)"), added)
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(contentsOf: file)), [remote.url: "snt_home"])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int, 0o600)
        XCTAssertTrue(try SuneungBinary.run(["remote", "list", "--workspace", workspace], environment: environment).output.contains("user"))
    }

    func testATokenFromAFile() throws {
        let remote = try friendlyRemote()
        let workspace = root.appendingPathComponent("ws").path
        let environment = ["XDG_CONFIG_HOME": root.appendingPathComponent("config").path]
        let tokenFile = root.appendingPathComponent("token")
        func write(_ text: String, mode: Int) throws {
            try text.write(to: tokenFile, atomically: false, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: tokenFile.path)
        }
        try write("", mode: 0o600)
        XCTAssertTrue(
            try SuneungBinary.run(
                ["remote", "add", "team", remote.url, "--token-file", tokenFile.path, "--workspace", workspace], environment: environment,
                expect: 1
            ).output.contains("is empty"))
        try write("  snt_file  \nsecond line\n", mode: 0o644)
        XCTAssertTrue(
            try SuneungBinary.run(
                ["remote", "add", "team", remote.url, "--token-file", tokenFile.path, "--workspace", workspace], environment: environment,
                expect: 1
            ).output.contains("readable by others"))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile.path)
        try SuneungBinary.run(
            ["remote", "add", "team", remote.url, "--token-file", tokenFile.path, "--workspace", workspace], environment: environment)
        let kept = root.appendingPathComponent("config/suneung/credentials")
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(contentsOf: kept)), [remote.url: "snt_file"])
        XCTAssertTrue(remote.requests.last?.contains("Authorization: Bearer snt_file\r\n") == true)
    }

    func testAWorkspacesOwnCredentialsComeFirst() throws {
        let remote = try friendlyRemote()
        let workspace = root.appendingPathComponent("ws")
        let environment = ["XDG_CONFIG_HOME": root.appendingPathComponent("config").path]
        try SuneungBinary.run(
            ["remote", "add", "team", remote.url, "--token", "snt_user", "--workspace", workspace.path], environment: environment)
        try SuneungBinary.run(
            ["remote", "add", "team", remote.url, "--token", "snt_here", "--here", "--workspace", workspace.path], environment: environment)
        let file = workspace.appendingPathComponent(Credentials.workspacePath)
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(contentsOf: file)), [remote.url: "snt_here"])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int, 0o600)
        XCTAssertTrue(
            try SuneungBinary.run(["remote", "list", "--workspace", workspace.path], environment: environment).output.contains("workspace"))
        try SuneungBinary.run(["list", "--remote", "team", "--workspace", workspace.path], environment: environment)
        XCTAssertTrue(remote.requests.last?.contains("Authorization: Bearer snt_here\r\n") == true, remote.requests.last ?? "")
        // One that others can read is not used.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        XCTAssertTrue(
            try SuneungBinary.run(["list", "--remote", "team", "--workspace", workspace.path], environment: environment, expect: 1).output
                .contains("chmod 600"))
        // --forget-token deletes it from both files.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        try SuneungBinary.run(["remote", "remove", "team", "--forget-token", "--workspace", workspace.path], environment: environment)
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(contentsOf: file)), [:])
        XCTAssertEqual(
            try JSONDecoder().decode(
                [String: String].self, from: Data(contentsOf: root.appendingPathComponent("config/suneung/credentials"))), [:])
    }

    // MARK: The server's log

    func testTheServerLogsRequestsWithTheirHolderAndNeverTheToken() async throws {
        let store = try Store(workspace: Workspace(root: root.appendingPathComponent("server")), create: true)
        let token = try store.addToken(name: "lee", role: .write).token
        let logFile = root.appendingPathComponent("access.log")
        try "an earlier line\n".write(to: logFile, atomically: true, encoding: .utf8)
        let log = try RequestLog(appendingTo: logFile.path, toStandardError: false)
        let app = Application(router: Server.router(store: store, log: log))
        try await app.test(.router) { client in
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(token)"
            try await client.execute(uri: "/api/v1/whoami", method: .get, headers: headers) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/login?token=\(token)", method: .get) { XCTAssertEqual($0.status, .seeOther) }
            try await client.execute(uri: "/api/v1/sets", method: .get) { XCTAssertEqual($0.status, .unauthorized) }
        }
        let lines = try String(contentsOf: logFile, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, lines.joined(separator: "\n"))
        XCTAssertEqual(lines[0], "an earlier line", "appended")
        let pattern = #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "#
        for (line, rest) in zip(lines.dropFirst(), ["lee GET /api/v1/whoami 200 ", "- GET /login 303 ", "- GET /api/v1/sets 401 "]) {
            XCTAssertNotNil(
                line.range(of: pattern + NSRegularExpression.escapedPattern(for: rest) + #"\d+ms$"#, options: .regularExpression), line)
        }
        XCTAssertFalse(try String(contentsOf: logFile, encoding: .utf8).contains(token), "never the token")
    }
}
