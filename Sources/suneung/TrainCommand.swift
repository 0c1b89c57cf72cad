import ArgumentParser
import Engine
import Exam
import Foundation
import GGUF
import Store
import Tensor
import Training
import Workflow

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a LoRA adapter on a labelled exam CSV, on the CPU, saving PEFT checkpoints into the store.",
        discussion: """
            Settings come from --config (YAML, keys as in config/train.yaml) and from \
            flags, which win: every key is also a flag (learning_rate is \
            --learning-rate). The loss is completion-only: the cross-entropy of the \
            answer token after the baseline prompt (DESIGN.md) in the model's chat \
            template. Checkpoints go to checkpoints/RUN/step-N/ in PEFT's format \
            (adapter_config.json, adapter_model.safetensors) with the optimiser's state, \
            and into the store with their config, data hashes and metrics: see \
            `suneung list --checkpoints` and `suneung predict --checkpoint RUN/step-N`. \
            A killed run continues with --resume RUN from its last checkpoint and ends \
            with the weights an uninterrupted run would have.

            SETTINGS (keys of the config; as flags, --key VALUE or --key=VALUE):

            """ + TrainingConfig.settings.map(helpLines).joined(separator: "\n")
    )

    /// A setting's flag and help in two columns, the help wrapped under itself to fit 80
    /// columns (ArgumentParser would wrap it back to the margin).
    static func helpLines(_ setting: TrainingConfig.Setting) -> String {
        let indent = 30, flag = "  \(setting.flag) \(setting.valueName)", margin = String(repeating: " ", count: indent)
        var lines: [String] = [], line = flag.count < indent ? flag.padding(toLength: indent, withPad: " ", startingAt: 0) : margin
        if flag.count >= indent { lines.append(flag) }
        for word in setting.help.split(separator: " ") {
            if line.count > indent && line.count + 1 + word.count > 79 {
                lines.append(line)
                line = margin
            }
            line += (line.count > indent ? " " : "") + word
        }
        return (lines + [line]).joined(separator: "\n")
    }

    @OptionGroup var options: WorkspaceOptions

    @Option(help: ArgumentHelp("A YAML file of settings (see config/train.yaml).", valueName: "FILE.yaml"))
    var config: String?

    @Option(help: ArgumentHelp("Continue the run RUN from its last checkpoint, with its stored settings.", valueName: "RUN"))
    var resume: String?

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Argument(
        parsing: .allUnrecognized,
        help: ArgumentHelp("Settings as flags: --learning-rate 2e-4 (all of them below).", valueName: "--key value"))
    var settings: [String] = []

    /// The settings given as flags, by config key.
    func flags() throws -> [String: ConfigValue] {
        let known = TrainingConfig.settings.map(\.flag)
        var values: [String: ConfigValue] = [:], words = settings[...]
        while let word = words.popFirst() {
            let parts = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard word.hasPrefix("--"), let flag = parts.first, known.contains(flag) else {
                let hint = nearestName(to: parts.first ?? word, among: known).map { " (did you mean '\($0)'?)" } ?? ""
                throw ValidationError("unknown option '\(word)'\(hint); the settings are listed in `suneung train --help`")
            }
            let key = String(flag.dropFirst(2)).replacingOccurrences(of: "-", with: "_")
            guard values[key] == nil else { throw ValidationError("\(flag) is given twice") }
            if parts.count == 2 {
                values[key] = .scalar(parts[1])
            } else if let value = words.first, !known.contains(String(value.split(separator: "=").first ?? "")) {
                words.removeFirst()
                values[key] = .scalar(value)
            } else {
                throw ValidationError("\(flag) needs a value (\(TrainingConfig.settings.first { $0.flag == flag }!.valueName))")
            }
        }
        return values
    }

    func validate() throws { _ = try flags() }

    func run() throws {
        let store = try options.openStore()
        var values: [String: ConfigValue] = try config.map { try Train.readYAML($0) } ?? [:]
        for (key, value) in try flags() { values[key] = value }
        var printer = EventPrinter()
        try Train.run(TrainRequest(values: values, source: config ?? "the flags", resume: resume, threads: threads), store: store) {
            printer.show($0)
        }
    }
}
