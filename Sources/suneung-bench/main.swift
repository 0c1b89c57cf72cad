// Benchmarks of the store (and later the ensembler and engine), on the real sizes:
// 869 test items, prediction sets with logits. Run: swift run -c release suneung-bench
import Engine
import Ensemble
import Exam
import Foundation
import GGUF
import Store
import Tensor
import Tokenizer
import Training

func seconds(_ work: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try work()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func report(_ name: String, _ value: Double, goal: Double, note: String = "") {
    let verdict = value <= goal ? "ok" : "OVER GOAL"
    print(
        name.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: "%8.3f s   (goal < %.2f s, ", value, goal) + verdict + ")"
            + note)
}

let root = FileManager.default.temporaryDirectory.appendingPathComponent("suneung-bench-\(ProcessInfo.processInfo.processIdentifier)")
defer { try? FileManager.default.removeItem(at: root) }
let store = try Store(workspace: Workspace(root: root), create: true)

// The real test set when it is beside the checkout; otherwise one of the same size.
let realTest = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/test.csv")
let testFile: String
if FileManager.default.fileExists(atPath: realTest.path) {
    testFile = realTest.path
} else {
    testFile = root.appendingPathComponent("test.csv").path
    let rows = (0..<869).map { i in
        [
            "item-\(i)", String(repeating: "지문 ", count: 200),
            "{'question': '질문', 'choices': ['1', '2', '3', '4'\(i % 5 == 0 ? "" : ", '5'")], 'answer': ''}", ""
        ]
    }
    try CSV.write([["id", "paragraph", "problems", "question_plus"]] + rows).write(toFile: testFile, atomically: true, encoding: .utf8)
}
print("dataset: \(testFile)")
let shape = try store.dataset(file: testFile).shape

func predictionCSV(_ random: inout SplitMix64) -> String {
    var lines = [["id", "answer", "logit_1", "logit_2", "logit_3", "logit_4", "logit_5"]]
    for (id, choices) in zip(shape.ids, shape.choiceCounts) {
        let logits = (0..<choices).map { _ in Double(Float.random(in: -8...8, using: &random)) }
        let answer = logits.indices.max { logits[$0] < logits[$1] }! + 1
        lines.append([id, String(answer)] + logits.map { "\($0)" } + Array(repeating: "", count: 5 - choices))
    }
    return CSV.write(lines)
}
// A seeded generator, so every run measures the same inputs.
var random = SplitMix64(seed: 2026)
var files: [String] = []
for index in 0..<100 {
    let path = root.appendingPathComponent("run-\(index).csv").path
    try predictionCSV(&random).write(toFile: path, atomically: true, encoding: .utf8)
    files.append(path)
}

// What `suneung import` does per file: dataset by hash, parse, validate, store, write.
let lineage = Lineage(commandLine: "bench", toolVersion: "bench")
let importTime = try seconds {
    for (index, file) in files.enumerated() {
        let dataset = try store.dataset(file: testFile)
        let table = try PredictionTable.read(bytes: try readFile(file), file: file, dataset: dataset.shape).table
        _ = try store.addPredictionSet(name: "run-\(index)", dataset: dataset, table: table, origin: .imported, lineage: lineage)
    }
}
report("import 100 sets x 869 rows with logits", importTime, goal: 5)

// Up to 1,000 sets, each with scores, then list them.
let dataset = try store.dataset(file: testFile)
for index in 100..<1000 {
    let table = try PredictionTable.read(bytes: try readFile(files[index % 100]), file: files[index % 100], dataset: dataset.shape).table
    guard
        case .created(let set) = try store.addPredictionSet(
            name: "more-\(index)", dataset: dataset, table: table, origin: .imported, lineage: lineage)
    else { continue }
    try store.addScores(to: set, [(.public, Double(index % 97) / 100, nil), (.private, 0.5, nil)])
}
report("list 1,000 sets (in process)", try seconds { _ = try store.summaries() }, goal: 0.3)

// GGUF and the tokenizer on the default Gemma model, with llama.cpp and the gguf
// package measured in the same run (scripts/reference/bench_reference.py) where
// Python has them.
let modelFolder =
    ProcessInfo.processInfo.environment["SUNEUNG_MODELS"].map { URL(fileURLWithPath: $0) }
    ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/suneung/models")
