import Foundation

// The report's figures as SVG text: hand-written, because no package on our list draws
// charts, and these four need only lines, rectangles and text. Every figure is a
// self-contained <svg> that renders alone (its own file) or inline in the page.

/// Where values map to pixels on one axis: domain.lowerBound to `from`, upperBound
/// to `to` (a y axis runs upwards: from the bottom pixel to the top one).
struct Scale {
    var domain: ClosedRange<Double>
    var from: Double, to: Double

    init(domain: ClosedRange<Double>, pixels: (from: Double, to: Double)) {
        self.domain = domain
        (from, to) = pixels
    }

    func callAsFunction(_ value: Double) -> Double {
        let span = domain.upperBound - domain.lowerBound
        let t = span == 0 ? 0.5 : (value - domain.lowerBound) / span
        return from + t * (to - from)
    }

    /// About `count` round tick values across the domain.
    func ticks(_ count: Int = 5) -> [Double] {
        let span = domain.upperBound - domain.lowerBound
        guard span > 0 else { return [domain.lowerBound] }
        let raw = span / Double(count), magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var values: [Double] = [], value = ceil(domain.lowerBound / step) * step
        while value <= domain.upperBound + step * 1e-9 {
            values.append(value)
            value += step
        }
        return values
    }
}

func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

func number(_ value: Double) -> String { String(format: "%.1f", value) }

/// A figure's frame: the <svg> element, a title, and its body.
func svg(width: Int, height: Int, title: String, _ body: [String]) -> String {
    """
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(width) \(height)" width="\(width)" height="\(height)" font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-label="\(escape(title))">
    <rect width="\(width)" height="\(height)" fill="white"/>
    <text x="12" y="20" font-size="14" font-weight="bold" fill="#222">\(escape(title))</text>
    \(body.joined(separator: "\n"))
    </svg>
    """
}

let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948"]

public enum Figures {
    /// Training loss per step (thin), its moving average over 10 steps (bold), and the
    /// validation loss at each evaluation (points joined), on one axis.
    public static func lossCurves(steps: [(step: Int, loss: Double)], validation: [(step: Int, loss: Double)], title: String) -> String {
        let width = 720, height = 320, left = 56.0, right = 700.0, top = 36.0, bottom = 280.0
        let allSteps = steps.map(\.step) + validation.map(\.step)
        let losses = steps.map(\.loss) + validation.map(\.loss)
        guard let maxStep = allSteps.max(), let maxLoss = losses.max() else {
            return svg(width: width, height: 80, title: title, ["<text x=\"12\" y=\"50\" fill=\"#666\">No training steps recorded.</text>"])
        }
        let x = Scale(domain: 0...Double(max(1, maxStep)), pixels: (left, right))
        let y = Scale(domain: 0...max(maxLoss * 1.05, 1e-6), pixels: (bottom, top))
        var body = axes(x: x, y: y, left: left, right: right, top: top, bottom: bottom, xLabel: "step", yLabel: "loss")
        func path(_ points: [(Double, Double)]) -> String {
            points.enumerated().map { i, p in "\(i == 0 ? "M" : "L")\(number(x(p.0))),\(number(y(p.1)))" }.joined(separator: " ")
        }
        body.append("<path d=\"\(path(steps.map { (Double($0.step), $0.loss) }))\" fill=\"none\" stroke=\"#9bb5d6\" stroke-width=\"1\"/>")
        let window = 10
        let smoothed = steps.indices.map { i -> (Double, Double) in
            let slice = steps[max(0, i - window + 1)...i]
            return (Double(steps[i].step), slice.map(\.loss).reduce(0, +) / Double(slice.count))
        }
        body.append("<path d=\"\(path(smoothed))\" fill=\"none\" stroke=\"\(palette[0])\" stroke-width=\"2.5\"/>")
        if !validation.isEmpty {
            body.append(
                "<path d=\"\(path(validation.map { (Double($0.step), $0.loss) }))\" fill=\"none\" stroke=\"\(palette[1])\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>"
            )
            for point in validation {
                body.append(
                    "<circle cx=\"\(number(x(Double(point.step))))\" cy=\"\(number(y(point.loss)))\" r=\"4\" fill=\"\(palette[1])\"><title>step \(point.step): validation loss \(String(format: "%.4f", point.loss))</title></circle>"
                )
            }
        }
        body += legend(
            [("training loss (10-step mean)", palette[0]), ("training loss per step", "#9bb5d6")]
                + (validation.isEmpty ? [] : [("validation loss", palette[1])]), x: right - 200, y: top + 4)
        return svg(width: width, height: height, title: title, body)
    }

