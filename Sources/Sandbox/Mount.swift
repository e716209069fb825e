import SystemPackage

/// One step of the mount plan that assembles the sandbox's root, executed in
/// order by the C shim inside the new mount namespace.
///
/// Targets are absolute paths inside the sandbox. Sources are host paths
/// and must be canonical (no symlink on the path): the shim opens them with
/// `RESOLVE_NO_SYMLINKS`, so a symlink makes the mount fail, never redirects it.
public struct Mount: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// Bind a host path. `mountPoints` are directories (relative to the
        /// bind) that later mounts need; when one is missing from the source,
        /// the shim puts a read-only overlay holding it over the source.
        case bind(source: FilePath, options: BindOptions, mountPoints: [String])
        /// A fresh tmpfs of `sizeBytes` (nil: kernel default) and root `mode`.
        case tmpfs(sizeBytes: UInt64?, mode: UInt32)
        /// A procfs of the sandbox's PID namespace, its kernel knobs
        /// (sys, sysrq-trigger, irq, bus, fs) read-only and the host
        /// kernel's files (kcore, kmsg, keys, kallsyms, timer_list, acpi, …)
        /// hidden, as Docker and runc do: the shim's proc.c holds the lists.
        /// With `[.noSetuid, .noDevices, .noExec]` (the assembled root's),
        /// PID 1 has made it before the plan came, while it waited.
        case proc
        case devpts
        case mqueue
        case directory(mode: UInt32)
        case symlink(destination: String)
        case file(contents: [UInt8], mode: UInt32)
        /// Hide an existing path: an empty read-only directory over a
        /// directory, `source` (normally /dev/null) over anything else.
        case mask(source: FilePath)
        /// Make `target`, a path inside an existing mount, a read-only mount.
        case readOnly
        /// A tmpfs of `sizeBytes` whose root the caller keeps after the job
        /// (`SandboxResult.exported`): the job's outputs, size-bounded,
        /// charged to the job's memory, never on the host's disk.
        case exportedTmpfs(sizeBytes: UInt64, mode: UInt32)
        /// Bind `source`, a path inside the sandbox mounted earlier in the
        /// plan, at the target too.
        case rebind(source: String)
    }

    public struct BindOptions: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Bind the whole subtree, submounts included.
        public static let recursive = BindOptions(rawValue: 0x1)
        /// Show files the invoking root owns as owned by the sandbox's root
        /// (an idmapped mount); falls back to a plain bind when impossible.
        public static let idmap = BindOptions(rawValue: 0x2)
        /// Skip the mount when the source does not exist.
        public static let optional = BindOptions(rawValue: 0x4)
    }

    /// Mount attributes (the kernel's MOUNT_ATTR_*).
    public struct Attributes: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readOnly = Attributes(rawValue: 0x1)
        public static let noSetuid = Attributes(rawValue: 0x2)
        public static let noDevices = Attributes(rawValue: 0x4)
        public static let noExec = Attributes(rawValue: 0x8)
        /// Read-only, no setuid, no devices: what every host path gets.
        public static let hostReadOnly: Attributes = [.readOnly, .noSetuid, .noDevices]
    }

    public var target: String
    public var kind: Kind
    public var attributes: Attributes

    public init(_ kind: Kind, at target: String, attributes: Attributes = []) {
        self.kind = kind
        self.target = target
        self.attributes = attributes
    }

    public static func bind(_ source: FilePath, at target: String, attributes: Attributes = .hostReadOnly,
                            options: BindOptions = [], mountPoints: [String] = []) -> Mount {
        Mount(.bind(source: source, options: options, mountPoints: mountPoints), at: target, attributes: attributes)
    }
}
