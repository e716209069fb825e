import CSandbox
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Sandbox
import SystemPackage

extension SandboxError.Code {
    /// The job folder is missing, unreadable or lacks run.sh.
    public static let invalidJob = Self(rawValue: "invalid_job")
    /// The results folder cannot be written.
    public static let resultsNotWritable = Self(rawValue: "results_not_writable")
}

/// Small filesystem helpers that speak `SandboxError`.
enum FileSystem {
    /// The canonical absolute path (every symlink resolved), as the shim
    /// needs for mount sources.
    static func canonical(_ path: FilePath) throws -> FilePath {
        guard let resolved = realpath(path.string, nil) else {
            let error = Errno(rawValue: errno)
            throw SandboxError(.invalidInput, "cannot resolve", path: path.string, errno: error)
        }
        defer { free(resolved) }
        return FilePath(String(cString: resolved))
    }

    static func lstatKind(_ path: FilePath) -> mode_t? {
        var info = stat()
        guard lstat(path.string, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    static func isDirectory(_ path: FilePath) -> Bool { lstatKind(path) == S_IFDIR }

    /// Reads at most `limit` bytes of a regular file (never a FIFO or device).
    static func readRegularFile(_ path: FilePath, limit: Int) throws -> [UInt8] {
        let fd = try errnoWrapped(path) {
            try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .noFollow, .nonBlocking])
        }
        defer { try? fd.close() }
        var info = stat()
        guard fstat(fd.rawValue, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw SandboxError(.invalidInput, "not a regular file", path: path.string)
        }
        guard info.st_size <= limit else {
            throw SandboxError(.invalidInput, "file larger than \(limit) bytes", path: path.string)
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = try bytes.withUnsafeMutableBytes { buffer in
            try errnoWrapped(path) { try fd.read(into: buffer) }
        }
        return Array(bytes.prefix(count))
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same
    /// directory, then rename. Readers see the old file or the new one.
    /// `durable` adds an fsync before the rename, for files that must
    /// survive a power loss as well (the daemon's state), at the cost of a
    /// journal commit each.
    static func writeAtomically(_ bytes: [UInt8], to path: FilePath, mode: mode_t = 0o644,
                                durable: Bool = true) throws {
        let pending = try PendingFile(for: path, suffix: String(UInt32.random(in: .min ... .max)), mode: mode)
        try pending.finish(writing: bytes, durable: durable)
    }

    /// A file `writeAtomically` is writing: its temporary file, created
    /// (`init`: possibly well before the bytes are known), then written and
    /// renamed over the target (`finish`), or removed (`discard`). Its
    /// descriptor is closed once, whichever of the two comes first and
    /// however often they are called: a second close would close whatever
    /// file took the number meanwhile (in the daemon, another job's).
    final class PendingFile {
        let target: FilePath
        let temporary: FilePath
        let descriptor: FileDescriptor
        private(set) var isOpen = true

        /// Creates `<target>.tmp-<suffix>`, which must not exist.
        init(for target: FilePath, suffix: String, mode: mode_t = 0o644) throws {
            let temporary = FilePath(target.string + ".tmp-" + suffix)
            descriptor = try errnoWrapped(temporary) {
                try FileDescriptor.open(temporary, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                        permissions: FilePermissions(rawValue: mode))
            }
            self.target = target
            self.temporary = temporary
        }

        /// Writes `bytes`, fsyncs them when `durable`, closes the file and
        /// replaces the target with it. On failure the temporary file is gone.
        func finish(writing bytes: [UInt8], durable: Bool) throws {
            guard isOpen else {
                throw SandboxError(.internalError, "a temporary file was finished after it was closed", path: temporary.string,
                                   hint: "a defect of syft-sandbox-run; please report it")
            }
            do {
                try errnoWrapped(temporary) { try writeAll(bytes, to: descriptor) }
                guard !durable || fsync(descriptor.rawValue) == 0 else {
                    throw SandboxError(.io, "fsync", path: temporary.string, errno: Errno(rawValue: errno))
                }
            } catch {
                discard()
                throw error
            }
            // Closed once, whatever close says (the number may be reused at once).
            isOpen = false
            do {
                try errnoWrapped(temporary) { try descriptor.close() }
                try replace(target, with: temporary)
            } catch {
                unlink(temporary.string)
                throw error
            }
        }

        /// Closes and removes the temporary file, unless it was closed
        /// already (finished, or discarded before).
        func discard() {
            guard isOpen else { return }
            isOpen = false
            try? descriptor.close()
            unlink(temporary.string)
        }
    }

    /// Writes all of `bytes` at the descriptor's offset. (FileDescriptor's
    /// own writeAll is generic code that, on its first use, scans every
    /// protocol conformance of the binary: 40 µs of a one-shot run.)
    static func writeAll(_ bytes: [UInt8], to fd: FileDescriptor) throws(Errno) {
        if let failure = bytes.withUnsafeBytes({ write(all: $0, to: fd.rawValue) }) { throw failure }
    }

    /// Writes all of `buffer` at the descriptor's offset, retrying after
    /// EINTR; the errno of a failed write, else nil.
    static func write(all buffer: UnsafeRawBufferPointer, to fd: CInt) -> Errno? {
        var done = 0
        while done < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return Errno(rawValue: errno)
            }
            done += n
        }
        return nil
    }

