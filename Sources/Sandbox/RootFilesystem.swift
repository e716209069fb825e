import Glibc
import SystemPackage

/// The files the assembled root's /etc starts from (`rootfs/etc` in the
/// repository): written into the root's tmpfs, which is read-only once the
/// job runs.
public struct RootSkeleton: Sendable, Hashable {
    public struct File: Sendable, Hashable {
        public var path: String      // inside the sandbox, e.g. "/etc/passwd"
        public var contents: [UInt8]
        public var mode: UInt32
        public init(path: String, contents: [UInt8], mode: UInt32 = 0o644) {
            self.path = path
            self.contents = contents
            self.mode = mode
        }
    }
    public var files: [File]
    public init(files: [File]) { self.files = files }
}

/// Builds mount plans for the two kinds of root.
public enum RootFilesystem {
    /// Host paths below /etc that are public, and that programs need: the
    /// dynamic loader's cache, the alternatives links of Debian's /usr/bin,
    /// CA certificates, time zone, protocol and service names.
    public static let publicHostEtc = [
        "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
        "ssl", "ca-certificates", "protocols", "services", "os-release",
    ]

    /// Top-level host paths that are links into /usr on a merged-/usr system
    /// (recreated as the same links) or directories (bound read-only).
    public static let hostTopLevel = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]

    /// The assembled root: a tmpfs holding the skeleton's files, the host's
    /// /usr (and its top-level links) read-only, nosuid, nodev, a few public
    /// /etc files, then /proc, /dev and /tmp (see `kernelFilesystems`).
    public static func assembled(skeleton: RootSkeleton, network: NetworkPolicy, tmpBytes: UInt64,
                                 hostRoot: FilePath = "/") throws -> [Mount] {
        var plan: [Mount] = [.bind(hostRoot.appending("usr"), at: "/usr", options: [.recursive])]
        for name in hostTopLevel {
            plan += try mirror(hostRoot.appending(name), at: "/" + name)
        }
        for file in skeleton.files where !(network == .host && file.path == "/etc/resolv.conf") {
            plan.append(Mount(.file(contents: file.contents, mode: file.mode), at: file.path))
        }
        if network == .host {
            // The host's resolver configuration, by content: it is often a
            // link into /run, which the sandbox does not have.
            let resolv = (try? readSmallFile(hostRoot.appending("etc/resolv.conf"), limit: 64 << 10)) ?? []
            plan.append(Mount(.file(contents: resolv, mode: 0o644), at: "/etc/resolv.conf"))
        }
        for name in publicHostEtc {
            plan += try mirror(hostRoot.appending("etc").appending(name), at: "/etc/" + name)
        }
        plan += kernelFilesystems(tmpBytes: tmpBytes)
        return plan
    }

    /// A prepared root directory (debootstrap output, `docker export`)
    /// bound read-only as the root, then /proc, /dev and /tmp over it.
    /// `mountPoints` are further directories later mounts need (e.g. "job").
    public static func prepared(_ directory: FilePath, tmpBytes: UInt64, mountPoints: [String]) -> [Mount] {
        let points = ["proc", "dev", "tmp"] + mountPoints
        return [.bind(directory, at: "/", options: [.recursive], mountPoints: points)]
            + kernelFilesystems(tmpBytes: tmpBytes)
    }

    /// The sandbox's /proc (its kernel knobs read-only, the host kernel's
    /// files hidden: see `Mount.Kind.proc`), a minimal /dev, and a private,
    /// size-bounded /tmp.
    public static func kernelFilesystems(tmpBytes: UInt64) -> [Mount] {
        var plan: [Mount] = [Mount(.proc, at: "/proc", attributes: [.noSetuid, .noDevices, .noExec])]
        plan.append(Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: "/dev", attributes: [.noSetuid, .noExec]))
        for node in ["null", "zero", "full", "random", "urandom", "tty"] {
            plan.append(.bind(FilePath("/dev/" + node), at: "/dev/" + node, attributes: [.noSetuid, .noExec]))
        }
        plan.append(Mount(.devpts, at: "/dev/pts", attributes: [.noSetuid, .noExec]))
        plan.append(Mount(.symlink(destination: "pts/ptmx"), at: "/dev/ptmx"))
        plan.append(Mount(.tmpfs(sizeBytes: 64 << 20, mode: 0o1777), at: "/dev/shm",
                          attributes: [.noSetuid, .noDevices]))
        plan.append(Mount(.symlink(destination: "/proc/self/fd"), at: "/dev/fd"))
        for (index, name) in ["stdin", "stdout", "stderr"].enumerated() {
            plan.append(Mount(.symlink(destination: "/proc/self/fd/\(index)"), at: "/dev/" + name))
        }
        plan.append(Mount(.tmpfs(sizeBytes: tmpBytes, mode: 0o1777), at: "/tmp",
                          attributes: [.noSetuid, .noDevices]))
        return plan
    }

    /// The same thing at `target`: a symlink is recreated with its content,
    /// a small file (up to `copiedFileLimit`) is copied in, a directory or
    /// larger file is bound read-only; a missing path adds nothing.
    static func mirror(_ hostPath: FilePath, at target: String) throws -> [Mount] {
        var info = stat()
        guard lstat(hostPath.string, &info) == 0 else { return [] }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(hostPath.string, &buffer, buffer.count - 1)
            guard length > 0 else { return [] }
            return [Mount(.symlink(destination: String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)), at: target)]
        case S_IFDIR:
            return [.bind(hostPath, at: target, options: [.recursive])]
        case S_IFREG where info.st_size <= copiedFileLimit:
            // Small files by content, into the root's own tmpfs: a write in
            // PID 1's assembly instead of a bind mount (clone, attach).
            // One the runner cannot read (a bind needs no read access), or
            // that grew meanwhile, is bound as before.
            guard let contents = try? readSmallFile(hostPath, limit: copiedFileLimit + 1),
                  contents.count <= copiedFileLimit else { return [.bind(hostPath, at: target)] }
            return [Mount(.file(contents: contents, mode: UInt32(info.st_mode & 0o755)), at: target)]
        case S_IFREG:
            return [.bind(hostPath, at: target)]
        default:
            return []
        }
    }

    /// Host files up to this size are copied in rather than bound. Small:
    /// a copy travels through the runner (read, plan, memfd) and PID 1
    /// (written into the root's tmpfs), and since PID 1 starts at once
    /// (cpus.c) the runner's part is the launch's critical path. With
    /// 64 KiB, Debian's 36 KB /etc/ld.so.cache was copied; 4 KiB made a
    /// one-shot launch 10 % shorter (order-alternated A/B, 400 runs; 16 KiB:
    /// 9 %; nothing copied: as 4 KiB).
    static let copiedFileLimit = 4 << 10

    static func readSmallFile(_ path: FilePath, limit: Int) throws -> [UInt8] {
        let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        defer { try? fd.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while bytes.count < limit {
            let n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        return Array(bytes.prefix(limit))
    }
}