/// The JSON line of seconds a script in scripts/reference/ prints; empty where Python
/// lacks its packages.
func referenceTimings(_ script: String, _ arguments: [String]) -> [String: Double] {
    let python = Process()
    python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    python.arguments =
        [
            "python3",
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("scripts/reference/\(script)").path
        ] + arguments
    let pipe = Pipe()
    python.standardOutput = pipe
    python.standardError = FileHandle.nullDevice
    guard (try? python.run()) != nil else { return [:] }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    python.waitUntilExit()
    return (try? JSONSerialization.jsonObject(with: data) as? [String: Double]) ?? [:]
}

let gemmaPath = modelFolder.appendingPathComponent("gemma-3-270m-q4_k_m.gguf").path
if FileManager.default.fileExists(atPath: gemmaPath) {
    let reference = referenceTimings("bench_reference.py", [gemmaPath, testFile])
    func versus(_ key: String, _ ours: Double, _ who: String) -> String {
        guard let theirs = reference[key] else { return "   (\(who) not installed: no reference)" }
        return String(format: "   %@ %.3f s: %.1fx faster", who, theirs, theirs / ours)
    }

    var gemma: GGUFFile!
    let openTime = try seconds { gemma = try GGUFFile(path: gemmaPath) }
    report("open Gemma 3 270M, read its metadata", openTime, goal: 0.2, note: versus("open_s", openTime, "gguf package"))
    var tokenizer: Tokenizer!
    report("build the tokenizer from its metadata", try seconds { tokenizer = try Tokenizer(gguf: gemma) }, goal: 0.5)
    let exam = try ExamSet.load(path: testFile)
    let prompts = exam.items.map { item in
        let prompt = Prompt.baseline(item)
        return ChatTemplate.gemma.render(system: prompt.system, user: prompt.user)
    }
    var tokenCount = 0
    let tokenizeTime = seconds { tokenCount = prompts.reduce(0) { $0 + tokenizer.encode($1).count } }
    report(
        "tokenize \(prompts.count) prompts (\(tokenCount) tokens)", tokenizeTime, goal: 2,
        note: versus("tokenize_s", tokenizeTime, "llama.cpp"))
    var floats = 0
    let dequantizeTime = seconds { for tensor in gemma.tensors { floats += gemma.dequantize(tensor).count } }
    let readBytes = gemma.tensors.reduce(0) { $0 + $1.byteCount }
    report(
        "dequantize all \(gemma.tensors.count) tensors to Float32", dequantizeTime, goal: 2,
        note: String(
            format: "   %.2f GB/s read, %.2f GB/s written;", Double(readBytes) / dequantizeTime / 1e9,
            Double(floats * 4) / dequantizeTime / 1e9) + versus("dequantize_s", dequantizeTime, "gguf package"))

    // The engine: prompt processing of the first 20 test prompts (llama.cpp: 2 threads),
    // in float32 (the trainer's model too) and on the weights' codes.
    let model = try Model(file: gemma, precision: .f32)
    let quantized = try Model(file: gemma, precision: .q8)
    print(
        "engine: layer weights \(model.layerBytes >> 20) MiB in float32, \(quantized.layerBytes >> 20) MiB as codes; q8 kernel: \(QuantizedMatrix.Path.best)"
    )

    // The four linear products of one block on 400 rows: the integer kernel on the codes
    // against the float32 product (our packed kernel, else OpenBLAS) on the same model.
    do {
        var random = SplitMix64(seed: 3)
        let (plain, coded) = (model.blocks[0], quantized.blocks[0])
        let weights = [(plain.qkv, coded.qkv), (plain.output, coded.output), (plain.gateUp, coded.gateUp), (plain.down, coded.down)]
        let inputs = weights.map { w in (0..<400 * w.0.inner).map { _ in Float(random.next() % 2001) / 1000 - 1 } }
        var output = [Float](repeating: 0, count: 400 * 2 * model.config.feedForward)
        func time(codes: Bool) -> Double {
            var best = Double.infinity
            for _ in 0..<3 {
                best = min(
                    best,
                    seconds {
                        for _ in 0..<10 {
                            for (w, x) in zip(weights, inputs) { (codes ? w.1 : w.0).product(x, rows: 400, into: &output) }
                        }
                    })
            }
            return best
        }
        let multiplyAdds = weights.reduce(0) { $0 + $1.0.outer * $1.0.inner }
        let flops = 10 * 2 * 400 * Double(multiplyAdds)
        let codedTime = time(codes: true), floatTime = time(codes: false)
        report(
            "engine: block products, 400 rows, x10, q8 (\(QuantizedMatrix.Path.best))", codedTime, goal: floatTime,
            note: String(
                format: "   %.0f G multiply-adds/s; float32 (%@) %.0f (%.3f s): ratio %.2f", flops / 2 / codedTime / 1e9,
                PackedMatrix.kernelAvailable ? "packed AVX-512" : "OpenBLAS", flops / 2 / floatTime / 1e9, floatTime, floatTime / codedTime)
        )
    }
    let batch = prompts.prefix(20).map { tokenizer.encode($0) }
    let batchTokens = batch.reduce(0) { $0 + $1.count }
    for engine in [quantized, model] {
        var checksum: Float = 0
        let prefillTime = try seconds { for tokens in batch { checksum += try engine.forwardToFinalHidden(tokens)[0] } }
        let ours = Double(batchTokens) / prefillTime
        var note = String(format: "   %.0f tokens/s", ours)
        if let theirs = reference["prefill_s"], let theirTokens = reference["prefill_tokens"] {
            let rate = theirTokens / theirs
            note += String(format: "; llama.cpp %.0f tokens/s: ratio %.2f", rate, ours / rate)
        }
        report("engine (\(engine.precision.rawValue)): 20 test prompts, \(batchTokens) tokens", prefillTime, goal: 60, note: note)
    }

    // The trainer: one optimiser step (forward, backward, AdamW) with LoRA r=16 on all
    // seven projections, on the first test prompt of 350-450 tokens; PyTorch + PEFT on
    // the same model, item and adapter sizes in the same run
    // (scripts/reference/training_bench.py).
    let trainTokens = prompts.lazy.map { tokenizer.encode($0) }.first { (350...450).contains($0.count) } ?? batch[0]
    let sequence = TrainingSequence(
        tokens: trainTokens, targets: [(trainTokens.count - 1, tokenizer.encode("1", parseSpecial: false)[0])], choices: [])
    let pytorch = referenceTimings("training_bench.py", [gemmaPath, "\(trainTokens.count)"])["step_s"]
    var floatStep: Double?
    // The base dequantised (f32, the default) and kept in its codes (q8, q8x2).
    for base in [model, quantized, try Model(file: gemma, precision: .q8x2)] {
        let network = Network(model: base)
        var lora = LoRAWeights(config: base.config, modules: LoRAAdapter.Module.allCases, rank: 16, alpha: 32, rsLoRA: false)
        lora.initialize(seed: 1)
        var optimiser = AdamW(count: lora.values.count, weightDecay: 0.01)
        func trainStep() throws {
            var gradient = [Float](repeating: 0, count: lora.values.count)
            _ = try network.accumulateGradient(sequence, lora: lora, loss: .full, into: &gradient)
            clipGlobalNorm(&gradient, maxNorm: 1)
            optimiser.update(&lora.values, gradient: gradient, learningRate: 1e-4)
        }
        try trainStep() // in f32 the first step also dequantises the output matrix for the full-vocabulary loss
        let stepTime = try (0..<3).map { _ in try seconds { try trainStep() } }.min()!
        var note =
            pytorch.map { String(format: "   PyTorch + PEFT (float32) %.2f s: ratio %.2f", $0, $0 / stepTime) }
            ?? "   (PyTorch + PEFT not installed: no reference)"
        if let floatStep { note += String(format: "; f32 %.2f s: ratio %.2f", floatStep, floatStep / stepTime) }
        report(
            "trainer (\(base.precision.rawValue)): one step, \(trainTokens.count) tokens, r=16 on 7", stepTime,
            goal: base.precision == .f32 ? 1.0 : 0.8, note: note)
        floatStep = floatStep ?? stepTime
    }
} else {
    print("models: skipped, \(gemmaPath) is absent (make models)")
}

