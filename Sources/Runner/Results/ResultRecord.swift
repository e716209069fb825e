import Sandbox

/// result.json: what happened to one run, the same record `--json` prints.
///
/// Schema (snake_case keys; every field always present, null when unknown):
/// status, exit_code, signal, returncode, job {id, name, type, folder},
/// started_at, finished_at (ISO 8601 UTC), wall_ms, cpu_user_ms,
/// cpu_sys_ms, max_rss_kb, memory_peak_bytes, oom_killed, stdout_bytes,
/// stderr_bytes, output_truncated, limit_hit, limits {...}, network,
/// outputs {...}, warnings, error. The README documents each field.
public struct ResultRecord: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        /// The job exited with status 0.
        case succeeded
        /// The job exited with a non-zero status or was killed by a signal.
        case failed
        /// The wall-clock limit ended the job.
        case timedOut = "timed_out"
        /// A limit other than time (output, CPU) or a cancellation ended it.
        case killed
        /// The sandbox could not be set up or the input was bad; nothing ran.
        case setupFailed = "setup_failed"
    }

    public struct Job: Codable, Sendable {
        public var id: String
        public var name: String
        public var type: String?
        public var folder: String
    }

    public struct Limits: Codable, Sendable {
        public var timeoutSeconds: Double?
        public var cpuTimeSeconds: Double?
        public var memoryBytes: UInt64?
        public var processes: UInt64?
        /// What enforced memory and processes: cgroup_v2, cgroup_v1 or rlimit.
        public var enforcement: SandboxResult.Enforcement
        /// What enforced the CPU time (the job's cgroup, or RLIMIT_CPU per
        /// process); nil without a CPU limit.
        public var cpuTimeEnforcement: SandboxResult.Enforcement?
        public var openFiles: UInt64
        public var fileSizeBytes: UInt64?
        public var outputBytes: UInt64
        public var outputsBytes: UInt64
        public var tmpBytes: UInt64
    }

    public var status: Status
    public var exitCode: Int32?
    public var signal: Int32?
    /// What returncode.txt says: the exit code, -1 on timeout (as syft-job).
    public var returncode: Int32?
    public var job: Job
    public var startedAt: String
    public var finishedAt: String
    public var wallMs: Int64?
    public var cpuUserMs: Int64?
    public var cpuSysMs: Int64?
    public var maxRssKb: Int64?
    /// Peak memory of the whole job, from its cgroup (null without one).
    public var memoryPeakBytes: UInt64?
    /// The kernel's OOM killer ended a process of the job.
    public var oomKilled: Bool
    public var stdoutBytes: UInt64
    public var stderrBytes: UInt64
    public var outputTruncated: Bool
    public var limitHit: SandboxResult.LimitHit
    public var limits: Limits
    public var network: NetworkPolicy
    public var outputs: ArtifactReport?
    public var warnings: [String]
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case status, exitCode = "exit_code", signal, returncode, job, startedAt = "started_at",
             finishedAt = "finished_at", wallMs = "wall_ms", cpuUserMs = "cpu_user_ms", cpuSysMs = "cpu_sys_ms",
             maxRssKb = "max_rss_kb", memoryPeakBytes = "memory_peak_bytes", oomKilled = "oom_killed", stdoutBytes = "stdout_bytes", stderrBytes = "stderr_bytes",
             outputTruncated = "output_truncated", limitHit = "limit_hit", limits, network, outputs, warnings, error
    }

    /// Encodes nils as null so every key is always present.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(signal, forKey: .signal)
        try c.encode(returncode, forKey: .returncode)
        try c.encode(job, forKey: .job)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encode(wallMs, forKey: .wallMs)
        try c.encode(cpuUserMs, forKey: .cpuUserMs)
        try c.encode(cpuSysMs, forKey: .cpuSysMs)
        try c.encode(maxRssKb, forKey: .maxRssKb)
        try c.encode(memoryPeakBytes, forKey: .memoryPeakBytes)
        try c.encode(oomKilled, forKey: .oomKilled)
        try c.encode(stdoutBytes, forKey: .stdoutBytes)
        try c.encode(stderrBytes, forKey: .stderrBytes)
        try c.encode(outputTruncated, forKey: .outputTruncated)
        try c.encode(limitHit, forKey: .limitHit)
        try c.encode(limits, forKey: .limits)
        try c.encode(network, forKey: .network)
        try c.encode(outputs, forKey: .outputs)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(error, forKey: .error)
    }
}

