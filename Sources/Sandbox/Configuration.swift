import Glibc
import SystemPackage

/// Which network the job gets.
public enum NetworkPolicy: String, Sendable, CaseIterable, Codable {
    /// A private network namespace whose only interface, lo, is down.
    case none
    /// A private network namespace with lo up: the job can reach itself only.
    case loopback
    /// The host's network namespace. Explicit opt-in, never a default.
    case host
}

/// The host ids the sandbox's uid and gid 0 map to.
public struct IdentityMapping: Sendable, Hashable {
    public var hostUID: UInt32
    public var hostGID: UInt32

    public init(hostUID: UInt32, hostGID: UInt32) {
        self.hostUID = hostUID
        self.hostGID = hostGID
    }

    /// The id a root runner maps jobs to when told nothing else: the first
    /// id of the conventional subordinate range, never 0.
    public static let defaultUnprivilegedID: UInt32 = 100_000

    /// Run as root: a dedicated unprivileged id. Run unprivileged: the
    /// caller's own ids, the only mapping an unprivileged process may write.
    public static func automatic(rootMapsTo id: UInt32 = defaultUnprivilegedID) -> IdentityMapping {
        if geteuid() == 0 { return IdentityMapping(hostUID: id, hostGID: id) }
        return IdentityMapping(hostUID: getuid(), hostGID: getgid())
    }

    /// True when the runner may choose any mapping (it is root).
    public static var runnerIsPrivileged: Bool { geteuid() == 0 }
}

/// Every limit has a default; `nil` means "none".
public struct ResourceLimits: Sendable, Hashable {
    /// Wall-clock limit; the whole sandbox is killed when it passes.
    public var wallTime: Duration?
    /// CPU time of the whole job: user + system time of all its processes,
    /// counted by its cgroup (v2 `cpu.stat`, v1 `cpuacct`); the sandbox is
    /// killed once the total passes it. Without CPU accounting, RLIMIT_CPU
    /// per process (whole seconds, rounded up) is all there is.
    public var cpuTime: Duration?
    /// Memory of the whole job: the cgroup's memory.max (swap off), or,
    /// without cgroups, RLIMIT_AS per process.
    public var memoryBytes: UInt64?
    /// Processes and threads of the whole job: the cgroup's pids.max, or,
    /// without cgroups, RLIMIT_NPROC (which counts per host uid).
    public var processes: UInt64?
    public var openFiles: UInt64
    /// Largest file the job may write (RLIMIT_FSIZE).
    public var fileSizeBytes: UInt64?
    /// Bytes kept of stdout and of stderr, each; past it the job is stopped.
    public var outputBytes: UInt64

    public static let defaultOutputBytes: UInt64 = 10 << 20
    public static let defaultMemoryBytes: UInt64 = 2 << 30
    public static let defaultProcesses: UInt64 = 512
    public static let defaultOpenFiles: UInt64 = 1024
    public static let defaultFileSizeBytes: UInt64 = 1 << 30

    public init(wallTime: Duration? = .seconds(600), cpuTime: Duration? = nil,
                memoryBytes: UInt64? = ResourceLimits.defaultMemoryBytes,
                processes: UInt64? = ResourceLimits.defaultProcesses,
                openFiles: UInt64 = ResourceLimits.defaultOpenFiles,
                fileSizeBytes: UInt64? = ResourceLimits.defaultFileSizeBytes,
                outputBytes: UInt64 = ResourceLimits.defaultOutputBytes) {
        self.wallTime = wallTime
        self.cpuTime = cpuTime
        self.memoryBytes = memoryBytes
        self.processes = processes
        self.openFiles = openFiles
        self.fileSizeBytes = fileSizeBytes
        self.outputBytes = outputBytes
    }
}

/// Everything the sandbox needs to start one job.
public struct SandboxConfiguration: Sendable {
    /// The mount plan, in order, assembling the root (see `RootFilesystem`).
    public var mounts: [Mount]
    /// Absolute path of the program inside the sandbox.
    public var executable: String
    /// argv, including argv[0].
    public var arguments: [String]
    /// The whole environment: nothing else of the caller's reaches the job.
    public var environment: [(name: String, value: String)]
    public var workingDirectory: String
    public var identity: IdentityMapping
    public var network: NetworkPolicy
    public var seccomp: SeccompProgram
    public var limits: ResourceLimits
    public var hostname: String
    /// A host directory the shim hides under a tmpfs (in its own mount
    /// namespace) while it assembles the root.
    public var stagingDirectory: FilePath
    /// Where the job's cgroup goes; nil: this process's `CgroupSupport.detected`,
    /// found on the sandbox's own thread when it first starts one (not
    /// where the configuration is made: the one-shot CLI makes it while
    /// its sandbox starts).
    public var cgroups: CgroupSupport?
    /// Prepared network namespaces to take one from (the daemon), when the
    /// pool's policy is `network`; else the sandbox makes its own.
    public var networkNamespaces: NetworkNamespacePool?

    public init(mounts: [Mount], executable: String, arguments: [String],
                environment: [(name: String, value: String)], workingDirectory: String,
                identity: IdentityMapping = .automatic(), network: NetworkPolicy = .none,
                seccomp: SeccompProgram, limits: ResourceLimits = ResourceLimits(),
                hostname: String = "sandbox", stagingDirectory: FilePath = "/tmp",
                cgroups: CgroupSupport? = nil) {
        self.mounts = mounts
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.identity = identity
        self.network = network
        self.seccomp = seccomp
        self.limits = limits
        self.hostname = hostname
        self.stagingDirectory = stagingDirectory
        self.cgroups = cgroups
        self.networkNamespaces = nil
    }
}
