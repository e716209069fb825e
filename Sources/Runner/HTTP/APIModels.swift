#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// JSON bodies: snake_case keys, ISO 8601 times, `null` for what is unknown
/// (never a missing key), as `/openapi.json` describes them.
enum JSONBody {
    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok,
                                       headers: HTTPFields = [:]) throws -> Response {
        response(bytes: ByteBuffer(bytes: try encode(value)), status: status, headers: headers)
    }

    static func response(bytes: ByteBuffer, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: bytes))
    }

    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        // UTC to the second, `2026-11-30T20:45:29Z`, without a Calendar per date.
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.iso8601UTC)
        }
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

/// Encoded answers that stay true until the history changes (a page of
/// runs, the stats): a dashboard's polling and a burst of clients cost a
/// lookup, not a query and an encoding each.
final class ResponseCache: Sendable {
    private let entries = Mutex<[String: (generation: UInt64, bornAt: ContinuousClock.Instant, bytes: ByteBuffer)]>([:])
    private let capacity: Int
    private let maxAge: Duration

    init(capacity: Int = 256, maxAge: Duration = .seconds(60)) {
        self.capacity = capacity
        self.maxAge = maxAge
    }

    func bytes(for key: String, generation: UInt64, make: () async throws -> ByteBuffer) async rethrows -> ByteBuffer {
        if let entry = entries.withLock({ $0[key] }), entry.generation == generation,
           entry.bornAt.duration(to: .now) < maxAge {
            return entry.bytes
        }
        let bytes = try await make()
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (generation, .now, bytes)
        }
        return bytes
    }
}

/// A run of the history (`RunSummary` in the OpenAPI document); `result`,
/// the full record, is not encoded here (a job's page carries its last one).
struct RunJSON: Encodable {
    var run: RunRecord
    var result: ResultRecord?

    enum CodingKeys: String, CodingKey {
        case id, jobID = "job_id", source, job, submitter, name, status, startedAt = "started_at",
             finishedAt = "finished_at", durationMs = "duration_ms", exitCode = "exit_code", returnCode = "return_code",
             limitHit = "limit_hit", stdoutBytes = "stdout_bytes", stderrBytes = "stderr_bytes", reason
    }

    init(_ run: RunRecord, withResult: Bool = false) {
        self.run = run
        result = withResult ? run.record.flatMap { try? JSONDecoder().decode(ResultRecord.self, from: Data($0.utf8)) } : nil
    }

    func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(run.id, forKey: .id)
        try values.encode(run.jobID, forKey: .jobID)
        try values.encode(run.source, forKey: .source)
        try values.encode(run.job, forKey: .job)
        try values.encode(run.submitter, forKey: .submitter)
        try values.encode(run.name, forKey: .name)
        try values.encode(run.status, forKey: .status)
        try values.encode(run.startedAt, forKey: .startedAt)
        try values.encode(run.finishedAt, forKey: .finishedAt)
        try values.encode(run.wallMs, forKey: .durationMs)
        try values.encode(run.exitCode, forKey: .exitCode)
        try values.encode(run.returnCode, forKey: .returnCode)
        try values.encode(run.limitHit, forKey: .limitHit)
        try values.encode(run.stdoutBytes, forKey: .stdoutBytes)
        try values.encode(run.stderrBytes, forKey: .stderrBytes)
        try values.encode(run.reason, forKey: .reason)
    }
}

struct HistoryPageJSON: Encodable {
    var runs: [RunJSON]
    var total: Int
    var limit: Int
    var offset: Int
}

struct StatsJSON: Encodable {
    struct Durations: Encodable {
        var median: Int64?
        var p95: Int64?

        func encode(to encoder: any Encoder) throws {
            var values = encoder.container(keyedBy: CodingKeys.self)
            try values.encode(median, forKey: .median)
            try values.encode(p95, forKey: .p95)
        }

        enum CodingKeys: String, CodingKey { case median, p95 }
    }

    struct Bucket: Encodable {
        var start: Date
        var counts: [String: Int]
    }

    struct Timeline: Encodable {
        var bucketSeconds: Int
        var buckets: [Bucket]
        enum CodingKeys: String, CodingKey { case bucketSeconds = "bucket_seconds", buckets }
    }

    var total: Int
    var byStatus: [String: Int]
    var successRate: Double?
    var durationMs: Durations
    var timeline: Timeline

    enum CodingKeys: String, CodingKey {
        case total, byStatus = "by_status", successRate = "success_rate", durationMs = "duration_ms", timeline
    }

    init(_ stats: HistoryStats) {
        total = stats.total
        byStatus = stats.byStatus
        successRate = stats.successRate
        durationMs = Durations(median: stats.medianMs, p95: stats.p95Ms)
        timeline = Timeline(bucketSeconds: HistoryStats.bucketSeconds,
                            buckets: stats.timeline.map { Bucket(start: $0.start, counts: $0.counts) })
    }

    func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(total, forKey: .total)
        try values.encode(byStatus, forKey: .byStatus)
        try values.encode(successRate, forKey: .successRate)
        try values.encode(durationMs, forKey: .durationMs)
        try values.encode(timeline, forKey: .timeline)
    }
}

struct RunLogsJSON: Encodable {
    var id: String
    var jobID: String
    var stdout: String
    var stderr: String
    var stdoutBytes: Int
    var stderrBytes: Int

    enum CodingKeys: String, CodingKey {
        case id, jobID = "job_id", stdout, stderr, stdoutBytes = "stdout_bytes", stderrBytes = "stderr_bytes"
    }
}

struct ArtifactJSON: Encodable, Hashable {
    var path: String
    var size: Int64
}

