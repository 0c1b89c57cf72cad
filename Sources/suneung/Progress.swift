import Foundation
import Training

/// A progress bar on standard error: items, items/s, tokens/s and the time left. In a
/// terminal it redraws one line; otherwise (a log file) it prints a line every 10%.
struct ProgressBar {
    let total: Int
    let start = Date()
    var done = 0
    var tokens = 0
    var lastPrintedTenth = -1
    let isTerminal = isatty(STDERR_FILENO) != 0

    init(total: Int) { self.total = total }

    mutating func advance(tokens count: Int) {
        done += 1
        tokens += count
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let remaining = Double(total - done) / max(rate, 1e-9)
        let width = 24, filled = total == 0 ? width : width * done / total
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = String(
            format: "[%@] %d/%d items  %.2f items/s  %.0f tokens/s  ETA %@", bar, done, total, rate, Double(tokens) / max(elapsed, 1e-9),
            duration(remaining))
        if isTerminal {
            FileHandle.standardError.write(Data(("\r" + line + (done == total ? "\n" : "")).utf8))
        } else if total > 0, done * 10 / total != lastPrintedTenth {
            lastPrintedTenth = done * 10 / total
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
}

func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "-" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
}

/// Training's progress line: step, loss, learning rate, tokens/s and the time left;
/// notes (evaluations, checkpoints) print on lines of their own.
struct TrainingProgress {
    let total: Int
    let start = Date()
    var done = 0, tokens = 0
    var lastPrintedTenth = -1
    let isTerminal = isatty(STDERR_FILENO) != 0

    init(total: Int) { self.total = total }

    mutating func advance(_ step: Trainer.Step) {
        done += 1
        tokens += step.tokens
        let elapsed = Date().timeIntervalSince(start)
        let remaining = elapsed / Double(done) * Double(total - done)
        let line = String(
            format: "step %d (%d/%d)  epoch %.2f  loss %.4f  lr %.2e  %.0f tokens/s  ETA %@",
            step.step, done, total, step.epoch, step.loss, step.learningRate, Double(tokens) / max(elapsed, 1e-9), duration(remaining))
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (done == total ? "\n" : "")).utf8))
        } else if total > 0, done * 10 / total != lastPrintedTenth {
            lastPrintedTenth = done * 10 / total
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    func note(_ text: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + text + "\n").utf8))
    }
}

/// push and pull: sets done of all, sets/s and the time left, on standard error (in a
/// terminal one redrawn line; otherwise every 10%).
final class ProgressLine {
    let label: String
    let start = Date()
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastPrintedTenth = -1

    init(label: String) { self.label = label }

    func update(done: Int, total: Int, detail: String) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let line = String(
            format: "%@ %d/%d sets  %.1f sets/s  ETA %@  %@", label, done, total, rate, duration(Double(total - done) / max(rate, 1e-9)),
            String(detail.prefix(60)))
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else if total > 0, done * 10 / total != lastPrintedTenth {
            lastPrintedTenth = done * 10 / total
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

/// Bytes written of a large file: MB, MB/s and the time left; a line every 10% outside
/// a terminal.
struct ByteProgress {
    let start = Date()
    var lastPrintedTenth = -1
    let isTerminal = isatty(STDERR_FILENO) != 0

    mutating func update(_ done: Int, of total: Int) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let width = 24, filled = total == 0 ? width : width * done / total
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = String(
            format: "[%@] %.1f/%.1f MB  %.1f MB/s  ETA %@", bar, Double(done) / 1e6, Double(total) / 1e6, rate / 1e6,
            duration(Double(total - done) / max(rate, 1e-9)))
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (done == total ? "\n" : "")).utf8))
        } else if total > 0, done * 10 / total != lastPrintedTenth {
            lastPrintedTenth = done * 10 / total
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
}
