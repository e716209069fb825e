import CSandbox
import Glibc
import SystemPackage

/// The C view of a `SandboxConfiguration`: every string, array and struct
/// the shim reads, allocated once in the parent (the child may not
/// allocate) and freed when the plan is released.
final class SpawnPlan {
    private let arena: CArena
    private let hostUID: UInt32, hostGID: UInt32, network: UInt32
    private let hostname: UnsafePointer<CChar>, stagingDirectory: UnsafePointer<CChar>
    private let mounts: UnsafePointer<csb_mount>, mountCount: Int
    private let path: UnsafePointer<CChar>, cwd: UnsafePointer<CChar>
    private let argv: UnsafePointer<UnsafeMutablePointer<CChar>?>, envp: UnsafePointer<UnsafeMutablePointer<CChar>?>
    private let stdout: Int32, stderr: Int32
    private let limits: UnsafePointer<csb_rlimit>, limitCount: Int

    init(_ configuration: SandboxConfiguration, stdout: Int32, stderr: Int32) throws {
        try Self.validate(configuration)
        let arena = CArena()
        self.arena = arena
        let mounts = arena.allocate(csb_mount.self, count: max(configuration.mounts.count, 1))
        for (index, mount) in configuration.mounts.enumerated() {
            mounts[index] = Self.cMount(mount, arena)
        }
        let limits = Self.rlimits(configuration.limits)
        let cLimits = arena.allocate(csb_rlimit.self, count: max(limits.count, 1))
        for (index, limit) in limits.enumerated() { cLimits[index] = limit }
        hostUID = configuration.identity.hostUID
        hostGID = configuration.identity.hostGID
        network = configuration.network.cValue
        self.mounts = UnsafePointer(mounts)
        mountCount = configuration.mounts.count
        self.limits = UnsafePointer(cLimits)
        limitCount = limits.count
        self.stdout = stdout
        self.stderr = stderr
        hostname = UnsafePointer(arena.string(configuration.hostname))
        stagingDirectory = UnsafePointer(arena.string(configuration.stagingDirectory.string))
        path = UnsafePointer(arena.string(configuration.executable))
        argv = UnsafePointer(arena.stringArray(configuration.arguments))
        envp = UnsafePointer(arena.stringArray(configuration.environment.map { "\($0.name)=\($0.value)" }))
        cwd = UnsafePointer(arena.string(configuration.workingDirectory))
    }

    /// The C configuration; valid while this plan and `seccomp` live.
    /// `networkNamespace`: the pooled one PID 1 was started in (-1: none).
    func config(seccomp: UnsafePointer<csb_bpf>, networkNamespace: Int32 = -1) -> csb_spawn_config {
        csb_spawn_config(
            host_uid: hostUID, host_gid: hostGID, network: network, hostname: hostname,
            staging_dir: stagingDirectory, mounts: mounts, mount_count: mountCount,
            path: path, argv: argv, envp: envp, cwd: cwd, stdout_fd: stdout, stderr_fd: stderr,
            rlimits: limits, rlimit_count: limitCount, seccomp: seccomp, netns_fd: networkNamespace)
    }

    /// True when the two configurations make the same plan: every field
    /// the plan reads is equal (the seccomp program: the same object).
    static func same(_ a: SandboxConfiguration, _ b: SandboxConfiguration) -> Bool {
        a.mounts == b.mounts && a.executable == b.executable && a.arguments == b.arguments
            && a.environment.count == b.environment.count
            && zip(a.environment, b.environment).allSatisfy { $0.name == $1.name && $0.value == $1.value }
            && a.workingDirectory == b.workingDirectory && a.identity == b.identity && a.network == b.network
            && a.seccomp === b.seccomp && a.limits == b.limits && a.hostname == b.hostname
            && a.stagingDirectory == b.stagingDirectory
    }

    /// Refuses what the shim cannot take safely.
    static func validate(_ configuration: SandboxConfiguration) throws {
        let staging = configuration.stagingDirectory.string
        guard staging.hasPrefix("/"), !staging.contains(where: { ":,\\".contains($0) }) else {
            throw SandboxError(.invalidInput, "the staging directory must be absolute and hold no ':', ',' or '\\'",
                               path: staging)
        }
        guard configuration.executable.hasPrefix("/") else {
            throw SandboxError(.invalidInput, "the executable must be an absolute path inside the sandbox",
                               path: configuration.executable)
        }
        let exports = configuration.mounts.filter { if case .exportedTmpfs = $0.kind { true } else { false } }
        guard exports.count <= Int(CSB_MAX_EXPORTS) else {
            throw SandboxError(.invalidInput, "at most \(CSB_MAX_EXPORTS) exported filesystems")
        }
        /// Absolute, and no component is "." or ".." (over UTF-8 bytes, in
        /// one pass: no grapheme breaking, no array of components).
        func isPlainAbsolute(_ path: String) -> Bool {
            guard path.utf8.first == UInt8(ascii: "/") else { return false }
            var dots = 0          // dots since the last "/", -1 once anything else came
            for byte in path.utf8 {
                if byte == UInt8(ascii: "/") {
                    if dots == 1 || dots == 2 { return false }
                    dots = 0
                } else if byte == UInt8(ascii: "."), dots >= 0 {
                    dots += 1
                } else {
                    dots = -1
                }
            }
            return dots != 1 && dots != 2
        }
        for mount in configuration.mounts {
            if case let .rebind(source) = mount.kind, !isPlainAbsolute(source) {
                throw SandboxError(.invalidInput, "a rebind source must be absolute, without '.' or '..'", path: source)
            }
            guard isPlainAbsolute(mount.target) else {
                throw SandboxError(.invalidInput, "a mount target must be absolute, without '.' or '..'",
                                   path: mount.target)
            }
        }
        for entry in configuration.environment where entry.name.isEmpty || entry.name.contains("=") {
            throw SandboxError(.invalidInput, "an environment variable name is empty or holds '='", path: entry.name)
        }
        for text in configuration.arguments + configuration.environment.flatMap({ [$0.name, $0.value] })
        where text.utf8.contains(0) {
            throw SandboxError(.invalidInput, "an argument or environment value holds a NUL byte")
        }
    }

