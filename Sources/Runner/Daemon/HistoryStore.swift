#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRDB
import Sandbox
import SystemPackage

/// One run of a job, as the history keeps it.
public struct RunRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "runs"

    /// The run's id (a job that runs again gets a new one).
    public var id: String
    /// `DS/v1/JOB` below the owner's inbox.
    public var job: String
    public var submitter: String
    public var name: String
    /// succeeded, failed, timed_out, killed, or refused (never reached the sandbox).
    public var status: String
    public var startedAt: Date
    public var finishedAt: Date
    public var wallMs: Int64?
    public var exitCode: Int?
    public var returnCode: Int?
    public var limitHit: String?
    public var stdoutBytes: Int64?
    public var stderrBytes: Int64?
    /// Why it did not run or failed outside the job (a refusal, a setup failure).
    public var reason: String?
    /// result.json's record, when the sandbox ran.
    public var record: String?

    enum CodingKeys: String, CodingKey {
        case id, job, submitter, name, status, startedAt = "started_at", finishedAt = "finished_at", wallMs = "wall_ms",
             exitCode = "exit_code", returnCode = "return_code", limitHit = "limit_hit",
             stdoutBytes = "stdout_bytes", stderrBytes = "stderr_bytes", reason, record
    }

    public init(id: String, job: String, submitter: String, name: String, status: String, startedAt: Date,
                finishedAt: Date, wallMs: Int64? = nil, exitCode: Int? = nil, returnCode: Int? = nil,
                limitHit: String? = nil, stdoutBytes: Int64? = nil, stderrBytes: Int64? = nil, reason: String? = nil,
                record: String? = nil) {
        self.id = id
        self.job = job
        self.submitter = submitter
        self.name = name
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.wallMs = wallMs
        self.exitCode = exitCode
        self.returnCode = returnCode
        self.limitHit = limitHit
        self.stdoutBytes = stdoutBytes
        self.stderrBytes = stderrBytes
        self.reason = reason
        self.record = record
    }
}

/// The daemon's history of runs: SQLite (GRDB) in the state folder,
/// `history.sqlite`, in WAL mode so readers (the API, `jobs`) never wait
/// on the writer.
public final class HistoryStore: Sendable {
    private let database: DatabasePool
    public let path: FilePath

    public init(stateDirectory: FilePath) throws {
        path = stateDirectory.appending("history.sqlite")
        do {
            database = try DatabasePool(path: path.string)
            try Self.migrator.migrate(database)
        } catch {
            throw SandboxError(.io, "cannot open the history database (\(error))", path: path.string)
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("runs") { db in
            try db.create(table: "runs") { table in
                table.primaryKey("id", .text)
                table.column("job", .text).notNull().indexed()
                table.column("submitter", .text).notNull()
                table.column("name", .text).notNull()
                table.column("status", .text).notNull().indexed()
                table.column("started_at", .datetime).notNull()
                table.column("finished_at", .datetime).notNull().indexed()
                table.column("wall_ms", .integer)
                table.column("exit_code", .integer)
                table.column("return_code", .integer)
                table.column("limit_hit", .text)
                table.column("stdout_bytes", .integer)
                table.column("stderr_bytes", .integer)
                table.column("reason", .text)
                table.column("record", .text)
            }
        }
        return migrator
    }

    public func insert(_ run: RunRecord) throws {
        try database.write { db in try run.insert(db) }
    }

    /// Newest first; `status` filters, `query` searches job names and submitters.
    public func runs(status: String? = nil, query: String? = nil, limit: Int = 50, offset: Int = 0) throws -> [RunRecord] {
        try database.read { db in
            var request = RunRecord.all()
            if let status { request = request.filter(Column("status") == status) }
            if let query, !query.isEmpty {
                let pattern = "%\(query)%"
                request = request.filter(Column("name").like(pattern) || Column("submitter").like(pattern)
                                         || Column("job").like(pattern))
            }
            return try request.order(Column("finished_at").desc).limit(limit, offset: offset).fetchAll(db)
        }
    }

    public func count() throws -> Int {
        try database.read { db in try RunRecord.fetchCount(db) }
    }

    /// Removes runs that finished before `date`; returns how many.
    @discardableResult
    public func prune(finishedBefore date: Date) throws -> Int {
        try database.write { db in try RunRecord.filter(Column("finished_at") < date).deleteAll(db) }
    }
}
