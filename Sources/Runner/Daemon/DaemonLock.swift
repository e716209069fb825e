import Glibc
import Sandbox
import SystemPackage

extension SandboxError.Code {
    /// Another daemon already serves this SyftBox folder.
    public static let alreadyRunning = Self(rawValue: "already_running")
}

/// One daemon per SyftBox folder and owner: an exclusive flock(2) on a file
/// in the state folder, held for the daemon's life. The kernel drops it
/// when the process dies, however it dies, so a stale lock never blocks a
/// restart after kill -9. The file holds the owner's pid, for the message.
public final class DaemonLock: @unchecked Sendable {
    public let path: FilePath
    private let descriptor: FileDescriptor

    public init(_ path: FilePath) throws(SandboxError) {
        let fd = open(path.string, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw SandboxError(.io, "cannot open the daemon's lock file", path: path.string, errno: Errno(rawValue: errno))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = Errno(rawValue: errno)
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            guard error == .wouldBlock else {
                throw SandboxError(.io, "cannot lock the daemon's lock file", path: path.string, errno: error)
            }
            let holder = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n").first : nil
            throw SandboxError(.alreadyRunning,
                               "another daemon\(holder.map { " (pid \($0))" } ?? "") already serves this folder",
                               path: path.string, hint: "stop it first, or give this one another --state-dir")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, text, text.count, 0)
        self.path = path
        descriptor = FileDescriptor(rawValue: fd)
    }

    deinit { try? descriptor.close() }
}