// A 7B-class model: Qwen2.5-7B's shapes with random Q4_0 weights
// (scripts/reference/big_model.py writes it, ~4.3 GB, once, into the models' cache),
// 256 tokens of prompt against llama.cpp on the same file and tokens.
let bigPath = modelFolder.appendingPathComponent("random-qwen2.5-7b-shape-q4_0.gguf").path
if !FileManager.default.fileExists(atPath: bigPath) { _ = referenceTimings("big_model.py", ["write", bigPath]) }
if FileManager.default.fileExists(atPath: bigPath) {
    var big: Model!
    let loadTime = try seconds { big = try Model(path: bigPath, precision: .q8) }
    report("7B shape (Q4_0, 4.3 GB): load into codes", loadTime, goal: 60, note: "   layer weights \(big.layerBytes >> 20) MiB")
    let tokens = (0..<256).map { Int32((7 * $0 + 3) % 49152) }, ids: [Int32] = [33, 34, 35, 36, 37]
    var logits: [Float] = []
    let prefillTime = try seconds { logits = big.logits(try big.forwardToFinalHidden(tokens), tokens: ids) }
    var note = String(format: "   %.1f tokens/s", Double(tokens.count) / prefillTime)
    let theirs = referenceTimings(
        "big_model.py", ["llama", bigPath, tokens.map(String.init).joined(separator: ","), ids.map(String.init).joined(separator: ",")])
    if let seconds = theirs["prefill_s"] {
        let difference = logits.indices.map { abs(Double(logits[$0]) - (theirs["logit_\($0 + 1)"] ?? .nan)) }.max()!
        note += String(
            format: "; llama.cpp %.1f tokens/s: ratio %.2f; largest logit difference %.4f", Double(tokens.count) / seconds,
            seconds / prefillTime, difference)
    }
    report("7B shape: 256-token prompt, q8", prefillTime, goal: 60, note: note)
} else {
    print("7B shape: skipped, scripts/reference/big_model.py could not write \(bigPath) (pip install gguf)")
}

