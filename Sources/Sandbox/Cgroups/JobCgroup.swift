import Glibc
import SystemPackage

/// The cgroup of one sandbox: made before its clone (v2, to clone into) or
/// while its PID 1 builds the root, its limits written, entered by the job
/// before anything of its own runs (`joinFiles`; v2 cloned into: PID 1
/// from the start), read after the job and removed once PID 1 reaped the
/// job (it stays out of a group the job joined) or was reaped itself.
final class JobCgroup {
    struct Limits: Hashable {
        var memoryBytes: UInt64?
        var processes: UInt64?
    }

    /// What the group saw.
    struct Usage: Hashable {
        var memoryPeakBytes: UInt64?
        var oomKills: UInt64
        /// Forks the pids limit refused.
        var pidsLimitHits: UInt64
        /// CPU time of every process the group ever held, when the group
        /// accounts it (v2 always, v1 with a cpuacct hierarchy).
        var cpu: CPUTime? = nil
    }

    /// CPU time of the whole group: user + system is `total`.
    struct CPUTime: Hashable {
        var user: Duration
        var system: Duration
        var total: Duration { user + system }
    }

    private enum Layout {
        case v2(directory: FilePath, fd: Int32)
        /// Per hierarchy: its controller, the group's directory and its
        /// `tasks` opened for writing (the job writes itself in).
        case v1([(controller: String, directory: FilePath, tasks: Int32)])
    }

    private let layout: Layout
    /// v2 joined after the clone: the group's `cgroup.procs`, opened for writing.
    private var procsFD: Int32 = -1
    let version: Int
    /// Where the group's CPU time is read: v2 `cpu.stat`, v1
    /// `cpuacct.usage` (nil: not accounted, RLIMIT_CPU only).
    private var cpuFile: FilePath? { cpuDirectory?.appending(version == 2 ? "cpu.stat" : "cpuacct.usage") }
    /// The group whose CPU time is read (v1: the cpuacct hierarchy's, where
    /// the split into user and system time is beside the total).
    private let cpuDirectory: FilePath?

    /// True when the group counts the CPU time of all its processes.
    var accountsCPU: Bool { cpuDirectory != nil }

