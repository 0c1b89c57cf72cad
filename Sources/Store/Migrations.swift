import Exam
import Foundation
import GRDB

// The store's schema, oldest first, in one place. A released migration never changes:
// a new schema is a new migration at the end. Migrations read and write the columns of
// their own time in SQL and decode rows themselves, never through the application's
// records (GRDB's guide: those follow today's schema, a migration must not). They do
// call the identity functions of the data (the sha256 of a set's submission CSV, a
// dataset's content digest, the answer counts): the values they fill in must equal
// what today's code computes and compares them with.
extension Store {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 datasets, prediction sets, scores") { db in
            try db.create(table: "dataset") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("sha256", .text).notNull().unique()
                t.column("itemIds", .text).notNull()
                t.column("choiceCounts", .text).notNull()
                t.column("itemCount", .integer).notNull()
                t.column("path", .text)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "predictionSet") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull().check { $0 >= 1 }
                t.column("datasetId", .integer).notNull().references("dataset")
                t.column("origin", .text).notNull().check { ["imported", "engine", "ensemble"].contains($0) }
                t.column("choiceValues", .text).check { $0 == nil || ["logits", "probabilities"].contains($0) }
                t.column("lineage", .text).notNull()
                t.column("csvSha256", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.uniqueKey(["name", "version"])
            }
            // One row per item; value1..value5 are logits or probabilities, as the
            // set's choiceValues says, and NULL past an item's choices.
            try db.create(table: "predictionRow", options: .withoutRowID) { t in
                t.column("setId", .integer).notNull().references("predictionSet", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("itemId", .text).notNull()
                t.column("answer", .integer).notNull().check { $0 >= 1 && $0 <= 5 }
                for choice in 1...PredictionRow.maxChoices { t.column("value\(choice)", .double) }
                t.primaryKey(["setId", "position"])
            }
            try db.create(table: "score") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("setId", .integer).notNull().references("predictionSet", onDelete: .cascade)
                t.column("kind", .text).notNull().check { ["public", "private", "local"].contains($0) }
                t.column("value", .double).notNull().check { $0 >= 0 && $0 <= 1 }
                t.column("note", .text)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(index: "scoreBySet", on: "score", columns: ["setId", "kind", "id"])
        }
        migrator.registerMigration("v2 submissions") { db in
            try db.create(table: "submission") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("setId", .integer).notNull().unique().references("predictionSet", onDelete: .cascade)
                t.column("method", .text).notNull()
                t.column("weightScheme", .text).notNull()
                t.column("tieRule", .text).notNull()
                t.column("csvSha256", .text).notNull()
                t.column("path", .text).notNull()
                t.column("commandLine", .text).notNull()
                t.column("toolVersion", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "submissionMember", options: .withoutRowID) { t in
                t.column("submissionId", .integer).notNull().references("submission", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("memberSetId", .integer).notNull().references("predictionSet")
                t.column("weight", .double).notNull().check { $0 >= 0 }
                t.column("publicScore", .double)
                t.primaryKey(["submissionId", "position"])
            }
        }
        migrator.registerMigration("v3 engine runs") { db in
            try db.create(table: "predictionRun") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("key", .text).notNull()
                t.column("name", .text).notNull()
                t.column("datasetId", .integer).notNull().references("dataset")
                t.column("lineage", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.uniqueKey(["key", "name"])
            }
            try db.create(table: "predictionRunRow", options: .withoutRowID) { t in
                t.column("runId", .integer).notNull().references("predictionRun", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("answer", .integer).notNull()
                for choice in 1...PredictionRow.maxChoices { t.column("value\(choice)", .double) }
                t.primaryKey(["runId", "position"])
            }
        }
        migrator.registerMigration("v4 training runs and checkpoints") { db in
            try db.create(table: "trainingRun") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("config", .text).notNull()
                t.column("model", .text).notNull()
                t.column("modelSha256", .text).notNull()
                t.column("trainSha256", .text).notNull()
                t.column("validationSha256", .text)
                t.column("totalSteps", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "trainingLog", options: .withoutRowID) { t in
                t.column("runId", .integer).notNull().references("trainingRun", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("epoch", .double).notNull()
                t.column("loss", .double).notNull()
                t.column("learningRate", .double).notNull()
                t.column("gradientNorm", .double).notNull()
                t.column("tokens", .integer).notNull()
                t.column("seconds", .double).notNull()
                t.primaryKey(["runId", "step"])
            }
            try db.create(table: "trainingEvaluation", options: .withoutRowID) { t in
                t.column("runId", .integer).notNull().references("trainingRun", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("loss", .double).notNull()
                t.column("accuracy", .double).notNull()
                t.column("items", .integer).notNull()
                t.primaryKey(["runId", "step"])
            }
            try db.create(table: "checkpoint") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runId", .integer).notNull().references("trainingRun", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("epoch", .double).notNull()
                t.column("path", .text).notNull()
                t.column("adapterSha256", .text).notNull()
                t.column("trainLoss", .double)
                t.column("validationLoss", .double)
                t.column("validationAccuracy", .double)
                t.column("createdAt", .datetime).notNull()
                t.uniqueKey(["runId", "step"])
            }
        }
        migrator.registerMigration("v5 pipelines") { db in
            try db.create(table: "pipeline") { t in
                t.primaryKey("name", .text)
                t.column("config", .text).notNull()
                t.column("trainingRun", .text)
                t.column("members", .text).notNull()
                t.column("chosen", .text).notNull()
                t.column("ensembles", .text).notNull()
                t.column("gold", .text)
                t.column("updatedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v6 ledger: content identity, authors, tags, uploads, invalid answers") { db in
            try db.alter(table: "dataset") { t in t.add(column: "contentSha256", .text) }
            try db.create(index: "datasetByContent", on: "dataset", columns: ["contentSha256"], options: .unique)
            try db.alter(table: "predictionSet") { t in
                t.add(column: "answersSha256", .text)
                t.add(column: "csvBytes", .integer)
                t.add(column: "itemCount", .integer)
                t.add(column: "invalidAnswers", .integer).notNull().defaults(to: 0)
                t.add(column: "author", .text)
                t.add(column: "note", .text)
                t.add(column: "hidden", .boolean).notNull().defaults(to: false)
            }
            try db.create(index: "setByContent", on: "predictionSet", columns: ["datasetId", "csvSha256"])
            // An answer kept verbatim (not one of the item's choices) has no number.
            try db.create(table: "predictionRowNew", options: .withoutRowID) { t in
                t.column("setId", .integer).notNull().references("predictionSet", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("itemId", .text).notNull()
                t.column("answer", .integer).check(sql: "answer IS NULL OR answer BETWEEN 1 AND 5")
                t.column("invalidAnswer", .text)
                for choice in 1...PredictionRow.maxChoices { t.column("value\(choice)", .double) }
                t.primaryKey(["setId", "position"])
                t.check(sql: "(answer IS NULL) <> (invalidAnswer IS NULL)")
            }
            let values = (1...PredictionRow.maxChoices).map { "value\($0)" }.joined(separator: ", ")
            try db.execute(
                sql:
                    "INSERT INTO predictionRowNew (setId, position, itemId, answer, \(values)) SELECT setId, position, itemId, answer, \(values) FROM predictionRow"
            )
            try db.drop(table: "predictionRow")
            try db.rename(table: "predictionRowNew", to: "predictionRow")
            try db.create(table: "tag", options: .withoutRowID) { t in
                t.column("setId", .integer).notNull().references("predictionSet", onDelete: .cascade)
                t.column("tag", .text).notNull()
                t.primaryKey(["setId", "tag"])
            }
            try db.create(table: "upload") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("setId", .integer).notNull().references("predictionSet", onDelete: .cascade)
                t.column("note", .text)
                t.column("author", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("retractedAt", .datetime)
            }
            try db.alter(table: "score") { t in
                t.add(column: "uploadId", .integer).references("upload")
                t.add(column: "author", .text)
                t.add(column: "retractedAt", .datetime)
            }
            // What the earlier schema left implicit, filled in from what it kept.
            for set in try Row.fetchAll(db, sql: "SELECT id, choiceValues FROM predictionSet") {
                let table = try rows(ofSet: set[0], choiceValues: set[1], in: db)
                try db.execute(
                    sql: "UPDATE predictionSet SET answersSha256 = ?, csvBytes = ?, itemCount = ? WHERE id = ?",
                    arguments: [sha256Hex(table.submissionCSV.utf8), table.canonicalCSV.utf8.count, table.rows.count, set[0] as Int64])
            }
            // Every recorded public/private score was an upload, but the pipeline's simulated ones.
            for row in try Row.fetchAll(
                db,
                sql:
                    "SELECT setId, createdAt, MIN(note) FROM score WHERE kind IN ('public', 'private') AND (note IS NULL OR note NOT LIKE 'simulated leaderboard%') GROUP BY setId, createdAt ORDER BY MIN(id)"
            ) {
                try db.execute(
                    sql: "INSERT INTO upload (setId, note, author, createdAt) VALUES (?, ?, NULL, ?)",
                    arguments: [row[0] as DatabaseValue, row[2] as DatabaseValue, row[1] as DatabaseValue])
                try db.execute(
                    sql: "UPDATE score SET uploadId = ? WHERE setId = ? AND createdAt = ? AND kind IN ('public', 'private')",
                    arguments: [db.lastInsertedRowID, row[0] as DatabaseValue, row[1] as DatabaseValue])
            }
            for dataset in try Row.fetchAll(db, sql: "SELECT id, sha256, path FROM dataset") {
                guard let path: String = dataset[2], let bytes = try? readFile(path), sha256Hex(bytes) == dataset[1] else { continue }
                let parsed = ExamSet.parse(bytes: bytes, file: path)
                guard parsed.problems.isEmpty else { continue }
                let content = contentDigest(of: parsed.items)
                let taken = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dataset WHERE contentSha256 = ?", arguments: [content]) ?? 0
                guard taken == 0 else { continue }
                try db.execute(sql: "UPDATE dataset SET contentSha256 = ? WHERE id = ?", arguments: [content, dataset[0] as Int64])
            }
        }
        migrator.registerMigration("v7 answer counts per position") { db in
            try db.alter(table: "predictionSet") { t in t.add(column: "answerCounts", .text) }
            for set in try Row.fetchAll(db, sql: "SELECT id, datasetId, choiceValues FROM predictionSet") {
                guard
                    let dataset = try Row.fetchOne(
                        db, sql: "SELECT itemIds, choiceCounts FROM dataset WHERE id = ?", arguments: [set[1] as Int64])
                else { continue }
                let itemIds = try JSONDecoder().decode([String].self, from: Data((dataset[0] as String).utf8))
                let choiceCounts = try JSONDecoder().decode([Int].self, from: Data((dataset[1] as String).utf8))
                let table = try rows(ofSet: set[0], choiceValues: set[2], in: db)
                try db.execute(
                    sql: "UPDATE predictionSet SET answerCounts = ? WHERE id = ?",
                    arguments: [AnswerCounts(table, itemIds: itemIds, choiceCounts: choiceCounts), set[0] as Int64])
            }
        }
        migrator.registerMigration("v8 server tokens") { db in
            try db.create(table: "token") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("role", .text).notNull().check { ["read", "write"].contains($0) }
                t.column("sha256", .text).notNull().unique()
                t.column("createdAt", .datetime).notNull()
                t.column("revokedAt", .datetime)
            }
        }
        migrator.registerMigration("v9 scores by upload") { db in
            // The upload log finds each upload's scores: without it, every listing of
            // uploads scanned the whole score table once per upload.
            try db.execute(sql: "CREATE INDEX scoreByUpload ON score(uploadId, kind, id)")
        }
        return migrator
    }

    /// A set's rows as v6 and v7 stored them (answer NULL where kept verbatim).
    private static func rows(ofSet id: Int64, choiceValues: String?, in db: Database) throws -> PredictionTable {
        let rows = try Row.fetchAll(
            db,
            sql:
                "SELECT itemId, answer, value1, value2, value3, value4, value5, invalidAnswer FROM predictionRow WHERE setId = ? ORDER BY position",
            arguments: [id])
        return PredictionTable(
            choiceValues: choiceValues.flatMap(ChoiceValues.init(rawValue:)),
            rows: rows.map { row in
                PredictionRow(id: row[0], answer: (row[1] as Int?) ?? 0, values: (2...6).map { row[$0] as Double? }, invalidAnswer: row[7])
            })
    }
}