// The commands, as whole processes (the release binary beside this one).
let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("suneung")
func suneung(_ arguments: [String], workspace: URL) throws -> Double {
    try seconds {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments + ["--workspace", workspace.path]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { fatalError("suneung \(arguments) failed") }
    }
}

guard FileManager.default.isExecutableFile(atPath: binary.path) else {
    print("commands: skipped, \(binary.path) is not built (swift build -c release)")
    exit(0)
}
report("suneung list --sort public, 1,000 sets", try suneung(["list", "--sort", "public"], workspace: root), goal: 0.3)
let oneMore = root.appendingPathComponent("one-more.csv").path
try predictionCSV(&random).write(toFile: oneMore, atomically: true, encoding: .utf8)
report(
    "suneung import, 869 rows with logits", try suneung(["import", oneMore, "--name", "one-more", "--dataset", testFile], workspace: root),
    goal: 0.3)

// The upload log over 20,000 recorded uploads (20 a set, public and private each).
let scoredSets = try store.summaries().prefix(1000).map { try store.predictionSet(id: $0.id) }
for round in 0..<20 {
    for set in scoredSets {
        try store.addScores(to: set, [(.public, 0.01 + Double(round) / 100, nil), (.private, 0.02 + Double(round) / 100, nil)])
    }
}
report("suneung uploads, 20,000 uploads", try suneung(["uploads"], workspace: root), goal: 0.5)

// Ensembles over 50 scored sets with logits, in a workspace of their own.
let ensembleRoot = root.appendingPathComponent("ensembles")
let ensembleStore = try Store(workspace: Workspace(root: ensembleRoot), create: true)
let ensembleDataset = try ensembleStore.dataset(file: testFile)
for index in 0..<50 {
    let table = try PredictionTable.read(bytes: try readFile(files[index]), file: files[index], dataset: ensembleDataset.shape).table
    guard
        case .created(let set) = try ensembleStore.addPredictionSet(
            name: "ckpt-\(index)", dataset: ensembleDataset, table: table, origin: .imported, lineage: lineage)
    else { continue }
    try ensembleStore.addScores(to: set, [(.public, 0.70 + Double(index % 13) / 100, nil)])
}
report(
    "suneung ensemble --top 5 (vote), 50 sets", try suneung(["ensemble", "--top", "5", "--name", "v"], workspace: ensembleRoot), goal: 0.5)
report(
    "suneung ensemble --top 5 (average, score)",
    try suneung(["ensemble", "--top", "5", "--method", "average", "--name", "a"], workspace: ensembleRoot), goal: 0.5)

// A labelled file over the same ids for selection (answers drawn at random).
let goldFile = root.appendingPathComponent("gold.csv").path
try CSV.write(
    [["id", "paragraph", "problems"]]
        + zip(shape.ids, shape.choiceCounts).map { id, n in
            [
                id, "지문",
                "{'question': 'q', 'choices': [\((1...n).map { "'\($0)'" }.joined(separator: ", "))], 'answer': \(Int.random(in: 1...n, using: &random))}"
            ]
        }
).write(toFile: goldFile, atomically: true, encoding: .utf8)
report(
    "suneung select, 50 candidates, 20 rounds", try suneung(["select", "--gold", goldFile, "--rounds", "20"], workspace: ensembleRoot),
    goal: 2)
report(
    "suneung select --method vote, same",
    try suneung(["select", "--gold", goldFile, "--rounds", "20", "--method", "vote"], workspace: ensembleRoot), goal: 2)