    /// The folder and the last component of `path`, split at its last "/"
    /// over UTF-8 (FilePath's removingLastComponent is generic code that
    /// scans the binary's protocol conformances on first use: 0.1 ms of a
    /// one-shot run). nil when the last component is empty, "." or "..".
    static func splitLastComponent(_ path: FilePath) -> (folder: String, name: String)? {
        let text = path.string
        let bytes = Array(text.utf8)
        let slash = bytes.lastIndex(of: UInt8(ascii: "/"))
        let nameBytes = slash.map { bytes[($0 + 1)...] } ?? bytes[...]
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard !name.isEmpty, name != ".", name != ".." else { return nil }
        guard let slash else { return (".", name) }
        return (slash == 0 ? "/" : String(decoding: bytes[..<slash], as: UTF8.self), name)
    }

    /// mkdir -p: creates `path` and its missing parents with `mode`.
    /// From the end: the folder usually exists (one mkdir, EEXIST), else
    /// its missing parents are made first.
    static func makeDirectories(_ path: FilePath, mode: mode_t = 0o755) throws {
        if mkdir(path.string, mode) == 0 || errno == EEXIST { return }
        let parent = path.removingLastComponent()
        guard errno == ENOENT, !parent.isEmpty, parent != path else {
            throw SandboxError(.io, "cannot create the folder", path: path.string, errno: Errno(rawValue: errno))
        }
        try makeDirectories(parent, mode: mode)
        if mkdir(path.string, mode) != 0, errno != EEXIST {
            throw SandboxError(.io, "cannot create the folder", path: path.string, errno: Errno(rawValue: errno))
        }
    }

    /// Puts the file at `source` in the place of `target`, atomically:
    /// readers see the old file or the new one. rename(2) does it, but on
    /// ext4 replacing a file by rename starts the writeback of the new one
    /// and frees the old one's blocks inside the call (the replace-via-
    /// rename heuristic, auto_da_alloc): 0.3-0.4 ms a file, measured. The
    /// two names are exchanged instead, and the old file, now at `source`,
    /// unlinked. Like rename(2), it refuses to put a file over a folder;
    /// an old file that cannot be unlinked stays under the temporary name,
    /// which `ResultsFolder.sweepLeftovers` removes. The price: a power loss
    /// in the next seconds may leave the new file empty, where ext4 would
    /// have written its data before the rename's journal commit. Files
    /// that must survive one are fsynced first (`writeAtomically`'s
    /// `durable`: the daemon's results and state), which makes that moot.
    static func replace(_ target: FilePath, with source: FilePath) throws {
        guard csb_renameat2(AT_FDCWD, source.string, AT_FDCWD, target.string, CSB_RENAME_EXCHANGE) == 0 else {
            // ENOENT: nothing to replace; EINVAL: no exchange on this filesystem.
            return try rename(source, to: target)
        }
        if unlink(source.string) == 0 || errno != EISDIR { return }
        // `target` was a folder: put it back and fail as rename(2) would.
        _ = csb_renameat2(AT_FDCWD, source.string, AT_FDCWD, target.string, CSB_RENAME_EXCHANGE)
        throw SandboxError(.io, "rename \(source.string) to", path: target.string, errno: .isDirectory)
    }

    static func rename(_ from: FilePath, to: FilePath) throws {
        guard Glibc.rename(from.string, to.string) == 0 else {
            throw SandboxError(.io, "rename \(from.string) to", path: to.string, errno: Errno(rawValue: errno))
        }
    }

    /// Runs `body`, turning swift-system's `Errno` into a `SandboxError` on `path`.
    static func errnoWrapped<T>(_ path: FilePath, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as Errno {
            throw SandboxError(.io, "cannot access", path: path.string, errno: error)
        }
    }

    /// A second name for the file `source` (a hard link), or a copy of it
    /// when the two are on different filesystems. `target` must not exist.
    static func linkOrCopy(_ source: FilePath, to target: FilePath) throws {
        if link(source.string, target.string) == 0 { return }
        guard errno == EXDEV || errno == EPERM || errno == EMLINK else {
            throw SandboxError(.io, "cannot link \(source.string) to", path: target.string, errno: Errno(rawValue: errno))
        }
        let input = open(source.string, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else {
            throw SandboxError(.io, "cannot read", path: source.string, errno: Errno(rawValue: errno))
        }
        defer { close(input) }
        let output = open(target.string, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else {
            throw SandboxError(.io, "cannot create", path: target.string, errno: Errno(rawValue: errno))
        }
        defer { close(output) }
        while true {
            let copied = csb_copy_file_range(input, nil, output, nil, 1 << 30)
            if copied == 0 { return }
            if copied < 0 {
                if errno == EINTR { continue }
                throw SandboxError(.io, "cannot copy \(source.string) to", path: target.string, errno: Errno(rawValue: errno))
            }
        }
    }
}
