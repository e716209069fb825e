import CSandbox
import Glibc
import SystemPackage

/// Removes a directory tree through descriptors, for trees a job wrote.
///
/// Never follows a symlink: entries are told apart by
/// `fstatat(AT_SYMLINK_NOFOLLOW)`, directories are opened with
/// `O_NOFOLLOW | O_DIRECTORY`, and everything else (symlinks included) is
/// unlinked by name, so a link to a directory outside leaves that directory
/// and its files alone. Directories the job made unreadable or unwritable
/// (mode 000) are given back to their owner with a chmod before they are
/// read. Depth is unbounded (a job can nest directories far beyond
/// PATH_MAX) yet descriptors and stack are not: below `heldLevels` levels a
/// subdirectory is renamed up to the top of the tree and removed from there.
///
/// `freesAfterExit`: for a process that ends with the removal's caller (the
/// one-shot CLI). On ext4 the last reference to an unlinked file or
/// removed directory frees its inode and blocks there and then (measured:
/// 40-290 µs a file, ~0.2 ms the top directory); its descriptor is handed
/// to the exit's helper instead (csb_exit_close_later, a few of them), and
/// the freeing happens after the process's caller was told.
enum TreeRemoval {
    static let heldLevels = 32

    struct Failure: Error {
        var operation: String
        var path: [UInt8]
        var errno: Errno
    }

    /// Removes `name` (NUL-terminated) in `parent`, whatever it is; nothing
    /// when it does not exist.
    static func remove(_ name: [CChar], in parent: CInt, freesAfterExit: Bool = false) throws(Failure) {
        try Removal(freesAfterExit: freesAfterExit).remove(name, in: parent)
    }

    /// One removal: what it opens is closed, or handed to the exit's helper.
    private struct Removal {
        let freesAfterExit: Bool

        func remove(_ name: [CChar], in parent: CInt) throws(Failure) {
            var info = stat()
            guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { return }
                throw Failure(operation: "stat", path: DirectoryEntries.bytes(name), errno: Errno(rawValue: errno))
            }
            let path = DirectoryEntries.bytes(name)
            guard info.st_mode & S_IFMT == S_IFDIR else {
                guard unlink(name, in: parent) else {
                    throw Failure(operation: "remove", path: path, errno: Errno(rawValue: errno))
                }
                return
            }
            let top = try openForRemoval(name, in: parent, info: info, path: path)
            defer { release(top) }
            var counter = 0
            try empty(top, depth: 1, top: top, path: path, counter: &counter)
            guard unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                throw Failure(operation: "remove the directory", path: path, errno: Errno(rawValue: errno))
            }
        }

        /// Closes `fd`, or leaves it to the exit's helper (when it has room).
        private func release(_ fd: CInt) {
            if fd >= 0, !freesAfterExit || csb_exit_close_later(fd) != 0 { close(fd) }
        }

        /// Unlinks anything but a directory, held open meanwhile when its
        /// freeing is to come after the exit.
        private func unlink(_ name: [CChar], in directory: CInt) -> Bool {
            let held = freesAfterExit ? openat(directory, name, CSB_O_PATH | O_NOFOLLOW | O_CLOEXEC) : -1
            let unlinked = unlinkat(directory, name, 0) == 0 || errno == ENOENT
            let saved = errno
            release(held)
            errno = saved
            return unlinked
        }

        /// Removes everything in `directory` (at `depth`, the top being 1).
        /// Passes repeat until one finds nothing: readdir need not return
        /// entries added while it runs, such as directories moved up into
        /// the top. Every entry a pass sees is removed or the removal
        /// throws, so the passes end.
        private func empty(_ directory: CInt, depth: Int, top: CInt, path: [UInt8],
                           counter: inout Int) throws(Failure) {
            while true {
                var sawEntries = false
                do {
                    try DirectoryEntries.forEach(in: directory) { name in
                        sawEntries = true
                        try removeEntry(name, in: directory, depth: depth, top: top, path: path, counter: &counter)
                        return true
                    }
                } catch let failure as Failure {
                    throw failure
                } catch {
                    throw Failure(operation: "read the directory", path: path,
                                  errno: (error as? Errno) ?? .ioError)
                }
                if !sawEntries { return }
            }
        }

        private func removeEntry(_ name: [CChar], in directory: CInt, depth: Int, top: CInt, path: [UInt8],
                                 counter: inout Int) throws(Failure) {
            let childPath = path + [0x2F] + DirectoryEntries.bytes(name)
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { return }
                throw Failure(operation: "stat", path: childPath, errno: Errno(rawValue: errno))
            }
            guard info.st_mode & S_IFMT == S_IFDIR else {
                guard unlink(name, in: directory) else {
                    throw Failure(operation: "remove", path: childPath, errno: Errno(rawValue: errno))
                }
                return
            }
            if depth >= heldLevels {
                try moveToTop(name, from: directory, info: info, top: top, path: childPath, counter: &counter)
                return
            }
            let child = try openForRemoval(name, in: directory, info: info, path: childPath)
            defer { release(child) }
            try empty(child, depth: depth + 1, top: top, path: childPath, counter: &counter)
            guard unlinkat(directory, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                throw Failure(operation: "remove the directory", path: childPath, errno: Errno(rawValue: errno))
            }
        }
    }

    /// Opens a directory to empty it, making it readable, searchable and
    /// writable for its owner first when it is not.
    private static func openForRemoval(_ name: [CChar], in parent: CInt, info: stat,
                                       path: [UInt8]) throws(Failure) -> CInt {
        if info.st_mode & 0o700 != 0o700 {
            // Through an O_PATH descriptor in glibc: fails on a symlink
            // rather than following it. Errors show up at the open below.
            _ = fchmodat(parent, name, 0o700, AT_SYMLINK_NOFOLLOW)
        }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(operation: "open the directory", path: path, errno: Errno(rawValue: errno))
        }
        var opened = stat()
        if fstat(fd, &opened) == 0, opened.st_mode & 0o700 != 0o700 {
            _ = fchmod(fd, 0o700)
        }
        return fd
    }

    /// Renames a deep directory into the top of the tree under a fresh
    /// hidden name; a later pass over the top removes it from there.
    private static func moveToTop(_ name: [CChar], from directory: CInt, info: stat, top: CInt, path: [UInt8],
                                  counter: inout Int) throws(Failure) {
        // Moving a directory rewrites its "..": its owner needs write access.
        if info.st_mode & 0o700 != 0o700 { _ = fchmodat(directory, name, 0o700, AT_SYMLINK_NOFOLLOW) }
        for _ in 0..<100 {
            counter += 1
            let target = Array(".removing-\(counter)-\(UInt32.random(in: .min ... .max))".utf8CString)
            var moved = csb_renameat2(directory, name, top, target, CSB_RENAME_NOREPLACE)
            if moved != 0, errno == EINVAL || errno == ENOSYS {
                moved = renameWithoutReplacing(name, from: directory, to: target, in: top)
            }
            if moved == 0 { return }
            if errno != EEXIST {
                throw Failure(operation: "move up the deep directory", path: path, errno: Errno(rawValue: errno))
            }
        }
        throw Failure(operation: "move up the deep directory", path: path, errno: .fileExists)
    }

    private static func renameWithoutReplacing(_ name: [CChar], from directory: CInt, to target: [CChar],
                                               in top: CInt) -> CInt {
        var existing = stat()
        if fstatat(top, target, &existing, AT_SYMLINK_NOFOLLOW) == 0 {
            errno = EEXIST
            return -1
        }
        return renameat(directory, name, top, target)
    }
}
