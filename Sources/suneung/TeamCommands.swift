import ArgumentParser
import Exam
import Foundation
import Server
import Store
import Synchronization
import TeamClient
import Workflow

extension TokenRole: ExpressibleByArgument {}

/// `--remote NAME`: run the command on a team server instead of the local store.
struct RemoteOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Run it on this team server (`suneung remote add`) instead of the local store.", valueName: "NAME"))
    var remote: String?
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the workspace's store to the team: a JSON API (/api/v1) and a dashboard.",
        discussion: """
            Every request but GET /health needs a token (`suneung token add NAME`): \
            `Authorization: Bearer TOKEN`, or in a browser open /login?token=TOKEN once. \
            Binds 127.0.0.1 unless --host says otherwise; for a team, put it behind a \
            reverse proxy with TLS (docs/team-server.md). Stops on SIGINT or SIGTERM after \
            the requests in flight. Each request is logged on stderr (and appended to --log \
            FILE): time, the token holder's name, method, path, status, milliseconds; never \
            a token.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: "The address to bind (0.0.0.0 for every interface).")
    var host = "127.0.0.1"

    @Option(help: "The port (0: any free port, printed).")
    var port = 8080

    @Option(help: ArgumentHelp("Also append the request log to this file (created mode 600).", valueName: "FILE"))
    var log: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
    }

    func run() throws {
        let store = try options.openStore()
        try store.requireWritable()
        if try store.tokens().allSatisfy({ $0.revokedAt != nil }) {
            print("Note: no live token yet; make one with `suneung token add NAME --role write` (every request but /health needs one).")
        }
        let requestLog = try RequestLog(appendingTo: log)
        let failure = Mutex<(any Error)?>(nil)
        let done = DispatchSemaphore(value: 0)
        let (host, port) = (host, port)
        Task {
            do {
                try await Server.run(store: store, host: host, port: port, log: requestLog) { bound in
                    print("Serving \(store.workspace.root.path) on http://\(host):\(bound) (Ctrl-C stops)")
                    flushStandardOutput()
                }
            } catch {
                failure.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = failure.withLock({ $0 }) { throw StoreError.invalid("cannot serve on \(host):\(port): \(error)") }
    }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Tokens for the team server: add (printed once), list, revoke.",
        subcommands: [Add.self, List.self, Revoke.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token for NAME; it is printed once (the store keeps only its SHA-256).")

        @OptionGroup var options: WorkspaceOptions

        @Argument(help: "Who holds it: the author of what it creates.")
        var name: String

        @Option(help: "read (look) or write (also push, score, ensemble).")
        var role: TokenRole = .read

        func run() throws {
            let (record, token) = try options.openStore().addToken(name: name, role: role)
            print(token)
            FileHandle.standardError.write(
                Data(
                    "Token for \(record.name) (\(record.role.rawValue)): shown once; `suneung remote add NAME URL --token TOKEN` on the member's machine.\n"
                        .utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tokens (names, roles, when made or revoked; never the tokens).")

        @OptionGroup var options: WorkspaceOptions

        func run() throws {
            let tokens = try options.openStore().tokens()
            guard !tokens.isEmpty else { return print("No tokens yet: `suneung token add NAME --role write`.") }
            var table = TextTable([("name", .left), ("role", .left), ("made", .left), ("revoked", .left), ("sha256", .left)])
            for token in tokens {
                table.add([
                    token.name, token.role.rawValue, timestamp(token.createdAt), token.revokedAt.map(timestamp) ?? "-",
                    String(token.sha256.prefix(12)) + "..."
                ])
            }
            print(table.rendered)
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke every live token of NAME (takes effect on the next request).")

        @OptionGroup var options: WorkspaceOptions

        @Argument(help: "The token holder's name.")
        var name: String

        func run() throws {
            let count = try options.openStore().revokeTokens(name: name)
            print("Revoked \(count) token\(count == 1 ? "" : "s") of \(name).")
        }
    }
}

struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "The team servers this workspace talks to: add, list, remove.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add (or change) a remote: its URL goes to config/remotes.yaml, its token to your credentials file (mode 600).",
            discussion: """
                The token is kept by URL in $XDG_CONFIG_HOME/suneung/credentials, else \
                $HOME/.config/suneung/credentials (yours, for every workspace of yours); with \
                --here in this workspace's config/credentials (mode 600; keep it out of version \
                control), which is looked at first. $SUNEUNG_TOKEN overrides both. A server \
                that redirects is refused: give the URL it redirects to.
                """
        )

        @OptionGroup var options: WorkspaceOptions

        @Argument(help: "A short name, e.g. team.")
        var name: String

        @Argument(help: "The server, e.g. http://10.0.0.5:8080.")
        var url: String

        @Option(help: "The token `suneung token add` printed on the server (else $SUNEUNG_TOKEN at each use).")
        var token: String?

        @Option(
            help: ArgumentHelp(
                "Read the token from the first line of this file (not readable by others), keeping it out of the shell's history.",
                valueName: "PATH"))
        var tokenFile: String?

        @Flag(help: "Keep the token in this workspace's config/credentials rather than your own file.")
        var here = false

        func validate() throws {
            if token != nil && tokenFile != nil { throw ValidationError("--token or --token-file, not both") }
            if here && token == nil && tokenFile == nil { throw ValidationError("--here keeps a token: give --token or --token-file") }
        }

        func run() throws {
            try SetRef.checkName(name, what: "remote name")
            let address = try Remotes.checkURL(url)
            let token = try tokenFile.map(Credentials.read(tokenFile:)) ?? token
            if let token, token.isEmpty || token.contains(where: { $0.isWhitespace }) {
                throw ValidationError("the token is empty or has spaces")
            }
            let workspace = options.located
            let answer = try token.map { try checkedToken($0, at: address) }
            var remotes = try Remotes.load(workspace: workspace)
            remotes.entries.removeAll { $0.name == name }
            remotes.entries.append((name, address))
            try remotes.save()
            let source: Credentials.Source = here ? .workspace : .user
            if let token { try Credentials.store(token, for: address, in: source, workspace: workspace) }
            let kept = source == .workspace ? Credentials.workspaceFile(workspace) : Credentials.file
            print("Remote \(name) = \(address)\(answer.map { "; token kept in \(kept.path) (\($0))" } ?? "")")
        }

        /// What the server says of the token. One it refuses, or a redirect, changes
        /// nothing; an unreachable server keeps it unchecked.
        func checkedToken(_ token: String, at address: String) throws -> String {
            do {
                let me = try RemoteClient(url: address, token: token).whoAmI()
                return "the server knows the token: \(excerpt(me.name)), \(me.role.rawValue)"
            } catch let failure as RemoteClient.Failure where failure.status == 401 {
                throw StoreError.invalid("\(address) refuses this token (unknown or revoked): nothing was changed")
            } catch let failure as RemoteClient.Failure where (300..<400).contains(failure.status) {
                throw StoreError.invalid("\(failure.message): nothing was changed")
            } catch let failure as RemoteClient.Failure where failure.unreachable {
                return "not reachable now: the token is kept unchecked"
            } catch {
                return "unchecked: \(error)"
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the remotes and where each one's token comes from.")

        @OptionGroup var options: WorkspaceOptions

        func run() throws {
            let workspace = options.located
            let remotes = try Remotes.load(workspace: workspace)
            guard !remotes.entries.isEmpty else { return print("No remotes: `suneung remote add NAME URL --token TOKEN`.") }
            var table = TextTable([("name", .left), ("url", .left), ("token", .left)])
            for entry in remotes.entries {
                table.add([entry.name, entry.url, try Credentials.token(for: entry.url, workspace: workspace)?.source.rawValue ?? "none"])
            }
            print(table.rendered)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a remote from this workspace (its token stays for your other workspaces unless --forget-token).")

        @OptionGroup var options: WorkspaceOptions

        @Argument var name: String

        @Flag(help: "Also delete the token kept for its URL, in this workspace and in your own file (every workspace of yours loses it).")
        var forgetToken = false

        func run() throws {
            let workspace = options.located
            var remotes = try Remotes.load(workspace: workspace)
            let url = try remotes.url(of: name)
            remotes.entries.removeAll { $0.name == name }
            try remotes.save()
            if forgetToken {
                for source in [Credentials.Source.workspace, .user] {
                    try Credentials.store(nil, for: url, in: source, workspace: workspace)
                }
            }
            print(
                "Removed remote \(name) (\(url))\(forgetToken ? "; its token is deleted" : "; the token for \(url) stays in \(Credentials.file.path)")."
            )
        }
    }
}

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Send prediction sets (rows, values, lineage, scores, uploads, tags) to a team server.",
        discussion: """
            REF is NAME (every version) or NAME@vK; --all sends every set. An ensemble's \
            members go first. Content the server has under the same name is not sent again \
            (only scores and tags it lacks); a name it has with other content becomes a new \
            version there. On the server the token's name is the author. Safe to repeat.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Argument(help: "NAME or NAME@vK.")
    var refs: [String] = []

    @Flag(help: "Push every set.")
    var all = false

    @Option(help: ArgumentHelp("The server (default: the only remote).", valueName: "NAME"))
    var remote: String?

    func validate() throws {
        if refs.isEmpty != all { throw ValidationError(all ? "--all or REFs, not both" : "name the sets to push (or --all)") }
    }

    func run() throws {
        let store = try options.openStore()
        let client = try RemoteClient(remote: try chosenRemote(remote, workspace: store.workspace), workspace: store.workspace)
        let sets =
            try all
            ? store.summaries().map { try store.predictionSet(id: $0.id) } : refs.flatMap { try store.versions(try SetRef(parsing: $0)) }
        let progress = ProgressLine(label: "push")
        let report = try client.push(sets, from: store) { done, total, ref in progress.update(done: done, total: total, detail: ref) }
        progress.finish()
        try printReport(report, verb: "Pushed", place: client.url)
    }
}

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Bring a team server's sets, scores, ensembles and uploads into the local store (idempotent).",
        discussion:
            """
            Sets are matched by name and content: one the store has gets only the scores, uploads and tags it lacks; a name with other \
            content becomes a new local version.
            """
    )

    @OptionGroup var options: WorkspaceOptions

    @Option(help: ArgumentHelp("The server (default: the only remote).", valueName: "NAME"))
    var remote: String?

    func run() throws {
        let store = try options.openStore()
        let client = try RemoteClient(remote: try chosenRemote(remote, workspace: store.workspace), workspace: store.workspace)
        let progress = ProgressLine(label: "pull")
        let report = try client.pull(into: store) { done, total, ref in progress.update(done: done, total: total, detail: ref) }
        progress.finish()
        try printReport(report, verb: "Pulled", place: client.url)
    }
}

