import Ensemble
import Exam
import Foundation
import Hummingbird
import Plot
import Report
import Store
import TeamClient
import Workflow

/// The team's pages, rendered on the server from the store (no script): the
/// leaderboard, a set's page (an ensemble's with its members), two sets compared, the
/// top K's agreement, the upload log and the pipelines' reports. Text goes through
/// Plot's escaping; attribute values through `attribute(_:)` (Plot does not escape them).
struct Dashboard {
    let store: Store

    /// Times in the competition's zone (config/competition.yaml), with its name; read
    /// once per page.
    func dateFormat() -> (Date) -> String {
        let zone = ((try? Competition.load(workspace: store.workspace)) ?? Competition()).timeZone
        return { Competition.timestamp($0, zone: zone) }
    }

    func register(on router: Router<ServerContext>) {
        router.get("/") { request, _ in try await page { try leaderboard(request) } }
        router.get("/sets/:ref") { _, context in
            let ref = try setRef(context)
            return try await page { try setPage(ref) }
        }
        router.get("/compare") { request, _ in
            let query = try FormValues(query: request)
            let (a, b) = (try query.required("a"), try query.required("b"))
            return try await page { try compare(a, b) }
        }
        router.get("/agreement") { request, _ in
            let k = try FormValues(query: request)["top"].flatMap { Int($0) } ?? 5
            return try await page { try agreementPage(k) }
        }
        router.get("/uploads") { _, _ in try await page { try uploadsPage() } }
        router.get("/reports") { _, _ in try await page { try reportsPage() } }
        router.get("/reports/:name") { _, context in
            let name = try context.parameters.require("name")
            try SetRef.checkName(name, what: "report name")
            let html = try await blocking { () -> String in
                // Only a pipeline the store knows, by the name it recorded.
                guard let pipeline = try store.pipelines().first(where: { $0.name == name }) else {
                    throw StoreError.notFound("no pipeline named \(name)")
                }
                let file = store.workspace.root.appendingPathComponent("reports/\(pipeline.name).html")
                guard let bytes = try? readFile(file.path) else {
                    throw StoreError.notFound("pipeline \(name) has no report yet (`suneung report \(name)` writes it)")
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            return text(html, type: "text/html; charset=utf-8")
        }
    }

    // MARK: - Pages

    func leaderboard(_ request: Request) throws -> (String, Node<HTML.BodyContext>) {
        let shortDate = dateFormat()
        let query = try FormValues(query: request)
        func filter(_ key: String) -> String? { query[key] }
        let showHidden = filter("hidden") == "1"
        let sort = filter("sort").flatMap(LeaderboardOrder.init(rawValue:)) ?? .public
        let board = Leaderboard(
            try store.summaries(),
            filter: LeaderboardFilter(
                includeHidden: showHidden, tag: filter("tag"), author: filter("author"), dataset: filter("dataset"),
                origin: filter("origin")),
            order: sort)
        let sets = board.sets, hidden = board.hiddenCount
        let marks = board.marks.mapValues(\.mark)
        let figureRows = sets.filter { $0.public != nil }.prefix(30).map { set in
            (
                label: set.ref, public: set.public, private: set.private,
                error: board.publicError(set), chosen: false,
                ensemble: set.origin == .ensemble
            )
        }
        let inputs: [Node<HTML.FormContext>] = ["dataset", "tag", "author", "origin"].map { key in
            let value: String = attribute(filter(key) ?? "")
            return .label(.text("\(key) "), .input(.name(key), .type(.text), .value(value), .attribute(named: "size", value: "10")))
        }
        let options: [Node<HTML.BodyContext>] = LeaderboardOrder.allCases.map { option in
            let selected: Node<HTML.BodyContext> = option == sort ? .attribute(named: "selected", value: "selected") : .empty
            return .element(named: "option", nodes: [.attribute(named: "value", value: option.rawValue), selected, .text(option.rawValue)])
        }
        let sortSelect: Node<HTML.FormContext> = .label(
            .text(" sort "), .element(named: "select", nodes: [.attribute(named: "name", value: "sort"), .group(options)]))
        let hiddenBox: Node<HTML.FormContext> = .label(
            .text(" hidden "), .input(.name("hidden"), .type(.checkbox), .value("1"), .checked(showHidden)))
        let filterForm: Node<HTML.BodyContext> = .form(
            .method(.get), .action("/"), .group(inputs), sortSelect, hiddenBox, .text(" "), .button(.type(.submit), .text("filter")))
        let hiddenNote = hidden > 0 ? "; \(hidden) hidden (tick hidden to show them)" : ""
        let summary =
            "\(sets.count) set\(sets.count == 1 ? "" : "s")\(hiddenNote). ±: one binomial standard error of the public score over the public half; ~: within one standard error of the best public score of its dataset (the leaderboard cannot tell them apart)."
        let body: Node<HTML.BodyContext> = .group(
            filterForm,
            .p(.class("meta"), .text(summary)),
            .table(
                .id("leaderboard"),
                .tr(
                    .th("set"), .th("origin"), .th("dataset"), .th("public"), .th("±"), .th(""), .th("private"), .th("local"),
                    .th(.class("l"), .text("author")), .th(.class("l"), .text("tags")), .th(.class("l"), .text("created"))),
                .group(
                    sets.map { set in
                        .tr(
                            .class(set.origin == .ensemble ? "ensemble" : ""), .attribute(named: "data-set", value: attribute(set.ref)),
                            .td(
                                .a(.href(setLink(set.ref)), .text(set.ref)), .if(set.hidden, .small(.text(" hidden"))),
                                .if(board.biased.contains(set.id), .small(.text(" biased")))),
                            .td(.text(set.origin.rawValue)), .td(.text(set.dataset)),
                            .td(.text(scoreText(set.public))),
                            .td(.text(board.publicError(set).map { String(format: "%.4f", $0) } ?? "")),
                            .td(.text(marks[set.id] ?? "")),
                            .td(.text(scoreText(set.private))), .td(.text(scoreText(set.local))),
                            .td(.class("l"), .text(set.author ?? "")), .td(.class("l"), .text(set.tags.joined(separator: ", "))),
                            .td(.class("l"), .text(shortDate(set.createdAt))))
                    })),
            .if(
                !figureRows.isEmpty,
                .element(
                    named: "figure",
                    nodes: [.raw(Figures.scores(Array(figureRows), title: "Public and private scores (the 30 best public)"))]))
        )
        return ("Leaderboard", body)
    }

    func setPage(_ ref: SetRef) throws -> (String, Node<HTML.BodyContext>) {
        let shortDate = dateFormat()
        let set = try store.predictionSet(ref)
        let detail = try SetDetail(set, store: store)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let lineage = String(decoding: try encoder.encode(detail.lineage), as: UTF8.self)
        // The best public-scored ensemble over the same dataset, to compare with.
        let best = try store.summaries().filter {
            $0.origin == .ensemble && $0.datasetSha256 == detail.dataset && $0.public != nil && $0.id != set.id
        }
        .max { ($0.public!, $0.createdAt) < ($1.public!, $1.createdAt) }
        let diff = try best.map { try SetDiff(set, try store.predictionSet(id: $0.id), store: store) }
        let counts = (1...5).map { detail.answers["\($0)"] ?? 0 }
        let body: Node<HTML.BodyContext> = .group(
            .p(
                .class("meta"),
                .text(
                    "\(detail.origin.described), created \(shortDate(detail.created))\(detail.author.map { " by \($0)" } ?? "")\(detail.hidden ? ", hidden" : "")"
                )),
            .unwrap(detail.note) { .p(.text($0)) },
            .table(
                .class("facts"),
                .tr(.th("dataset"), .td(.text("\(detail.dataset.prefix(8)) (\(detail.datasetItems) items)"))),
                .tr(.th("rows"), .td(.text("\(detail.rows)\(detail.subset ? " (subset)" : "")"))),
                .tr(.th("values"), .td(.text(detail.values?.rawValue ?? "answers only"))),
                .tr(.th("tags"), .td(.text(detail.tags.joined(separator: ", ")))),
                .tr(.th("csv sha256"), .td(.code(.text(detail.csvSha256)))),
                .tr(.th("same as"), .td(.text(detail.sameAs.joined(separator: ", "))))
            ),
            .unwrap(detail.submission) { submission in
                .group(
                    .h2("Ensemble"),
                    .p(.text("Method \(submission.method); weights \(submission.weights); ties: \(submission.ties).")),
                    .table(
                        .tr(.th("#"), .th("member"), .th("weight"), .th("public then")),
                        .group(
                            submission.members.enumerated().map { index, member in
                                .tr(
                                    .td(.text("\(index + 1)")), .td(.a(.href(setLink(member.set)), .text(member.set))),
                                    .td(.text(String(format: "%.4g", member.weight))), .td(.text(scoreText(member.publicThen))))
                            })))
            },
            .h2("Scores"),
            .if(detail.scores.isEmpty, .p(.text("None recorded yet."))),
            .if(
                !detail.scores.isEmpty,
                .table(
                    .tr(
                        .th("kind"), .th("value"), .th(.class("l"), .text("recorded")), .th(.class("l"), .text("by")),
                        .th(.class("l"), .text("note"))),
                    .group(
                        detail.scores.map { score in
                            .tr(
                                .td(.text(score.kind.rawValue + (score.retractedAt == nil ? "" : " (retracted)"))),
                                .td(.text(scoreText(score.value))), .td(.class("l"), .text(shortDate(score.createdAt))),
                                .td(.class("l"), .text(score.author ?? "")), .td(.class("l"), .text(score.note ?? "")))
                        }))),
            .h2("Answers"),
            .element(named: "figure", nodes: [.raw(Figures.answers([(label: detail.ref, counts: counts)], title: "Answer distribution"))]),
            .h2("Against the best ensemble"),
            .unwrap(
                diff,
                { diff in
                    .group(
                        .p(
                            .text("Agrees with "), .a(.href(setLink(diff.second)), .text(diff.second)),
                            .text(
                                " on \(diff.agree) of \(diff.shared) items (\(String(format: "%.1f%%", 100 * Double(diff.agree) / Double(max(1, diff.shared))))); "
                            ),
                            .a(.href("/compare?a=\(pathValue(diff.first))&b=\(pathValue(diff.second))"), .text("compare"))),
                        .if(
                            !diff.differing.isEmpty,
                            .table(
                                .tr(.th("item"), .th(.text(diff.first)), .th(.text(diff.second))),
                                .group(
                                    diff.differing.prefix(200).map { item in
                                        .tr(.td(.text(item.item)), .td(.text(item.first)), .td(.text(item.second)))
                                    }))))
                }, else: .p(.text("No scored ensemble over this dataset yet."))),
            .h2("Lineage"),
            .pre(.text(lineage))
        )
        return (detail.ref, body)
    }

    func compare(_ a: String, _ b: String) throws -> (String, Node<HTML.BodyContext>) {
        let diff = try SetDiff(try store.predictionSet(a), try store.predictionSet(b), store: store)
        let labels = SetDiff.answerLabels
        let used = (0..<6).filter { i in (0..<6).contains { diff.transitions[i][$0] + diff.transitions[$0][i] > 0 } }
        let body: Node<HTML.BodyContext> = .group(
            .p(
                .text(
                    "\(diff.first) and \(diff.second) agree on \(diff.agree) of \(diff.shared) shared items; \(diff.differing.count) differ."
                )),
            .h2("Answer transitions"),
            .table(
                .id("transitions"),
                .tr(.th(.text("\(diff.first) \\ \(diff.second)")), .group(used.map { .th(.text(labels[$0])) }), .th("all")),
                .group(
                    used.map { i in
                        .tr(
                            .td(.text(labels[i])), .group(used.map { j in .td(.text("\(diff.transitions[i][j])")) }),
                            .td(.text("\(diff.transitions[i].reduce(0, +))")))
                    })),
            .h2("Items that differ"),
            .table(
                .tr(.th("item"), .th(.text(diff.first)), .th(.text(diff.second))),
                .group(diff.differing.map { item in .tr(.td(.text(item.item)), .td(.text(item.first)), .td(.text(item.second))) }))
        )
        return ("Compare \(diff.first) and \(diff.second)", body)
    }

    func agreementPage(_ k: Int) throws -> (String, Node<HTML.BodyContext>) {
        let sets = try MemberSelection(store: store).top(k, datasetFile: nil).sets
        let matrix = try AgreementMatrix(sets, store: store)
        let body: Node<HTML.BodyContext> = .group(
            .p(
                .text(
                    "The \(sets.count) sets with the best public scores (identical content once), over the \(matrix.items) items all of them cover."
                )),
            .element(
                named: "figure",
                nodes: [.raw(Figures.agreement(labels: matrix.sets, matrix: matrix.agreement, title: "Agreement of the top \(sets.count)"))]
            )
        )
        return ("Agreement of the top \(k)", body)
    }

    func uploadsPage() throws -> (String, Node<HTML.BodyContext>) {
        let shortDate = dateFormat()
        let log = try UploadLog(store: store)
        let body: Node<HTML.BodyContext> = .group(
            .p(
                .id("remaining"),
                .text("Today (\(log.timezone)): \(log.usedToday) of \(log.dailySubmissions) uploads used, \(log.remainingToday) left.")),
            .table(
                .tr(
                    .th("#"), .th("set"), .th("public"), .th("private"), .th(.class("l"), .text("when")), .th(.class("l"), .text("by")),
                    .th(.class("l"), .text("note"))),
                .group(
                    log.uploads.reversed().map { upload in
                        .tr(
                            .td(.text("\(upload.id)")), .td(.a(.href(setLink(upload.set)), .text(upload.set))),
                            .td(.text(scoreText(upload.public))), .td(.text(scoreText(upload.private))),
                            .td(.class("l"), .text(shortDate(upload.createdAt) + (upload.retractedAt == nil ? "" : " (retracted)"))),
                            .td(.class("l"), .text(upload.author ?? "")), .td(.class("l"), .text(upload.note ?? "")))
                    }))
        )
        return ("Uploads", body)
    }

    func reportsPage() throws -> (String, Node<HTML.BodyContext>) {
        let shortDate = dateFormat()
        let pipelines = try store.pipelines()
        let body: Node<HTML.BodyContext> = .group(
            .if(pipelines.isEmpty, .p(.text("No pipeline has run in this workspace."))),
            .ul(
                .group(
                    pipelines.map { pipeline in
                        .li(
                            .a(.href("/reports/\(pathValue(pipeline.name))"), .text(pipeline.name)),
                            .text(" — updated \(shortDate(pipeline.updatedAt)), \(pipeline.members.count) members"))
                    }))
        )
        return ("Pipeline reports", body)
    }

    // MARK: - The frame

    static let navigation: [(String, String)] = [
        ("/", "Leaderboard"), ("/agreement?top=5", "Agreement"), ("/uploads", "Uploads"), ("/reports", "Reports")
    ]

    static func frame(title: String, body: Node<HTML.BodyContext>) -> String {
        HTML(
            .head(
                .meta(.charset(.utf8)), .title("Suneung: \(title)"),
                .style(
                    Report.style
                        + "\nbody { max-width: 1100px; } nav a { margin-right: 16px; } form { font-size: 13px; margin: 12px 0; } pre { font-size: 12px; background: #f7f7f7; padding: 8px; overflow-x: auto; } th.l, td.l, table.facts td { text-align: left; }"
                )),
            .body(
                .nav(.group(navigation.map { .a(.href($0.0), .text($0.1)) })),
                .h1(.text(title)),
                body
            )
        ).render()
    }

    /// A page: built off the event loop, then framed.
    func page(_ build: @escaping @Sendable () throws -> (String, Node<HTML.BodyContext>)) async throws -> Response {
        let html = try await blocking { () -> String in
            let (title, body) = try build()
            return Dashboard.frame(title: title, body: body)
        }
        return text(html, type: "text/html; charset=utf-8")
    }

    /// A refusal or an error, as a page.
    static func errorPage(status: HTTPResponse.Status, message: String) -> Response {
        text(frame(title: "\(status.code) \(status.reasonPhrase)", body: .p(.text(message))), type: "text/html; charset=utf-8")
    }

    /// Asked for a token: how to sign in.
    static func signIn(status: HTTPResponse.Status) -> Response {
        let html = frame(
            title: "Sign in",
            body: .group(
                .p(
                    .text(
                        "This is a team's Suneung server. Open /login?token=YOUR_TOKEN once; the browser keeps it as a cookie. The server's owner makes tokens with `suneung token add NAME --role read`."
                    ))
            ))
        var response = text(html, type: "text/html; charset=utf-8")
        response.status = status
        return response
    }
}

// MARK: - Escaping

/// An attribute value, escaped (Plot writes attribute values as given).
func attribute(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
        .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(
            of: "'", with: "&#39;")
}

func setLink(_ ref: String) -> String { "/sets/\(pathValue(ref))" }

func scoreText(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "–" }
