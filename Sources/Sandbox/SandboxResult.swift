import Synchronization
import SystemPackage

/// Which stream a chunk of output came from.
public enum OutputChannel: String, Sendable, Codable {
    case stdout, stderr
}

/// What the job's output flows into: two files the caller opened (written
/// from their current offset) and, optionally, a live sink (the daemon's
/// log streaming). The sandbox never closes the caller's descriptors.
public struct OutputCapture: Sendable {
    public var stdout: Int32
    public var stderr: Int32
    public var sink: (@Sendable (OutputChannel, [UInt8]) -> Void)?

    public init(stdout: Int32, stderr: Int32, sink: (@Sendable (OutputChannel, [UInt8]) -> Void)? = nil) {
        self.stdout = stdout
        self.stderr = stderr
        self.sink = sink
    }
}

/// The root of an exported filesystem (`Mount.Kind.exportedTmpfs`), kept
/// open after the sandbox is gone so its files can be collected. The
/// filesystem is freed when its descriptor is closed: by `close`, by
/// whoever `release` hands it to, or with the last reference to this
/// object; once, whichever comes first (a second close of the number
/// would close whatever another thread opened under it meanwhile).
public final class ExportedFilesystem: Sendable, Hashable {
    /// Where the job saw it.
    public let target: String
    /// A read-only directory descriptor of its root (close-on-exec); valid
    /// until `close` or `release`.
    public let descriptor: FileDescriptor
    private let isOpen = Mutex(true)

    init(target: String, descriptor: FileDescriptor) {
        self.target = target
        self.descriptor = descriptor
    }

    /// Closes the descriptor now (the filesystem goes with its last
    /// reference). Later calls do nothing.
    public func close() {
        release { _ in false }
    }

    /// Offers the descriptor to `take`, which returns true when it took
    /// it (it closes it from then on); else it is closed here. Once: later
    /// calls, and the deinit, do nothing.
    public func release(to take: (FileDescriptor) -> Bool) {
        guard isOpen.withLock({ open in defer { open = false }; return open }) else { return }
        if !take(descriptor) { try? descriptor.close() }
    }

    deinit { close() }

    public static func == (a: ExportedFilesystem, b: ExportedFilesystem) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// How a sandboxed job ended and what it used.
public struct SandboxResult: Sendable, Hashable {
    public enum Termination: Sendable, Hashable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// The limit that ended the job, if one did.
    public enum LimitHit: String, Sendable, Codable {
        case none, timeout, memory, pids, output, cpuTime = "cpu_time", outputsSize = "outputs_size", cancelled
    }

    /// What enforced the memory and process limits.
    public enum Enforcement: String, Sendable, Codable {
        case cgroupV2 = "cgroup_v2", cgroupV1 = "cgroup_v1", rlimit
    }

    public var termination: Termination
    public var limitHit: LimitHit
    public var wallTime: Duration
    /// CPU time of all the job's processes: from the cgroup when it
    /// accounts CPU (every process it held, those killed at the end
    /// included), else PID 1's rusage (itself and what it reaped).
    public var userCPUTime: Duration
    public var systemCPUTime: Duration
    /// Largest resident set of any process of the job, in KiB.
    public var maxRSSKilobytes: Int64
    /// Bytes kept in the stdout and stderr files (the cap included).
    public var stdoutBytes: UInt64
    public var stderrBytes: UInt64
    public var outputTruncated: Bool
    /// Binds asked to be idmapped that fell back to plain binds.
    public var idmapFallbacks: Int
    /// Largest memory use of the whole job (cgroup), when known.
    public var memoryPeakBytes: UInt64?
    /// The kernel's OOM killer ended a process of the job.
    public var oomKilled: Bool
    /// The process limit refused a fork at least once.
    public var processLimitReached: Bool
    public var enforcement: Enforcement
    /// What enforced the CPU time limit, when one was set: the cgroup's
    /// counter over the whole job, or only RLIMIT_CPU per process (a
    /// group without CPU accounting, or no group).
    public var cpuTimeEnforcement: Enforcement?
    /// Why cgroups were not used, when they were not.
    public var cgroupNote: String?
    /// The exported filesystems, by target, in plan order.
    public var exported: [ExportedFilesystem] = []
    /// Where the time went: the sandbox's start (cgroup, clone, the init's
    /// exec) plus, from the configuration's arrival, its finish up to the
    /// job's execve (limits, id maps, mounts, pivot_root, the last steps),
    /// not the time a started sandbox waited for its configuration; and
    /// from the end of the job's processes to the return (draining,
    /// accounting).
    public var setupTime: Duration = .zero
    public var teardownTime: Duration = .zero
    /// PID 1 was cloned before the process's Swift runtime started (a
    /// one-shot command line: `csb_early_take`).
    public var startedEarly = false

    public init(termination: Termination, limitHit: LimitHit, wallTime: Duration, userCPUTime: Duration,
                systemCPUTime: Duration, maxRSSKilobytes: Int64, stdoutBytes: UInt64, stderrBytes: UInt64,
                outputTruncated: Bool, idmapFallbacks: Int = 0, memoryPeakBytes: UInt64? = nil,
                oomKilled: Bool = false, processLimitReached: Bool = false, enforcement: Enforcement = .rlimit,
                cgroupNote: String? = nil) {
        self.termination = termination
        self.limitHit = limitHit
        self.wallTime = wallTime
        self.userCPUTime = userCPUTime
        self.systemCPUTime = systemCPUTime
        self.maxRSSKilobytes = maxRSSKilobytes
        self.stdoutBytes = stdoutBytes
        self.stderrBytes = stderrBytes
        self.outputTruncated = outputTruncated
        self.idmapFallbacks = idmapFallbacks
        self.memoryPeakBytes = memoryPeakBytes
        self.oomKilled = oomKilled
        self.processLimitReached = processLimitReached
        self.enforcement = enforcement
        self.cgroupNote = cgroupNote
    }

    public var timedOut: Bool { limitHit == .timeout }

    /// The job ended on its own with status 0.
    public var succeeded: Bool { termination == .exited(0) && limitHit == .none }

    /// The exit status of a command that ran the job, as timeout(1) and
    /// shells report it: the job's code, 124 on timeout, 128+N on signal N.
    public var shellStatus: Int32 {
        if limitHit == .timeout { return 124 }
        switch termination {
        case let .exited(code): return code
        case let .signaled(signal): return 128 + signal
        }
    }
}
