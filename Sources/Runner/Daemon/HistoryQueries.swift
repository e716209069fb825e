#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRDB

/// A filter and an order over the history (the API's `status`, `q`, `sort`, `order`).
public struct HistoryQuery: Sendable, Hashable {
    public enum Sort: String, Sendable, CaseIterable {
        case finishedAt = "finished_at", startedAt = "started_at", duration, name, status, submitter
    }

    public var status: String?
    /// Searched in job names, submitters and paths (case-insensitive).
    public var text: String?
    public var source: String?
    public var jobID: String?
    public var sort: Sort = .finishedAt
    public var ascending = false

    public init(status: String? = nil, text: String? = nil, source: String? = nil, jobID: String? = nil) {
        self.status = status
        self.text = text
        self.source = source
        self.jobID = jobID
    }

    func request() -> QueryInterfaceRequest<RunRecord> {
        var request = RunRecord.all()
        if let status, !status.isEmpty { request = request.filter(Column("status") == status) }
        if let source, !source.isEmpty { request = request.filter(Column("source") == source) }
        if let jobID { request = request.filter(Column("job_id") == jobID) }
        if let text, !text.isEmpty {
            // LIKE's own wildcards in the search text are matched literally.
            let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            let pattern = "%\(escaped)%"
            request = request.filter(sql: "(name LIKE ? ESCAPE '\\' OR submitter LIKE ? ESCAPE '\\' OR job LIKE ? ESCAPE '\\')",
                                     arguments: [pattern, pattern, pattern])
        }
        return request
    }

    func ordered(_ request: QueryInterfaceRequest<RunRecord>) -> QueryInterfaceRequest<RunRecord> {
        let column: Column
        switch sort {
        case .finishedAt: column = Column("finished_at")
        case .startedAt: column = Column("started_at")
        case .duration: column = Column("wall_ms")
        case .name: column = Column("name")
        case .status: column = Column("status")
        case .submitter: column = Column("submitter")
        }
        // The id breaks ties, so paging never shows a run twice.
        return ascending ? request.order(column.asc, Column("id").asc) : request.order(column.desc, Column("id").desc)
    }
}

/// One page of the history and how many runs match in all.
public struct HistoryPage: Sendable {
    public var runs: [RunRecord]
    public var total: Int
}

/// What the history says in sum (`GET /api/v1/jobs/stats`).
public struct HistoryStats: Sendable, Hashable {
    public struct Bucket: Sendable, Hashable {
        public var start: Date
        public var counts: [String: Int]
    }

    public var total: Int
    public var byStatus: [String: Int]
    /// succeeded / all runs (nil without runs).
    public var successRate: Double?
    public var medianMs: Int64?
    public var p95Ms: Int64?
    /// Runs per status over the last 24 hours, an hour a bucket, oldest first.
    public var timeline: [Bucket]
    public static let bucketSeconds = 3600
    public static let bucketCount = 24
}

extension HistoryStore {
    /// A page of runs without their full records (listings stay small).
    public func page(_ query: HistoryQuery, limit: Int, offset: Int) async throws -> HistoryPage {
        try await database.read { db in
            let filtered = query.request()
            let total = try filtered.fetchCount(db)
            let runs = try query.ordered(filtered).select(RunRecord.summaryColumns).limit(limit, offset: offset)
                .fetchAll(db)
            return HistoryPage(runs: runs, total: total)
        }
    }

    /// One run, with its record.
    public func run(id: String) async throws -> RunRecord? {
        try await database.read { db in try RunRecord.fetchOne(db, key: id) }
    }

    /// A job's runs, newest first, without their records.
    public func runs(ofJob id: JobID, limit: Int = 20) async throws -> [RunRecord] {
        try await database.read { db in
            try RunRecord.filter(Column("job_id") == id.rawValue).select(RunRecord.summaryColumns)
                .order(Column("finished_at").desc, Column("id").desc).limit(limit).fetchAll(db)
        }
    }

    /// The stats now (the API caches its answer per history generation).
    public func stats() async throws -> HistoryStats {
        let now = Date()
        return try await database.read { db in try Self.computeStats(db, now: now) }
    }

    static func computeStats(_ db: Database, now: Date) throws -> HistoryStats {
        var byStatus: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) FROM runs GROUP BY status") {
            byStatus[row[0]] = row[1]
        }
        let total = byStatus.values.reduce(0, +)
        let timed = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM runs WHERE wall_ms IS NOT NULL") ?? 0
        func percentile(_ fraction: Double) throws -> Int64? {
            guard timed > 0 else { return nil }
            let offset = min(timed - 1, Int((Double(timed - 1) * fraction).rounded()))
            return try Int64.fetchOne(db, sql: "SELECT wall_ms FROM runs WHERE wall_ms IS NOT NULL ORDER BY wall_ms LIMIT 1 OFFSET ?",
                                      arguments: [offset])
        }
        let bucket = HistoryStats.bucketSeconds
        let lastBucket = Int(now.timeIntervalSince1970) / bucket
        let firstBucket = lastBucket - HistoryStats.bucketCount + 1
        var counts = [[String: Int]](repeating: [:], count: HistoryStats.bucketCount)
        let rows = try Row.fetchAll(db, sql: """
            SELECT CAST(strftime('%s', finished_at) AS INTEGER) / ? AS bucket, status, COUNT(*) FROM runs
            WHERE finished_at >= ? GROUP BY bucket, status
            """, arguments: [bucket, Date(timeIntervalSince1970: Double(firstBucket * bucket))])
        for row in rows {
            let index = (row[0] as Int) - firstBucket
            guard counts.indices.contains(index) else { continue }
            counts[index][row[1]] = row[2]
        }
        return HistoryStats(
            total: total, byStatus: byStatus,
            successRate: total == 0 ? nil : Double(byStatus["succeeded"] ?? 0) / Double(total),
            medianMs: try percentile(0.5), p95Ms: try percentile(0.95),
            timeline: counts.enumerated().map { index, counts in
                HistoryStats.Bucket(start: Date(timeIntervalSince1970: Double((firstBucket + index) * bucket)), counts: counts)
            })
    }
}

extension RunRecord {
    /// Every column but the full record.
    nonisolated(unsafe) static let summaryColumns: [any SQLSelectable] = [
        "id", "job_id", "source", "job", "submitter", "name", "status", "started_at", "finished_at", "wall_ms",
        "exit_code", "return_code", "limit_hit", "stdout_bytes", "stderr_bytes", "reason",
    ].map { Column($0) }
}