    /// Creates `name` under the runner's job parent, without limits yet
    /// (`apply`): on v2 the sandbox is cloned into it while its
    /// configuration, and so its limits, may still be in the making.
    init(support: CgroupSupport, name: String) throws(SandboxError) {
        switch support {
        case .unavailable:
            throw SandboxError(.setupFailed, "no cgroup hierarchy to place the job in")
        case let .v2(parent):
            let directory = parent.appending(name)
            try Self.makeDirectory(directory)
            // CLONE_INTO_CGROUP takes a real directory descriptor (not O_PATH).
            let fd = open(directory.string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else {
                let error = Errno(rawValue: errno)
                rmdir(directory.string)
                throw SandboxError(.setupFailed, "cannot open the job's cgroup", path: directory.string, errno: error)
            }
            layout = .v2(directory: directory, fd: fd)
            version = 2
            // A core file of every v2 group, the cpu controller enabled or not.
            let stat = directory.appending("cpu.stat")
            cpuDirectory = CgroupFiles.keyedValues(stat)["usage_usec"] != nil ? directory : nil
        case let .v1(hierarchies):
            var groups: [(controller: String, directory: FilePath, tasks: Int32)] = []
            do throws(SandboxError) {
                for hierarchy in hierarchies {
                    let directory = hierarchy.parent.appending(name)
                    try Self.makeDirectory(directory)
                    // `tasks`, not `cgroup.procs`: the job moves itself, one
                    // thread, which needs no RCU grace period (see spawn.c).
                    let tasks = open(directory.appending("tasks").string, O_WRONLY | O_CLOEXEC)
                    if tasks < 0 {
                        let error = Errno(rawValue: errno)
                        rmdir(directory.string)
                        throw SandboxError(.setupFailed, "cannot open the job's cgroup tasks file", path: directory.string,
                                           errno: error)
                    }
                    groups.append((hierarchy.controller, directory, tasks))
                }
            } catch {
                for group in groups {
                    close(group.tasks)
                    rmdir(group.directory.string)
                }
                throw error
            }
            layout = .v1(groups)
            version = 1
            // The cpuacct hierarchy's group counts; a cpuacct co-mounted
            // with another controller is found by its counter.
            cpuDirectory = groups.first { $0.controller == "cpuacct" }?.directory
                ?? groups.lazy.map(\.directory).first { CgroupFiles.number($0.appending("cpuacct.usage")) != nil }
        }
    }

    /// Writes the limits, before anything of the job runs.
    func apply(_ limits: Limits) throws(SandboxError) {
        switch layout {
        case let .v2(directory, _):
            if let bytes = limits.memoryBytes {
                try Self.set("memory.max", "\(bytes)", in: directory)
                try Self.set("memory.swap.max", "0", in: directory, optional: true)
            }
            if let count = limits.processes { try Self.set("pids.max", "\(count)", in: directory) }
        case let .v1(groups):
            for group in groups {
                switch group.controller {
                case "memory":
                    if let bytes = limits.memoryBytes {
                        try Self.set("memory.limit_in_bytes", "\(bytes)", in: group.directory)
                        // With swap accounting, swap counts too (absent without it).
                        try Self.set("memory.memsw.limit_in_bytes", "\(bytes)", in: group.directory, optional: true)
                    }
                case "pids":
                    if let count = limits.processes { try Self.set("pids.max", "\(count)", in: group.directory) }
                default:
                    break
                }
            }
        }
    }

    deinit {
        switch layout {
        case let .v2(_, fd): close(fd)
        case let .v1(groups):
            for group in groups { close(group.tasks) }
        }
        if procsFD >= 0 { close(procsFD) }
        for fd in usageFiles?.all ?? [] where fd >= 0 { close(fd) }
    }

    /// v2: the directory clone3 places the sandbox in (CLONE_INTO_CGROUP).
    var cloneDirectory: Int32? {
        if case let .v2(_, fd) = layout { fd } else { nil }
    }

    /// The files the job writes itself into (csb_spawn_place): v1, each
    /// hierarchy's `tasks` (one thread, itself: no global lock); v2,
    /// nothing when clone3 placed PID 1 there, else the group's
    /// `cgroup.procs` (the kernel checks the opener's, the runner's,
    /// credentials). Owned by the group; valid while it lives.
    func joinFiles(clonedInto: Bool) throws(SandboxError) -> [Int32] {
        switch layout {
        case let .v1(groups): return groups.map(\.tasks)
        case .v2 where clonedInto: return []
        case let .v2(directory, _):
            if procsFD < 0 {
                procsFD = open(directory.appending("cgroup.procs").string, O_WRONLY | O_CLOEXEC)
                guard procsFD >= 0 else {
                    throw SandboxError(.setupFailed, "cannot open the job's cgroup.procs", path: directory.string,
                                       errno: Errno(rawValue: errno))
                }
            }
            return [procsFD]
        }
    }

    /// CPU time of the group so far (user + system of every process it
    /// held), or nil when it is not accounted. One small read: cheap
    /// enough for the supervisor's budget checks.
    func cpuTotal() -> Duration? {
        guard let text = cpuText() else { return nil }
        switch layout {
        case .v2: return CgroupFiles.keyedValues(in: text)["usage_usec"].map { .microseconds($0) }
        case .v1: return CgroupFiles.leadingNumber(text).map { .nanoseconds($0) }
        }
    }

    /// cpu.stat or cpuacct.usage, through the descriptor `openUsageFiles`
    /// opened when there is one.
    private func cpuText() -> String? {
        if let fd = usageFiles?.cpu, fd >= 0 { return CgroupFiles.read(fd, oneRecord: true) }
        guard let cpuFile else { return nil }
        return try? CgroupFiles.read(cpuFile)
    }

    /// The group's CPU time split in user and system time.
    func cpuTime() -> CPUTime? {
        guard let text = cpuText() else { return nil }
        switch layout {
        case .v2:
            let stat = CgroupFiles.keyedValues(in: text)
            guard let user = stat["user_usec"], let system = stat["system_usec"] else { return nil }
            return CPUTime(user: .microseconds(user), system: .microseconds(system))
        case .v1:
            guard let total = CgroupFiles.leadingNumber(text), let directory = cpuDirectory else { return nil }
            let stat = CgroupFiles.keyedValues(directory.appending("cpuacct.stat"))
            let precise = (CgroupFiles.number(directory.appending("cpuacct.usage_user")),
                           CgroupFiles.number(directory.appending("cpuacct.usage_sys")))
            return Self.splitV1(totalNanoseconds: total, statUser: stat["user"], statSystem: stat["system"],
                                usageUser: precise.0, usageSystem: precise.1)
        }
    }

    /// v1 user and system time. `cpuacct.usage` is the exact total (the
    /// scheduler's runtime, ns); `cpuacct.stat` has the split, scaled by
    /// the kernel to that runtime but in USER_HZ ticks; `cpuacct.usage_user`
    /// and `usage_sys` are raw tick samples in ns. The total is kept exact
    /// and split in the ratio of `cpuacct.stat`, else of the samples, else
    /// counted as user time (a job too short for a single tick).
    static func splitV1(totalNanoseconds total: UInt64, statUser: UInt64?, statSystem: UInt64?,
                        usageUser: UInt64?, usageSystem: UInt64?) -> CPUTime {
        func split(_ user: UInt64, _ system: UInt64) -> CPUTime? {
            let sum = Double(user) + Double(system)
            guard sum > 0 else { return nil }
            let userPart = UInt64((Double(total) * Double(user) / sum).rounded())
            return CPUTime(user: .nanoseconds(min(userPart, total)), system: .nanoseconds(total - min(userPart, total)))
        }
        if let user = statUser, let system = statSystem, let result = split(user, system) { return result }
        if let user = usageUser, let system = usageSystem, let result = split(user, system) { return result }
        return CPUTime(user: .nanoseconds(total), system: .zero)
    }

    /// The files `usage` reads, opened ahead of it: the group's peak
    /// memory, its memory events (v1 `memory.oom_control`) and its pids
    /// events; -1 where the group has none.
    struct UsageFiles {
        var memoryPeak: Int32 = -1
        var memoryEvents: Int32 = -1
        var pidsEvents: Int32 = -1
        /// cpu.stat (v2) or cpuacct.usage (v1).
        var cpu: Int32 = -1
        var all: [Int32] { [memoryPeak, memoryEvents, pidsEvents, cpu] }
    }

    private var usageFiles: UsageFiles?

    /// Opens the files `usage` reads, so that reading them after the job
    /// is one pread each. The supervisor calls it while the job starts;
    /// after the job every syscall delays the results (an open and a close
    /// of a cgroupfs file are two of the three). Once only.
    @discardableResult
    func openUsageFiles() -> UsageFiles {
        if let usageFiles { return usageFiles }
        func open(_ path: FilePath) -> Int32 { Glibc.open(path.string, O_RDONLY | O_CLOEXEC) }
        var files = UsageFiles()
        switch layout {
        case let .v2(directory, _):
            files.memoryPeak = open(directory.appending("memory.peak"))
            files.memoryEvents = open(directory.appending("memory.events"))
            files.pidsEvents = open(directory.appending("pids.events"))
        case let .v1(groups):
            for group in groups {
                switch group.controller {
                case "memory":
                    files.memoryPeak = open(group.directory.appending("memory.max_usage_in_bytes"))
                    files.memoryEvents = open(group.directory.appending("memory.oom_control"))
                case "pids":
                    files.pidsEvents = open(group.directory.appending("pids.events"))
                default:
                    break
                }
            }
        }
        if let cpuFile { files.cpu = open(cpuFile) }
        usageFiles = files
        return files
    }

    /// What the group saw; its CPU time only `withCPU` (up to four more
    /// files on v1, for a caller that has no exact count of its own).
    func usage(withCPU: Bool = true) -> Usage {
        let files = openUsageFiles()
        let memoryPeak = CgroupFiles.read(files.memoryPeak, oneRecord: true).flatMap(CgroupFiles.leadingNumber)
        let memoryEvents = CgroupFiles.read(files.memoryEvents, oneRecord: true).map(CgroupFiles.keyedValues(in:))
        let pidsEvents = CgroupFiles.read(files.pidsEvents, oneRecord: true).map(CgroupFiles.keyedValues(in:))
        return Usage(memoryPeakBytes: memoryPeak, oomKills: memoryEvents?["oom_kill"] ?? 0,
                     pidsLimitHits: pidsEvents?["max"] ?? 0, cpu: withCPU ? cpuTime() : nil)
    }

    /// Kills every process left in the group (normally none: PID 1's exit
    /// already killed its namespace) and removes the group's directories.
    func killAndRemove() {
        // The usual end: PID 1 was reaped, so its namespace is empty and the
        // groups are too. An empty group's rmdir succeeds at once, without
        // freezing (which, on v1, patches kernel code on every CPU twice).
        // A group that still holds a process fails with EBUSY, and is killed.
        if removeIfEmpty() { return }
        switch layout {
        case let .v2(directory, _):
            if CgroupFiles.write("1", to: directory.appending("cgroup.kill")) != nil {
                Self.killListed(in: directory)
            }
            Self.removeDirectory(directory) { Self.killListed(in: directory) }
        case let .v1(groups):
            let freezer = groups.first { $0.controller == "freezer" }?.directory
            if let freezer { CgroupFiles.write("FROZEN", to: freezer.appending("freezer.state")) }
            for group in groups { Self.killListed(in: group.directory) }
            if let freezer { CgroupFiles.write("THAWED", to: freezer.appending("freezer.state")) }
            for group in groups {
                Self.removeDirectory(group.directory) { Self.killListed(in: group.directory) }
            }
        }
    }

    /// Removes the groups if none holds a process (true), or none of them.
    /// Every group of a job holds the same processes, and the freezer (which
    /// the slow path needs) is tried last.
    func removeIfEmpty() -> Bool {
        let directories: [FilePath]
        switch layout {
        case let .v2(directory, _): directories = [directory]
        case let .v1(groups):
            directories = groups.filter { $0.controller != "freezer" }.map(\.directory)
                + groups.filter { $0.controller == "freezer" }.map(\.directory)
        }
        for directory in directories where rmdir(directory.string) != 0 && errno != ENOENT {
            return false
        }
        return true
    }

    /// A stale group (its runner is gone): thawed (a runner killed between
    /// freezing and thawing leaves it frozen, and frozen processes cannot
    /// die), whatever is in it killed, and removed if that is already
    /// done. One attempt, no waiting: processes still dying leave the
    /// folder to the next sweep, so a sweep never holds up a sandbox.
    static func removeStale(_ directory: FilePath) {
        CgroupFiles.write("THAWED", to: directory.appending("freezer.state")) // ENOENT outside the freezer
        killListed(in: directory)
        rmdir(directory.string)
    }

    private static func killListed(in directory: FilePath) {
        guard let text = try? CgroupFiles.read(directory.appending("cgroup.procs")) else { return }
        for line in text.split(separator: "\n") {
            if let pid = pid_t(line) { kill(pid, SIGKILL) }
        }
    }

    /// rmdir, retried while the last processes finish exiting (EBUSY).
    private static func removeDirectory(_ directory: FilePath, whileBusy: () -> Void) {
        for attempt in 0..<200 {
            if rmdir(directory.string) == 0 || errno == ENOENT { return }
            guard errno == EBUSY else { return }
            if attempt % 20 == 0 { whileBusy() }
            usleep(5_000)
        }
    }

    private static func makeDirectory(_ directory: FilePath) throws(SandboxError) {
        guard mkdir(directory.string, 0o755) == 0 else {
            throw SandboxError(.setupFailed, "cannot create the job's cgroup", path: directory.string,
                               errno: Errno(rawValue: errno), hint: "the runner needs write access to its cgroup")
        }
    }

    private static func set(_ file: String, _ value: String, in directory: FilePath,
                            optional: Bool = false) throws(SandboxError) {
        guard let error = CgroupFiles.write(value, to: directory.appending(file)) else { return }
        if optional && error == .noSuchFileOrDirectory { return }
        throw SandboxError(.setupFailed, "cannot write \(value) to \(file)", path: directory.string, errno: error)
    }
}
