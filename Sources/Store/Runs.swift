import Exam
import Foundation
import GRDB

/// An engine run in progress: the rows scored so far, committed item by item, so that
/// a killed run resumes where it stopped. Not a prediction set until it is finished.
public struct PredictionRunRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "predictionRun"

    public var id: Int64?
    /// sha256 of everything that determines the results (model, dataset, settings).
    public var key: String
    public var name: String
    public var datasetId: Int64
    public var lineage: Lineage
    public var createdAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Store {

    /// The run with this key and name, with the rows it already has (by dataset
    /// position), or a new one.
    public func startRun(key: String, name: String, dataset: DatasetRecord, lineage: Lineage) throws -> (
        run: PredictionRunRecord, done: [Int: PredictionRow]
    ) {
        try SetRef.checkName(name)
        return try write { db in
            if let run = try PredictionRunRecord.filter(Column("key") == key && Column("name") == name).fetchOne(db) {
                var done: [Int: PredictionRow] = [:]
                for row in try Row.fetchAll(
                    db, sql: "SELECT position, answer, value1, value2, value3, value4, value5 FROM predictionRunRow WHERE runId = ?",
                    arguments: [run.id])
                {
                    let position: Int = row[0]
                    done[position] = PredictionRow(
                        id: dataset.itemIds[position], answer: row[1], values: (2...6).map { row[$0] as Double? })
                }
                return (run, done)
            }
            var run = PredictionRunRecord(key: key, name: name, datasetId: dataset.id!, lineage: lineage, createdAt: Date())
            try run.insert(db)
            return (run, [:])
        }
    }

    /// The latest version of NAME that an engine run with this key produced, if any.
    public func finishedRun(key: String, name: String) throws -> PredictionSetRecord? {
        try database.read { db in
            try PredictionSetRecord.filter(Column("name") == name).order(Column("version").desc).fetchAll(db).first {
                $0.lineage.runKey == key
            }
        }
    }

    /// Items already scored by unfinished runs named NAME (a killed predict).
    public func unfinishedRows(name: String) throws -> Int {
        try database.read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM predictionRunRow JOIN predictionRun r ON r.id = runId WHERE r.name = ?", arguments: [name])!
        }
    }

    /// Replaces a run's lineage (what it learned while scoring, such as PriDe's prior).
    public func updateLineage(of run: PredictionRunRecord) throws {
        try requireWritable()
        try write { db in try run.update(db) }
    }

    /// Records one scored item of a run (its own transaction).
    public func addRunRow(_ run: PredictionRunRecord, position: Int, row: PredictionRow) throws {
        try write { db in
            var arguments: StatementArguments = [run.id, position, row.answer]
            arguments += StatementArguments(row.values)
            try db.execute(
                sql:
                    "INSERT OR REPLACE INTO predictionRunRow (runId, position, answer, value1, value2, value3, value4, value5) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: arguments)
        }
    }

    /// Turns a complete run into the prediction set NAME@vK, in one transaction, and
    /// forgets the run.
    public func finishRun(
        _ run: PredictionRunRecord, dataset: DatasetRecord, choiceValues: ChoiceValues, origin: SetOrigin, notes: SetNotes = SetNotes()
    ) throws -> AddOutcome {
        let rows = try database.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT position, answer, value1, value2, value3, value4, value5 FROM predictionRunRow WHERE runId = ? ORDER BY position",
                arguments: [run.id])
        }
        guard rows.count == dataset.itemCount else {
            throw StoreError.invalid(
                "run \(run.name) has \(rows.count) of \(dataset.itemCount) items; it cannot become a prediction set yet")
        }
        let table = PredictionTable(
            choiceValues: choiceValues,
            rows: rows.map { row in
                PredictionRow(id: dataset.itemIds[row[0]], answer: row[1], values: (2...6).map { row[$0] as Double? })
            })
        let csv = table.canonicalCSV
        let outcome = try writeWithFiles { db -> (AddOutcome, [ManagedFile]) in
            let outcome = try addPredictionSet(
                name: run.name, dataset: dataset, table: table, canonicalCSV: csv, origin: origin, lineage: run.lineage, notes: notes,
                in: db)
            _ = try PredictionRunRecord.deleteOne(db, key: run.id)
            guard case .created(let set) = outcome else { return (outcome, []) }
            return (outcome, [ManagedFile(url: workspace.predictionFile(for: set.ref), text: csv, owner: set.ref)])
        }
        if case .identical(let set) = outcome { try restoreFile(of: set) }
        return outcome
    }
}
