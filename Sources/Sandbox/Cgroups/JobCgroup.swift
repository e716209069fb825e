import Glibc
import SystemPackage

/// The cgroup of one sandbox: made before clone with its limits written,
/// entered by the sandbox before anything of the job runs (see
/// `CgroupPlacement`), read and removed after PID 1 was reaped.
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
    }

    private enum Layout {
        case v2(directory: FilePath, fd: Int32)
        /// Per hierarchy: its controller, the group's directory, and its
        /// cgroup.procs opened for writing.
        case v1([(controller: String, directory: FilePath, procs: Int32)])
    }

    private let layout: Layout
    let version: Int

    /// Creates `name` under the runner's job parent and writes the limits.
    init(support: CgroupSupport, name: String, limits: Limits) throws(SandboxError) {
        switch support {
        case .unavailable:
            throw SandboxError(.setupFailed, "no cgroup hierarchy to place the job in")
        case let .v2(parent):
            let directory = parent.appending(name)
            try Self.makeDirectory(directory)
            do throws(SandboxError) {
                if let bytes = limits.memoryBytes {
                    try Self.set("memory.max", "\(bytes)", in: directory)
                    try Self.set("memory.swap.max", "0", in: directory, optional: true)
                }
                if let count = limits.processes { try Self.set("pids.max", "\(count)", in: directory) }
                // CLONE_INTO_CGROUP takes a real directory descriptor (not O_PATH).
                let fd = open(directory.string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard fd >= 0 else {
                    throw SandboxError(.setupFailed, "cannot open the job's cgroup", path: directory.string,
                                       errno: Errno(rawValue: errno))
                }
                layout = .v2(directory: directory, fd: fd)
                version = 2
            } catch {
                rmdir(directory.string)
                throw error
            }
        case let .v1(hierarchies):
            var groups: [(controller: String, directory: FilePath, procs: Int32)] = []
            do throws(SandboxError) {
                for hierarchy in hierarchies {
                    let directory = hierarchy.parent.appending(name)
                    try Self.makeDirectory(directory)
                    let procs = open(directory.appending("cgroup.procs").string, O_WRONLY | O_CLOEXEC)
                    if procs < 0 {
                        let error = Errno(rawValue: errno)
                        rmdir(directory.string)
                        throw SandboxError(.setupFailed, "cannot open the job's cgroup.procs", path: directory.string,
                                           errno: error)
                    }
                    groups.append((hierarchy.controller, directory, procs))
                    switch hierarchy.controller {
                    case "memory":
                        if let bytes = limits.memoryBytes {
                            try Self.set("memory.limit_in_bytes", "\(bytes)", in: directory)
                            // With swap accounting, swap counts too (absent without it).
                            try Self.set("memory.memsw.limit_in_bytes", "\(bytes)", in: directory, optional: true)
                        }
                    case "pids":
                        if let count = limits.processes { try Self.set("pids.max", "\(count)", in: directory) }
                    default:
                        break
                    }
                }
            } catch {
                for group in groups {
                    close(group.procs)
                    rmdir(group.directory.string)
                }
                throw error
            }
            layout = .v1(groups)
            version = 1
        }
    }

    deinit {
        switch layout {
        case let .v2(_, fd): close(fd)
        case let .v1(groups): for group in groups { close(group.procs) }
        }
    }

    /// How the shim puts the sandbox in this group.
    var placement: CgroupPlacement {
        switch layout {
        case let .v2(_, fd): .cloneInto(directory: fd)
        case let .v1(groups): .join(procsFiles: groups.map(\.procs))
        }
    }

    func usage() -> Usage {
        switch layout {
        case let .v2(directory, _):
            return Usage(memoryPeakBytes: CgroupFiles.number(directory.appending("memory.peak")),
                         oomKills: CgroupFiles.keyedValues(directory.appending("memory.events"))["oom_kill"] ?? 0,
                         pidsLimitHits: CgroupFiles.keyedValues(directory.appending("pids.events"))["max"] ?? 0)
        case let .v1(groups):
            var usage = Usage(memoryPeakBytes: nil, oomKills: 0, pidsLimitHits: 0)
            for group in groups {
                switch group.controller {
                case "memory":
                    usage.memoryPeakBytes = CgroupFiles.number(group.directory.appending("memory.max_usage_in_bytes"))
                    usage.oomKills = CgroupFiles.keyedValues(group.directory.appending("memory.oom_control"))["oom_kill"] ?? 0
                case "pids":
                    usage.pidsLimitHits = CgroupFiles.keyedValues(group.directory.appending("pids.events"))["max"] ?? 0
                default:
                    break
                }
            }
            return usage
        }
    }

    /// Kills every process left in the group (normally none: PID 1's exit
    /// already killed its namespace) and removes the group's directories.
    func killAndRemove() {
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

    /// Removes a group, killing whatever is still in it.
    static func remove(_ directory: FilePath) {
        killListed(in: directory)
        removeDirectory(directory) { killListed(in: directory) }
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