/// A job, SyftBox or API (`Job` in the OpenAPI document).
struct JobJSON: Encodable {
    var id: String
    var source: String
    var name: String
    var submitter: String
    /// `DS/v1/JOB` below the owner's inbox (SyftBox jobs).
    var path: String?
    var status: String
    var createdAt: String?
    var startedAt: Date?
    var finishedAt: Date?
    var exitCode: Int?
    var returnCode: Int?
    var limitHit: String?
    var error: String?
    var spec: APIJobSpec?
    var config: SubmissionConfigJSON?
    var state: StateJSON?
    var fingerprint: String?
    var artifacts: [ArtifactJSON]
    var runs: [RunJSON]
    var result: ResultRecord?
    var actions: [String]
    var live: Bool
    /// The run going on now (its timings above are its own; `result` is the last finished run's).
    var currentRun: String?

    enum CodingKeys: String, CodingKey {
        case id, source, name, submitter, path, status, createdAt = "created_at", startedAt = "started_at",
             finishedAt = "finished_at", exitCode = "exit_code", returnCode = "return_code", limitHit = "limit_hit",
             error, spec, config, state, fingerprint, artifacts, runs, result, actions, live, currentRun = "current_run"
    }

    func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(id, forKey: .id)
        try values.encode(source, forKey: .source)
        try values.encode(name, forKey: .name)
        try values.encode(submitter, forKey: .submitter)
        try values.encode(path, forKey: .path)
        try values.encode(status, forKey: .status)
        try values.encode(createdAt, forKey: .createdAt)
        try values.encode(startedAt, forKey: .startedAt)
        try values.encode(finishedAt, forKey: .finishedAt)
        try values.encode(exitCode, forKey: .exitCode)
        try values.encode(returnCode, forKey: .returnCode)
        try values.encode(limitHit, forKey: .limitHit)
        try values.encode(error, forKey: .error)
        try values.encode(spec, forKey: .spec)
        try values.encode(config, forKey: .config)
        try values.encode(state, forKey: .state)
        try values.encode(fingerprint, forKey: .fingerprint)
        try values.encode(artifacts, forKey: .artifacts)
        try values.encode(runs, forKey: .runs)
        try values.encode(result, forKey: .result)
        try values.encode(actions, forKey: .actions)
        try values.encode(live, forKey: .live)
        try values.encode(currentRun, forKey: .currentRun)
    }
}

/// config.yaml of a SyftBox submission, as far as the dashboard shows it.
struct SubmissionConfigJSON: Encodable {
    var name: String?
    var type: String
    var submittedAt: String?
    var entrypoint: String?
    var dependencies: [String]
    var files: [String]
    var jobType: String
    var datasets: [String: [String]]?
    var headers: [String: String]

    enum CodingKeys: String, CodingKey {
        case name, type, submittedAt = "submitted_at", entrypoint, dependencies, files, jobType = "job_type", datasets,
             headers
    }

    init(_ metadata: SubmissionMetadata) {
        name = metadata.name
        type = metadata.type
        submittedAt = metadata.submittedAt?.text
        entrypoint = metadata.entrypoint
        dependencies = metadata.dependencies
        files = metadata.files
        jobType = metadata.jobType
        datasets = metadata.datasets.map { requests in
            Dictionary(requests.map { ($0.owner, $0.names) }, uniquingKeysWith: +)
        }
        headers = metadata.headers
    }

    func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(name, forKey: .name)
        try values.encode(type, forKey: .type)
        try values.encode(submittedAt, forKey: .submittedAt)
        try values.encode(entrypoint, forKey: .entrypoint)
        try values.encode(dependencies, forKey: .dependencies)
        try values.encode(files, forKey: .files)
        try values.encode(jobType, forKey: .jobType)
        try values.encode(datasets, forKey: .datasets)
        try values.encode(headers, forKey: .headers)
    }
}

struct JobEnvelopeJSON: Encodable {
    var job: JobJSON
    var logLines: Int
    enum CodingKeys: String, CodingKey { case job, logLines = "log_lines" }
}

struct JobListJSON: Encodable {
    var jobs: [JobJSON]
}

/// What `POST /jobs` and the actions answer.
struct JobActionJSON: Encodable {
    var jobID: String
    var status: String
    var job: JobJSON?
    enum CodingKeys: String, CodingKey { case jobID = "job_id", status, job }

    func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(jobID, forKey: .jobID)
        try values.encode(status, forKey: .status)
        try values.encode(job, forKey: .job)
    }
}

/// state.yaml of a SyftBox job.
struct StateJSON: Encodable {
    var state: JobState

    enum CodingKeys: String, CodingKey {
        case status, receivedAt = "received_at", approvedBy = "approved_by", approvedAt = "approved_at",
             approvalMethod = "approval_method", rejectedBy = "rejected_by", rejectedAt = "rejected_at",
             reviewReason = "review_reason", completedAt = "completed_at", returnCode = "return_code"
    }

    func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(state.status.rawValue, forKey: .status)
        try values.encode(state.receivedAt?.text, forKey: .receivedAt)
        try values.encode(state.approvedBy, forKey: .approvedBy)
        try values.encode(state.approvedAt?.text, forKey: .approvedAt)
        try values.encode(state.approvalMethod?.rawValue, forKey: .approvalMethod)
        try values.encode(state.rejectedBy, forKey: .rejectedBy)
        try values.encode(state.rejectedAt?.text, forKey: .rejectedAt)
        try values.encode(state.reviewReason, forKey: .reviewReason)
        try values.encode(state.completedAt?.text, forKey: .completedAt)
        try values.encode(state.returnCode, forKey: .returnCode)
    }
}