extension ResultRecord.Job {
    enum CodingKeys: String, CodingKey { case id, name, type, folder }

    /// `type` is null, not missing, when config.yaml names none.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(type, forKey: .type)
        try c.encode(folder, forKey: .folder)
    }
}

extension ResultRecord.Limits {
    enum CodingKeys: String, CodingKey {
        case timeoutSeconds = "timeout_seconds", cpuTimeSeconds = "cpu_time_seconds", memoryBytes = "memory_bytes",
             processes, enforcement, cpuTimeEnforcement = "cpu_time_enforcement", openFiles = "open_files", fileSizeBytes = "file_size_bytes",
             outputBytes = "output_bytes", outputsBytes = "outputs_bytes", tmpBytes = "tmp_bytes"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(timeoutSeconds, forKey: .timeoutSeconds)
        try c.encode(cpuTimeSeconds, forKey: .cpuTimeSeconds)
        try c.encode(memoryBytes, forKey: .memoryBytes)
        try c.encode(processes, forKey: .processes)
        try c.encode(enforcement, forKey: .enforcement)
        try c.encode(cpuTimeEnforcement, forKey: .cpuTimeEnforcement)
        try c.encode(openFiles, forKey: .openFiles)
        try c.encode(fileSizeBytes, forKey: .fileSizeBytes)
        try c.encode(outputBytes, forKey: .outputBytes)
        try c.encode(outputsBytes, forKey: .outputsBytes)
        try c.encode(tmpBytes, forKey: .tmpBytes)
    }
}

extension ResultRecord {
    /// result.json's bytes (and `--json`'s output): the text and a newline.
    public var fileBytes: [UInt8] { prettyJSON.bytes + [0x0A] }

    /// result.json's text (the keys of `CodingKeys`; a test holds the two
    /// to JSONEncoder's output).
    public var prettyJSON: PrettyJSON {
        .object([
            .init("status", .string(status.rawValue)),
            .init("exit_code", .optional(exitCode) { .integer(Int64($0)) }),
            .init("signal", .optional(signal) { .integer(Int64($0)) }),
            .init("returncode", .optional(returncode) { .integer(Int64($0)) }),
            .init("job", job.prettyJSON),
            .init("started_at", .string(startedAt)),
            .init("finished_at", .string(finishedAt)),
            .init("wall_ms", .optional(wallMs) { .integer($0) }),
            .init("cpu_user_ms", .optional(cpuUserMs) { .integer($0) }),
            .init("cpu_sys_ms", .optional(cpuSysMs) { .integer($0) }),
            .init("max_rss_kb", .optional(maxRssKb) { .integer($0) }),
            .init("memory_peak_bytes", .optional(memoryPeakBytes) { .unsigned($0) }),
            .init("oom_killed", .bool(oomKilled)),
            .init("stdout_bytes", .unsigned(stdoutBytes)),
            .init("stderr_bytes", .unsigned(stderrBytes)),
            .init("output_truncated", .bool(outputTruncated)),
            .init("limit_hit", .string(limitHit.rawValue)),
            .init("limits", limits.prettyJSON),
            .init("network", .string(network.rawValue)),
            .init("outputs", .optional(outputs) { $0.prettyJSON }),
            .init("warnings", .array(warnings.map { .string($0) })),
            .init("error", .optional(error) { .string($0) }),
        ])
    }
}

extension ResultRecord.Job {
    var prettyJSON: PrettyJSON {
        .object([
            .init("id", .string(id)), .init("name", .string(name)),
            .init("type", .optional(type) { .string($0) }), .init("folder", .string(folder)),
        ])
    }
}

extension ResultRecord.Limits {
    var prettyJSON: PrettyJSON {
        .object([
            .init("timeout_seconds", .optional(timeoutSeconds) { .number($0) }),
            .init("cpu_time_seconds", .optional(cpuTimeSeconds) { .number($0) }),
            .init("memory_bytes", .optional(memoryBytes) { .unsigned($0) }),
            .init("processes", .optional(processes) { .unsigned($0) }),
            .init("enforcement", .string(enforcement.rawValue)),
            .init("cpu_time_enforcement", .optional(cpuTimeEnforcement) { .string($0.rawValue) }),
            .init("open_files", .unsigned(openFiles)),
            .init("file_size_bytes", .optional(fileSizeBytes) { .unsigned($0) }),
            .init("output_bytes", .unsigned(outputBytes)),
            .init("outputs_bytes", .unsigned(outputsBytes)),
            .init("tmp_bytes", .unsigned(tmpBytes)),
        ])
    }
}
