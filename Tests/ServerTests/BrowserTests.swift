import Foundation
import TestSupport
import XCTest

/// The dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
/// `make test`) signs in with a read token, and the leaderboard's DOM is the store's.
final class BrowserTests: XCTestCase {
    func chromium() throws -> String {
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw XCTSkip("chromium is not installed (`scripts/install-deps.sh --test` installs it): the dashboard is not checked in a browser")
    }

    /// The DOM after the page has loaded; `profile` keeps the cookie between calls.
    func dumpDOM(_ browser: String, _ url: String, profile: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: browser)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)", "--dump-dom", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func testLeaderboardInChromiumIsTheStore() throws {
        let browser = try chromium()
        let test = try RealData.path("test.csv", sha256: "a53b58706953dea269f1af7cad71111b6794983de1fd16b665632954058a18f6")
        let peers = RealData.folder.appendingPathComponent("peer-predictions/test-systems")
        let workspace = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-browser-\(UUID())")
        defer { try? FileManager.default.removeItem(at: workspace) }
        func suneung(_ arguments: String...) throws -> String { try SuneungBinary.run(arguments + ["--workspace", workspace.path]).output }
        _ = try suneung("init")
        let files = ["gemma_ckpt2944.csv", "gemma_ckpt2944_2nd.csv", "gpt4o.csv", "zeroshot_output.csv", "zeroshot_output_logical.csv"]
        for (index, file) in files.enumerated() {
            _ = try suneung("import", peers.appendingPathComponent(file).path, "--dataset", test, "--invalid", "as-wrong")
            _ = try suneung("score", String(file.dropLast(4)), "--public", String(format: "%.4f", 0.6 + 0.04 * Double(index)))
        }
        _ = try suneung("note", "gpt4o", "<script>document.title='owned'</script>")
        _ = try suneung("hide", "zeroshot_output")
        let token = try suneung("token", "add", "viewer", "--role", "read").split(separator: "\n").first { $0.hasPrefix("snt_") }.map(
            String.init)!
        let server = ServerProcess(workspace: workspace)
        try server.start()
        defer { _ = server.stop() }

        let profile = workspace.appendingPathComponent("chromium-profile")
        let dom = try dumpDOM(browser, "\(server.url)/login?token=\(token)", profile: profile)
        // The rows, in the page's order, against `list --sort public` (hidden left out).
        let rows = dom.matches(of: /data-set="([^"]+)"/).map { String($0.1) }
        let listed =
            try JSONSerialization.jsonObject(with: Data(try suneung("list", "--sort", "public", "--format", "json").utf8))
            as! [[String: Any]]
        XCTAssertEqual(
            rows, listed.map { $0["ref"] as! String }, "the leaderboard's rows are the store's non-hidden sets, best public first")
        XCTAssertEqual(rows.count, 4)
        for set in listed {
            XCTAssertTrue(dom.contains(String(format: "%.4f", set["public"] as! Double)), "\(set["ref"]!)'s public score is shown")
        }
        // The toggle shows the hidden set; the cookie from /login opens the pages.
        let all = try dumpDOM(browser, "\(server.url)/?hidden=1", profile: profile)
        XCTAssertTrue(all.contains("data-set=\"zeroshot_output@v1\""), "hidden sets are behind the toggle")
        // The note's script is text on the set's page: it never ran (the title is unchanged).
        let page = try dumpDOM(browser, "\(server.url)/sets/gpt4o", profile: profile)
        XCTAssertTrue(page.contains("<title>Suneung: gpt4o@v1</title>"), String(page.prefix(400)))
        XCTAssertTrue(page.contains("&lt;script&gt;document.title='owned'&lt;/script&gt;"))
    }
}
