import Exam
import Foundation
import Store

/// One prediction file to import and what to record with it.
public struct ImportRequest: Sendable {
    /// The file, or what to call the bytes in messages.
    public var file: String
    public var name: String
    /// The file's content when it did not come from a file (an upload to the server).
    public var bytes: [UInt8]?

    public init(file: String, name: String, bytes: [UInt8]? = nil) {
        self.file = file
        self.name = name
        self.bytes = bytes
    }

    /// A set name from a file name: `runs/qwen ep2 (final).csv` -> `qwen-ep2-final`.
    public static func name(fromFile path: String) -> String {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var name = String(
            stem.unicodeScalars.map {
                $0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) ? Character($0) : "-"
            })
        while name.contains("--") { name = name.replacingOccurrences(of: "--", with: "-") }
        name = String(name.drop { $0 == "-" || $0 == "." })
        while name.hasSuffix("-") { name.removeLast() }
        return String(name.prefix(SetRef.maxNameLength))
    }
}

/// What became of one imported file.
public struct ImportReport: Sendable {
    public var request: ImportRequest
    public var outcome: Store.AddOutcome
    public var reading: PredictionFileReading
    public var dataset: DatasetRecord
    /// Other names' versions with the same answers and values.
    public var sameContent: [PredictionSetRecord]
}

/// Imports prediction files against one dataset: every file is read and checked
/// first, so that one bad file imports none of them and the store is unchanged.
public func importPredictions(
    _ requests: [ImportRequest], datasetFile: String, options: PredictionFileOptions, notes: Store.SetNotes, lineage: Lineage, store: Store
) throws -> [ImportReport] {
    try importPredictions(
        requests, shape: DatasetShape(try ExamSet.load(path: datasetFile)), dataset: { try store.dataset(file: datasetFile) },
        options: options, notes: notes, lineage: lineage, store: store)
}

/// The same against a dataset the store has (the server's uploads name it by digest).
public func importPredictions(
    _ requests: [ImportRequest], dataset: DatasetRecord, options: PredictionFileOptions, notes: Store.SetNotes, lineage: Lineage,
    store: Store
) throws -> [ImportReport] {
    try importPredictions(
        requests, shape: dataset.shape, dataset: { dataset }, options: options, notes: notes, lineage: lineage, store: store)
}

func importPredictions(
    _ requests: [ImportRequest], shape: DatasetShape, dataset registered: () throws -> DatasetRecord, options: PredictionFileOptions,
    notes: Store.SetNotes, lineage: Lineage, store: Store
) throws -> [ImportReport] {
    var names: Set<String> = []
    for request in requests {
        try SetRef.checkName(request.name)
        guard names.insert(request.name).inserted else {
            throw StoreError.invalid("two files would be imported as \(request.name): name them apart")
        }
        try store.checkNameTakes(request.name, origin: .imported)
    }
    for tag in notes.tags { try SetRef.checkName(tag, what: "tag") }
    var problems: [String] = []
    var readings: [(bytes: [UInt8], reading: PredictionFileReading)] = []
    for request in requests {
        do {
            let bytes = try request.bytes ?? readFile(request.file)
            readings.append((bytes, try PredictionTable.read(bytes: bytes, file: request.file, dataset: shape, options: options)))
        } catch {
            problems.append("\(error)")
        }
    }
    guard problems.isEmpty else { throw ImportRefused(problems: problems, files: requests.count) }
    let dataset = try registered()
    return try zip(requests, readings).map { request, read in
        var setLineage = lineage
        setLineage.sourceFile = request.bytes == nil ? store.workspace.relative(URL(fileURLWithPath: request.file)) : request.file
        setLineage.sourceSha256 = sha256Hex(read.bytes)
        setLineage.datasetPath = dataset.path
        if options.invalidAnswers == .asWrong {
            setLineage.invalidAnswerRule = options.invalidAnswers.rawValue
            setLineage.invalidAnswers = read.reading.invalidAnswers
        }
        if read.reading.table.choiceValues != nil { setLineage.answerArgmaxDisagreements = read.reading.argmaxDisagreements }
        let outcome = try store.addPredictionSet(
            name: request.name, dataset: dataset, table: read.reading.table, origin: .imported, lineage: setLineage, notes: notes)
        return ImportReport(
            request: request, outcome: outcome, reading: read.reading, dataset: dataset, sameContent: try store.sameContent(as: outcome.set)
        )
    }
}

/// Every problem of every file of a refused import.
public struct ImportRefused: Error, CustomStringConvertible {
    public var problems: [String]
    public var files: Int

    public var description: String {
        (problems + [files > 1 ? "Nothing was imported (\(problems.count) of \(files) files refused)." : "Nothing was imported."]).joined(
            separator: "\n")
    }
}

/// Who a command records as the author: `git config user.name`, else $USER.
public func defaultAuthor() -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "config", "user.name"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    if (try? process.run()) != nil {
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let name = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if process.terminationStatus == 0 && !name.isEmpty { return name }
    }
    return ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
}
