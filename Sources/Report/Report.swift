import Ensemble
import Foundation
import Plot

/// Everything the report shows, gathered from the store by the caller: the report
/// itself reads no files and no database, so it is the same page each time it is
/// rebuilt from the same store.
public struct ReportData: Sendable {
    public struct Member: Sendable {
        public var ref: String
        /// zero-shot, imported, checkpoint or ensemble.
        public var kind: String
        public var publicScore: Double?, privateScore: Double?, localScore: Double?
        /// Items behind the public score (its standard error).
        public var publicItems: Int
        public var chosen: Bool
        /// How often it answers 1..5.
        public var answers: [Int]

        public init(
            ref: String, kind: String, publicScore: Double?, privateScore: Double?, localScore: Double?, publicItems: Int, chosen: Bool,
            answers: [Int]
        ) {
            self.ref = ref
            self.kind = kind
            self.publicScore = publicScore
            self.privateScore = privateScore
            self.localScore = localScore
            self.publicItems = publicItems
            self.chosen = chosen
            self.answers = answers
        }
    }

    public var name: String
    public var generated: String
    public var members: [Member]
    public var goldAnswers: [Int]?
    public var trainingRun: String?
    public var steps: [(step: Int, loss: Double)]
    public var validation: [(step: Int, loss: Double, accuracy: Double)]
    /// Agreement between the chosen members and the ensembles.
    public var agreementLabels: [String]
    public var agreement: [[Double]]
    public var submission: String?
    public var notes: [String]

    public init(
        name: String, generated: String, members: [Member], goldAnswers: [Int]?, trainingRun: String?, steps: [(step: Int, loss: Double)],
        validation: [(step: Int, loss: Double, accuracy: Double)], agreementLabels: [String], agreement: [[Double]], submission: String?,
        notes: [String]
    ) {
        self.name = name
        self.generated = generated
        self.members = members
        self.goldAnswers = goldAnswers
        self.trainingRun = trainingRun
        self.steps = steps
        self.validation = validation
        self.agreementLabels = agreementLabels
        self.agreement = agreement
        self.submission = submission
        self.notes = notes
    }
}

public enum Report {
    /// The page's look, shared with the team server's dashboard.
    public static let style = """
        body { font-family: Helvetica, Arial, sans-serif; margin: 32px auto; max-width: 780px; color: #222; }
        h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; }
        .meta { color: #666; font-size: 13px; }
        table { border-collapse: collapse; font-size: 13px; width: 100%; }
        th, td { padding: 4px 8px; border-bottom: 1px solid #e5e5e5; text-align: right; }
        th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
        tr.chosen td:first-child { font-weight: bold; } tr.ensemble { background: #f4f7fb; }
        figure { margin: 16px 0; } svg { max-width: 100%; height: auto; }
        .notes { font-size: 13px; color: #444; }
        """

    /// The figures, by file name (NAME-loss.svg, ...), in the page's order.
    public static func figures(_ data: ReportData) -> [(file: String, svg: String)] {
        var figures: [(String, String)] = []
        if let run = data.trainingRun {
            figures.append(
                (
                    "\(data.name)-loss.svg",
                    Figures.lossCurves(
                        steps: data.steps, validation: data.validation.map { ($0.step, $0.loss) },
                        title: "Training and validation loss: \(run)")
                ))
        }
        let rows = data.members.map { m in
            (
                label: m.ref, public: m.publicScore, private: m.privateScore,
                error: m.publicScore.map { p in m.publicItems > 0 ? standardError(accuracy: p, items: m.publicItems) : 0 },
                chosen: m.chosen, ensemble: m.kind == "ensemble"
            )
        }
        let top = "the top \(data.members.filter(\.chosen).count)"
        figures.append(
            ("\(data.name)-scores.svg", Figures.scores(rows, title: "Public and private score of every member and ensemble (★ \(top))")))
        if data.agreementLabels.count >= 2 {
            figures.append(
                (
                    "\(data.name)-agreement.svg",
                    Figures.agreement(labels: data.agreementLabels, matrix: data.agreement, title: "Agreement of \(top) and the ensembles")
                ))
        }
        let answerRows =
            (data.goldAnswers.map { [(label: "gold", counts: $0)] } ?? []) + data.members.map { (label: $0.ref, counts: $0.answers) }
        figures.append(
            (
                "\(data.name)-answers.svg",
                Figures.answers(
                    answerRows, title: "Answer distribution of each member" + (data.goldAnswers == nil ? "" : " against the gold"))
            ))
        return figures
    }

    /// One self-contained page: the summary table and the figures inline (SVG, no
    /// script, no network).
    public static func html(_ data: ReportData) -> String {
        func score(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "–" }
        let best = data.members.filter { $0.kind == "ensemble" }.first
        let page = HTML(
            .head(
                .meta(.charset(.utf8)),
                .title("Suneung report: \(data.name)"),
                .style(style)
            ),
            .body(
                .h1("Suneung: \(data.name)"),
                .p(.class("meta"), .text("Generated \(data.generated) from the store (suneung report \(data.name)).")),
                .unwrap(best) { best in
                    .p(
                        .text("Submission: "), .strong(.text(best.ref)), .text(data.submission.map { " → \($0)" } ?? ""),
                        .text(" — public \(score(best.publicScore)), private \(score(best.privateScore))."))
                },
                .h2("Summary"),
                .table(
                    .tr(
                        .th("set"), .th("kind"), .th("public"), .th("private"), .th("local"),
                        .th("top \(data.members.filter(\.chosen).count)")),
                    .forEach(data.members) { m in
                        .tr(
                            .class(
                                [m.chosen ? "chosen" : "", m.kind == "ensemble" ? "ensemble" : ""].filter { !$0.isEmpty }.joined(
                                    separator: " ")),
                            .td(.text(m.ref)), .td(.text(m.kind)), .td(.text(score(m.publicScore))), .td(.text(score(m.privateScore))),
                            .td(.text(score(m.localScore))), .td(.text(m.chosen ? "★" : "")))
                    }
                ),
                .forEach(figures(data)) { figure in .element(named: "figure", nodes: [.raw(figure.svg)]) },
                .if(!data.notes.isEmpty, .div(.class("notes"), .h2("Notes"), .ul(.forEach(data.notes) { .li(.text($0)) })))
            )
        )
        return page.render(indentedBy: .spaces(1))
    }
}