/// `--remote NAME`, or the workspace's only remote.
func chosenRemote(_ name: String?, workspace: Workspace) throws -> String {
    if let name { return name }
    let remotes = try Remotes.load(workspace: workspace)
    guard remotes.entries.count == 1 else {
        throw ValidationError(
            remotes.entries.isEmpty
                ? "no remote yet: `suneung remote add NAME URL --token TOKEN`"
                : "choose the server with --remote (\(remotes.entries.map(\.name).joined(separator: ", ")))")
    }
    return remotes.entries[0].name
}

/// The sets that went, then those refused (the rest went on without them): exit 1 if any was.
func printReport(_ report: SyncReport, verb: String, place: String) throws {
    for line in report.created { print("  new  \(line)") }
    for line in report.refused { print("  refused  \(excerpt(line, limit: 1000))") }
    print(
        "\(verb) \(report.created.count + report.known.count) sets (\(report.created.count) new, \(report.known.count) already there), \(report.scoresAdded) new scores\(report.datasetsSent > 0 ? ", \(report.datasetsSent) datasets" : "") — \(place)."
    )
    if !report.refused.isEmpty {
        print("\(report.refused.count) set\(report.refused.count == 1 ? " was" : "s were") refused (above); the others went.")
        throw ExitCode.failure
    }
}
