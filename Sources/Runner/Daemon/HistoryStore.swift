#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRDB
import Synchronization
import Sandbox
import SystemPackage

/// One run of a job, as the history keeps it.
public struct RunRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "runs"

    /// The run's id (a job that runs again gets a new one).
    public var id: String
    /// The job's id in the HTTP API (`JobID`): stable across its runs.
    public var jobID: String
    /// Where the job came from: `syftbox` (the owner's inbox) or `api` (`POST /jobs`).
    public var source: String
    /// `DS/v1/JOB` below the owner's inbox; `api/ID` for a job submitted through the API.
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
        case id, jobID = "job_id", source, job, submitter, name, status, startedAt = "started_at", finishedAt = "finished_at", wallMs = "wall_ms",
             exitCode = "exit_code", returnCode = "return_code", limitHit = "limit_hit",
             stdoutBytes = "stdout_bytes", stderrBytes = "stderr_bytes", reason, record
    }

    public init(id: String, jobID: String? = nil, source: String = "syftbox", job: String, submitter: String,
                name: String, status: String, startedAt: Date,
                finishedAt: Date, wallMs: Int64? = nil, exitCode: Int? = nil, returnCode: Int? = nil,
                limitHit: String? = nil, stdoutBytes: Int64? = nil, stderrBytes: Int64? = nil, reason: String? = nil,
                record: String? = nil) {
        self.id = id
        self.jobID = jobID ?? JobID.syftBox(relativePath: job).rawValue
        self.source = source
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
/// on the writer. Each run's logs are kept beside it, in `runs/RUN/`.
public final class HistoryStore: Sendable {
    let database: DatabasePool
    public let path: FilePath
    /// `runs/` in the state folder: one folder of logs (and, for API jobs, results) per run.
    public let runsFolder: FilePath
    /// Bumped by every write of this process: cached answers (the API's pages and stats) know when they are stale.
    let generation = Mutex<UInt64>(0)

    public init(stateDirectory: FilePath) throws {
        path = stateDirectory.appending("history.sqlite")
        runsFolder = stateDirectory.appending("runs")
        do {
            database = try DatabasePool(path: path.string)
            try Self.migrator.migrate(database)
        } catch {
            throw SandboxError(.io, "cannot open the history database (\(error))", path: path.string,
                               hint: "move it aside to start a new history")
        }
        try FileSystem.makeDirectories(runsFolder, mode: 0o700)
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
        // The HTTP API: a job's id and source; indexes for its sort orders.
        migrator.registerMigration("runs-job-id") { db in
            try db.alter(table: "runs") { table in
                table.add(column: "job_id", .text).notNull().defaults(to: "")
                table.add(column: "source", .text).notNull().defaults(to: "syftbox")
            }
            let jobs = try String.fetchAll(db, sql: "SELECT DISTINCT job FROM runs")
            for job in jobs {
                try db.execute(sql: "UPDATE runs SET job_id = ? WHERE job = ?",
                               arguments: [JobID.syftBox(relativePath: job).rawValue, job])
            }
            try db.create(index: "runs_job_id", on: "runs", columns: ["job_id", "finished_at"])
            try db.create(index: "runs_started_at", on: "runs", columns: ["started_at"])
            try db.create(index: "runs_wall_ms", on: "runs", columns: ["wall_ms"])
            try db.create(index: "runs_name", on: "runs", columns: ["name"])
        }
        return migrator
    }

    public func insert(_ run: RunRecord) throws {
        try database.write { db in try run.insert(db) }
        generation.withLock { $0 &+= 1 }
    }

    /// Newest first; `status` filters, `query` searches job names and submitters.
    public func runs(status: String? = nil, query: String? = nil, limit: Int = 50, offset: Int = 0) throws -> [RunRecord] {
        try database.read { db in
            try HistoryQuery(status: status, text: query).request().order(Column("finished_at").desc)
                .limit(limit, offset: offset).fetchAll(db)
        }
    }

    public func count() throws -> Int {
        try database.read { db in try RunRecord.fetchCount(db) }
    }

    /// Removes runs that finished before `date`, and their logs; returns how many.
    @discardableResult
    public func prune(finishedBefore date: Date) throws -> Int {
        let removed = try database.write { db in
            let ids = try String.fetchAll(db, RunRecord.select(Column("id")).filter(Column("finished_at") < date))
            try RunRecord.filter(Column("finished_at") < date).deleteAll(db)
            return ids
        }
        generation.withLock { $0 &+= 1 }
        for id in removed { removeLogs(ofRun: id) }
        return removed.count
    }

    /// Changes with every write of this process (answers cached with an older one are stale).
    public var currentGeneration: UInt64 { generation.withLock { $0 } }

    /// The folder of a run's logs (API jobs: its whole results folder).
    public func folder(ofRun id: String) -> FilePath? {
        guard RunID.isValid(id) else { return nil }
        return runsFolder.appending(id)
    }

    private func removeLogs(ofRun id: String) {
        guard let folder = folder(ofRun: id) else { return }
        try? ArtifactCollector.removeTree(folder)
    }
}
