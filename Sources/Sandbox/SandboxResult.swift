/// Which stream a chunk of output came from.
public enum OutputStream: String, Sendable, Codable {
    case stdout, stderr
}

/// What the job's output flows into: two files the caller opened (written
/// from their current offset) and, optionally, a live sink (the daemon's
/// log streaming). The sandbox never closes the caller's descriptors.
public struct OutputCapture: Sendable {
    public var stdout: Int32
    public var stderr: Int32
    public var sink: (@Sendable (OutputStream, [UInt8]) -> Void)?

    public init(stdout: Int32, stderr: Int32, sink: (@Sendable (OutputStream, [UInt8]) -> Void)? = nil) {
        self.stdout = stdout
        self.stderr = stderr
        self.sink = sink
    }
}

/// How a sandboxed job ended and what it used.
public struct SandboxResult: Sendable, Hashable {
    public enum Termination: Sendable, Hashable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// The limit that ended the job, if one did.
    public enum LimitHit: String, Sendable, Codable {
        case none, timeout, output, cpuTime = "cpu_time", cancelled
    }

    public var termination: Termination
    public var limitHit: LimitHit
    public var wallTime: Duration
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

    public var timedOut: Bool { limitHit == .timeout }

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