    private static func cMount(_ mount: Mount, _ arena: CArena) -> csb_mount {
        var m = csb_mount(kind: 0, flags: 0, attr: mount.attributes.rawValue, mode: 0, source: nil,
                          target: UnsafePointer(arena.string(String(mount.target.drop(while: { $0 == "/" })))),
                          link: nil, data: nil, data_length: 0, size: 0, mount_points: nil, mount_point_count: 0)
        switch mount.kind {
        case let .bind(source, options, mountPoints):
            m.kind = UInt32(CSB_MOUNT_BIND.rawValue)
            m.source = UnsafePointer(arena.string(source.string))
            m.flags = options.rawValue
            if !mountPoints.isEmpty {
                let points = arena.allocate(UnsafePointer<CChar>.self, count: mountPoints.count)
                for (index, point) in mountPoints.enumerated() { points[index] = UnsafePointer(arena.string(point)) }
                m.mount_points = UnsafePointer(points)
                m.mount_point_count = mountPoints.count
            }
        case let .tmpfs(size, mode):
            m.kind = UInt32(CSB_MOUNT_TMPFS.rawValue)
            m.size = size ?? 0
            m.mode = mode
        case .proc: m.kind = UInt32(CSB_MOUNT_PROC.rawValue)
        case .devpts: m.kind = UInt32(CSB_MOUNT_DEVPTS.rawValue)
        case .mqueue: m.kind = UInt32(CSB_MOUNT_MQUEUE.rawValue)
        case let .directory(mode):
            m.kind = UInt32(CSB_MOUNT_DIR.rawValue)
            m.mode = mode
        case let .symlink(destination):
            m.kind = UInt32(CSB_MOUNT_SYMLINK.rawValue)
            m.link = UnsafePointer(arena.string(destination))
        case let .file(contents, mode):
            m.kind = UInt32(CSB_MOUNT_FILE.rawValue)
            let data = arena.allocate(CChar.self, count: max(contents.count, 1))
            contents.withUnsafeBytes { UnsafeMutableRawPointer(data).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            m.data = UnsafePointer(data)
            m.data_length = contents.count
            m.mode = mode
        case let .mask(source):
            m.kind = UInt32(CSB_MOUNT_MASK.rawValue)
            m.source = UnsafePointer(arena.string(source.string))
        case .readOnly:
            m.kind = UInt32(CSB_MOUNT_READONLY.rawValue)
        case let .exportedTmpfs(size, mode):
            m.kind = UInt32(CSB_MOUNT_TMPFS.rawValue)
            m.flags = CSB_TMPFS_EXPORT
            m.size = size
            m.mode = mode
        case let .rebind(source):
            m.kind = UInt32(CSB_MOUNT_REBIND.rawValue)
            m.source = UnsafePointer(arena.string(source))
        }
        return m
    }

    /// The job's rlimits that do not depend on its cgroup (those that do
    /// come with the placement: `Supervisor.placedRlimits`).
    static func rlimits(_ limits: ResourceLimits) -> [csb_rlimit] {
        var result = [rlimit(CSB_RLIMIT_CORE, 0), rlimit(CSB_RLIMIT_NOFILE, limits.openFiles)]
        if let bytes = limits.fileSizeBytes { result.append(rlimit(CSB_RLIMIT_FSIZE, bytes)) }
        return result
    }

    static func rlimit(_ resource: csb_resource, _ soft: UInt64, hard: UInt64? = nil) -> csb_rlimit {
        csb_rlimit(resource: Int32(resource.rawValue), soft: soft, hard: hard ?? soft)
    }
}

/// C memory owned by one plan, freed with it.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for pointer in allocations { free(pointer) }
    }

    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(count, MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }

    func string(_ text: String) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(text)!
        allocations.append(UnsafeMutableRawPointer(copy))
        return copy
    }

    func stringArray(_ texts: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = allocate(UnsafeMutablePointer<CChar>?.self, count: texts.count + 1)
        for (index, text) in texts.enumerated() { array[index] = string(text) }
        array[texts.count] = nil
        return array
    }
}

extension NetworkPolicy {
    /// The shim's `enum csb_network` value.
    var cValue: UInt32 {
        switch self {
        case .none: UInt32(CSB_NET_NONE.rawValue)
        case .loopback: UInt32(CSB_NET_LOOPBACK.rawValue)
        case .host: UInt32(CSB_NET_HOST.rawValue)
        }
    }
}