    /// One row per set: the public score (bar, with ±1 binomial standard error) and the
    /// private score (bar below it); the chosen members marked ★, ensembles in bold.
    public static func scores(
        _ rows: [(label: String, public: Double?, private: Double?, error: Double?, chosen: Bool, ensemble: Bool)], title: String
    ) -> String {
        let labelWidth = 230.0, right = 690.0, rowHeight = 30.0, top = 74.0
        let height = Int(top + rowHeight * Double(rows.count) + 44)
        let values = rows.flatMap { [$0.public, $0.private].compactMap { $0 } }
        let low = max(0, (values.min() ?? 0) - 0.1), high = min(1, (values.max() ?? 1) + 0.05)
        let x = Scale(domain: floor(low * 10) / 10...max(ceil(high * 20) / 20, floor(low * 10) / 10 + 0.1), pixels: (labelWidth, right))
        var body: [String] = []
        for tick in x.ticks(6) {
            body.append(
                "<line x1=\"\(number(x(tick)))\" y1=\"\(top - 6)\" x2=\"\(number(x(tick)))\" y2=\"\(number(top + rowHeight * Double(rows.count)))\" stroke=\"#e3e3e3\"/>"
            )
            body.append(
                "<text x=\"\(number(x(tick)))\" y=\"\(number(top + rowHeight * Double(rows.count) + 16))\" text-anchor=\"middle\" fill=\"#555\">\(String(format: "%.2f", tick))</text>"
            )
        }
        for (i, row) in rows.enumerated() {
            let y0 = top + rowHeight * Double(i)
            let label = (row.chosen ? "★ " : "") + row.label
            body.append(
                "<text x=\"\(number(labelWidth - 8))\" y=\"\(number(y0 + 16))\" text-anchor=\"end\" fill=\"#222\"\(row.ensemble ? " font-weight=\"bold\"" : "")>\(escape(label))</text>"
            )
            if let p = row.public {
                body.append(
                    "<rect x=\"\(number(labelWidth))\" y=\"\(number(y0 + 3))\" width=\"\(number(max(0, x(p) - labelWidth)))\" height=\"11\" fill=\"\(palette[0])\"><title>\(escape(row.label)): public \(String(format: "%.4f", p))</title></rect>"
                )
                if let e = row.error {
                    let a = x(max(x.domain.lowerBound, p - e)), b = x(min(1, p + e)), mid = y0 + 8.5
                    body.append(
                        "<path d=\"M\(number(a)),\(number(mid)) H\(number(b)) M\(number(a)),\(number(mid - 4)) V\(number(mid + 4)) M\(number(b)),\(number(mid - 4)) V\(number(mid + 4))\" stroke=\"#222\" stroke-width=\"1.2\"/>"
                    )
                }
                body.append(
                    "<text x=\"\(number(min(right + 4, x(p) + 6 + (row.error.map { x(p + $0) - x(p) } ?? 0))))\" y=\"\(number(y0 + 13))\" fill=\"#333\" font-size=\"10\">\(String(format: "%.3f", p))</text>"
                )
            }
            if let q = row.private {
                body.append(
                    "<rect x=\"\(number(labelWidth))\" y=\"\(number(y0 + 15))\" width=\"\(number(max(0, x(q) - labelWidth)))\" height=\"9\" fill=\"\(palette[1])\"><title>\(escape(row.label)): private \(String(format: "%.4f", q))</title></rect>"
                )
            }
        }
        body += legend([("public (±1 standard error)", palette[0]), ("private", palette[1])], x: labelWidth, y: 40)
        return svg(width: 720, height: height, title: title, body)
    }

    /// Pairwise agreement (share of items with the same answer), darker = more alike.
    public static func agreement(labels: [String], matrix: [[Double]], title: String) -> String {
        let n = labels.count, cell = 56.0, left = 220.0, top = 44.0
        let width = Int(left + cell * Double(n) + 20), height = Int(top + cell * Double(n) + 150)
        var body: [String] = []
        let low = matrix.flatMap { $0 }.min() ?? 0
        for i in 0..<n {
            body.append(
                "<text x=\"\(number(left - 8))\" y=\"\(number(top + cell * Double(i) + cell / 2 + 4))\" text-anchor=\"end\" fill=\"#222\">\(escape(labels[i]))</text>"
            )
            let cx = left + cell * Double(i) + cell / 2, cy = top + cell * Double(n) + 8
            body.append(
                "<text x=\"\(number(cx))\" y=\"\(number(cy))\" text-anchor=\"end\" fill=\"#222\" transform=\"rotate(-45 \(number(cx)) \(number(cy)))\">\(escape(labels[i]))</text>"
            )
            for j in 0..<n {
                let v = matrix[i][j], t = low >= 1 ? 1 : (v - low) / (1 - low)
                let shade = Int(245 - 180 * t)
                body.append(
                    "<rect x=\"\(number(left + cell * Double(j)))\" y=\"\(number(top + cell * Double(i)))\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"rgb(\(shade),\(shade + 8 > 255 ? 255 : shade + 8),255)\"><title>\(escape(labels[i])) vs \(escape(labels[j])): \(String(format: "%.3f", v))</title></rect>"
                )
                body.append(
                    "<text x=\"\(number(left + cell * Double(j) + cell / 2 - 1))\" y=\"\(number(top + cell * Double(i) + cell / 2 + 4))\" text-anchor=\"middle\" fill=\"\(t > 0.6 ? "white" : "#222")\">\(String(format: "%.2f", v))</text>"
                )
            }
        }
        return svg(width: max(width, 420), height: height, title: title, body)
    }

    /// Each set's answers as shares of 1..5 (stacked), the gold's first.
    public static func answers(_ rows: [(label: String, counts: [Int])], title: String) -> String {
        let left = 230.0, right = 690.0, rowHeight = 26.0, top = 60.0
        let height = Int(top + rowHeight * Double(rows.count) + 30)
        var body: [String] = []
        for (i, row) in rows.enumerated() {
            let y0 = top + rowHeight * Double(i), total = Double(max(1, row.counts.reduce(0, +)))
            body.append(
                "<text x=\"\(number(left - 8))\" y=\"\(number(y0 + 14))\" text-anchor=\"end\" fill=\"#222\">\(escape(row.label))</text>")
            var x0 = left
            for (choice, count) in row.counts.enumerated() where count > 0 {
                let w = (right - left) * Double(count) / total
                body.append(
                    "<rect x=\"\(number(x0))\" y=\"\(number(y0 + 2))\" width=\"\(number(w))\" height=\"18\" fill=\"\(palette[choice])\"><title>\(escape(row.label)): answer \(choice + 1) on \(count) items</title></rect>"
                )
                if w > 24 {
                    body.append(
                        "<text x=\"\(number(x0 + w / 2))\" y=\"\(number(y0 + 15))\" text-anchor=\"middle\" fill=\"white\" font-size=\"10\">\(Int((100 * Double(count) / total).rounded()))%</text>"
                    )
                }
                x0 += w
            }
        }
        body += legend((1...5).map { ("answer \($0)", palette[$0 - 1]) }, x: left, y: 42, horizontal: true)
        return svg(width: 720, height: height, title: title, body)
    }

    static func axes(x: Scale, y: Scale, left: Double, right: Double, top: Double, bottom: Double, xLabel: String, yLabel: String)
        -> [String]
    {
        var body = [
            "<line x1=\"\(left)\" y1=\"\(bottom)\" x2=\"\(right)\" y2=\"\(bottom)\" stroke=\"#333\"/>",
            "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(bottom)\" stroke=\"#333\"/>"
        ]
        for tick in x.ticks() {
            body.append(
                "<text x=\"\(number(x(tick)))\" y=\"\(number(bottom + 16))\" text-anchor=\"middle\" fill=\"#555\">\(tick == tick.rounded() ? String(Int(tick)) : String(format: "%.1f", tick))</text>"
            )
        }
        for tick in y.ticks() {
            body.append("<line x1=\"\(left)\" y1=\"\(number(y(tick)))\" x2=\"\(right)\" y2=\"\(number(y(tick)))\" stroke=\"#eee\"/>")
            body.append(
                "<text x=\"\(number(left - 6))\" y=\"\(number(y(tick) + 4))\" text-anchor=\"end\" fill=\"#555\">\(String(format: "%.2g", tick))</text>"
            )
        }
        body.append(
            "<text x=\"\(number((left + right) / 2))\" y=\"\(number(bottom + 34))\" text-anchor=\"middle\" fill=\"#333\">\(xLabel)</text>")
        body.append(
            "<text x=\"14\" y=\"\(number((top + bottom) / 2))\" text-anchor=\"middle\" fill=\"#333\" transform=\"rotate(-90 14 \(number((top + bottom) / 2)))\">\(yLabel)</text>"
        )
        return body
    }

    static func legend(_ entries: [(String, String)], x: Double, y: Double, horizontal: Bool = false) -> [String] {
        entries.enumerated().flatMap { i, entry -> [String] in
            let ex = horizontal ? x + Double(i) * 90 : x, ey = horizontal ? y : y + Double(i) * 16
            return [
                "<rect x=\"\(number(ex))\" y=\"\(number(ey - 9))\" width=\"12\" height=\"10\" fill=\"\(entry.1)\"/>",
                "<text x=\"\(number(ex + 16))\" y=\"\(number(ey))\" fill=\"#333\" font-size=\"11\">\(escape(entry.0))</text>"
            ]
        }
    }
}
