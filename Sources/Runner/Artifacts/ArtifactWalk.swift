import CSandbox
import Glibc
import Sandbox
import SystemPackage

/// One collection: walks the job's tree through descriptors and builds the
/// copy under a destination directory descriptor. The rules (what is
/// copied, the limits) are `ArtifactCollector`'s; this is the mechanics.
final class ArtifactWalk {
    /// What failed, on which relative path (raw bytes), with which errno.
    struct Failure: Error {
        var operation: String
        var path: [UInt8]
        var errno: Errno
    }

    private let limits: ArtifactCollector
    private(set) var report = ArtifactReport()
    private var entries = 0
    private var stopped = false
    private let euid = geteuid()
    /// Cleared after the first EXDEV, ENOSYS or EINVAL: copy_file_range
    /// between two filesystems (the outputs tmpfs and the results disk)
    /// fails on every file, so one failure is enough to know.
    private var copyFileRangeWorks = true
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)

    init(_ limits: ArtifactCollector) {
        self.limits = limits
    }

    deinit { buffer.deallocate() }

    // MARK: Directories

    /// Copies the contents of `source` (a directory at `depth`, the outputs
    /// folder being 0) into `destination`, an empty directory.
    func copyContents(of source: CInt, into destination: CInt, path: [UInt8], depth: Int) throws {
        do {
            try DirectoryEntries.forEach(in: source) { name in
                let childPath = path.isEmpty ? DirectoryEntries.bytes(name)
                                             : path + [0x2F] + DirectoryEntries.bytes(name)
                entries += 1
                if entries > limits.maxEntries {
                    stopped = true
                    skip(.tooManyEntries, childPath, "more than \(limits.maxEntries) entries: this one and the "
                         + "rest of the tree were not collected", always: true)
                    return false
                }
                guard DirectoryEntries.isSafe(name) else {
                    skip(.unknown, childPath, "the name is not a safe file name")
                    return true
                }
                if !limits.withheldNames.isEmpty,
                   limits.withheldNames.contains(String(decoding: DirectoryEntries.bytes(name), as: UTF8.self)) {
                    skip(.withheld, childPath, "this name is withheld: the owner's, not the job's, to write")
                    return true
                }
                try copyEntry(name, path: childPath, from: source, into: destination, depth: depth + 1)
                return !stopped
            }
        } catch let error as Errno {
            throw Failure(operation: "read the directory", path: path, errno: error)
        }
    }

    private func copyEntry(_ name: [CChar], path: [UInt8], from source: CInt, into destination: CInt,
                           depth: Int) throws {
        var info = stat()
        guard fstatat(source, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            let error = Errno(rawValue: errno)
            guard error == .permissionDenied || error == .noSuchFileOrDirectory else {
                throw Failure(operation: "stat", path: path, errno: error)
            }
            return skip(.unreadable, path, "cannot be examined (\(error.symbolicName))")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: try copyFile(name, path: path, info: info, from: source, into: destination)
        case S_IFDIR: try copyDirectory(name, path: path, info: info, from: source, into: destination, depth: depth)
        case S_IFLNK: skip(.symlink, path, "symbolic links are not collected")
        case S_IFIFO: skip(.fifo, path, "FIFOs are not collected")
        case S_IFSOCK: skip(.socket, path, "sockets are not collected")
        case S_IFBLK: skip(.blockDevice, path, "device nodes are not collected")
        case S_IFCHR: skip(.charDevice, path, "device nodes are not collected")
        default: skip(.unknown, path, "unknown file type")
        }
    }

    private func copyDirectory(_ name: [CChar], path: [UInt8], info: stat, from source: CInt, into destination: CInt,
                               depth: Int) throws {
        guard let child = try openSource(name, path: path, info: info, in: source, flags: O_DIRECTORY) else { return }
        defer { close(child) }
        guard mkdirat(destination, name, 0o700) == 0 else {
            throw Failure(operation: "create the directory", path: path, errno: Errno(rawValue: errno))
        }
        let copy = openat(destination, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard copy >= 0 else {
            throw Failure(operation: "open the new directory", path: path, errno: Errno(rawValue: errno))
        }
        defer { close(copy) }
        report.directories += 1
        if depth >= limits.maxDepth {
            let nonEmpty: Bool
            do { nonEmpty = try DirectoryEntries.hasEntries(child) } catch let error as Errno {
                throw Failure(operation: "read the directory", path: path, errno: error)
            }
            if nonEmpty {
                skip(.tooDeep, path, "\(limits.maxDepth) levels deep: its contents were not collected")
            }
        } else {
            try copyContents(of: child, into: copy, path: path, depth: depth)
        }
        try finish(copy, mode: info.st_mode & 0o777 | 0o700, info: info, path: path)
    }

    // MARK: Files

    private func copyFile(_ name: [CChar], path: [UInt8], info: stat, from source: CInt,
                          into destination: CInt) throws {
        guard let input = try openSource(name, path: path, info: info, in: source, flags: O_NONBLOCK) else { return }
        defer { close(input) }
        let output = openat(destination, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else {
            throw Failure(operation: "create the file", path: path, errno: Errno(rawValue: errno))
        }
        var closed = false
        defer { if !closed { close(output) } }
        let size = Int64(info.st_size)
        try copyData(from: input, to: output, size: size, path: path)
        try finish(output, mode: info.st_mode & 0o777 | 0o600, info: info, path: path)
        closed = true
        guard close(output) == 0 else {
            throw Failure(operation: "write the file", path: path, errno: Errno(rawValue: errno))
        }
        report.files += 1
        report.bytes += UInt64(max(size, 0))
    }

    /// Copies the data regions of a file, leaving its holes as holes: a
    /// sparse file of a terabyte in a small tmpfs must not become a terabyte
    /// on the results disk. Then sets the size, which makes a trailing hole.
    private func copyData(from input: CInt, to output: CInt, size: Int64, path: [UInt8]) throws {
        var offset: Int64 = 0
        while offset < size {
            let dataStart = lseek(input, off_t(offset), CSB_SEEK_DATA)
            var dataEnd = size
            if dataStart < 0 {
                if errno == ENXIO { break }  // only a hole is left
                guard errno == EINVAL || errno == EOPNOTSUPP else {
                    throw Failure(operation: "read the file", path: path, errno: Errno(rawValue: errno))
                }
                // A filesystem without SEEK_DATA: all of it is data.
                try copyRange(from: input, to: output, start: offset, end: size, path: path)
                break
            }
            let start = Int64(dataStart)
            let hole = lseek(input, dataStart, CSB_SEEK_HOLE)
            if hole >= 0 { dataEnd = min(Int64(hole), size) }
            guard start < dataEnd else { break }
            let copied = try copyRange(from: input, to: output, start: start, end: dataEnd, path: path)
            if copied < dataEnd { break }  // the file shrank
            offset = dataEnd
        }
        guard ftruncate(output, off_t(size)) == 0 else {
            throw Failure(operation: "write the file", path: path, errno: Errno(rawValue: errno))
        }
    }

    /// Copies bytes [start, end); returns where it stopped (short at EOF).
    @discardableResult
    private func copyRange(from input: CInt, to output: CInt, start: Int64, end: Int64,
                           path: [UInt8]) throws -> Int64 {
        var inputOffset = start
        var outputOffset = start
        while copyFileRangeWorks, inputOffset < end {
            let count = csb_copy_file_range(input, &inputOffset, output, &outputOffset, Int(min(end - inputOffset, 1 << 30)))
            if count > 0 { continue }
            if count == 0 { return inputOffset }
            switch errno {
            case EINTR: continue
            case EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EBADF, EPERM, ETXTBSY: copyFileRangeWorks = false
            default: throw Failure(operation: "copy the file", path: path, errno: Errno(rawValue: errno))
            }
        }
        while inputOffset < end {
            let want = Int(min(Int64(buffer.count), end - inputOffset))
            let count = pread(input, buffer.baseAddress, want, off_t(inputOffset))
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "read the file", path: path, errno: Errno(rawValue: errno))
            }
            if count == 0 { return inputOffset }
            var written = 0
            while written < count {
                let result = pwrite(output, buffer.baseAddress! + written, count - written,
                                    off_t(outputOffset) + off_t(written))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw Failure(operation: "write the file", path: path, errno: Errno(rawValue: errno))
                }
                written += result
            }
            inputOffset += Int64(count)
            outputOffset += Int64(count)
        }
        return inputOffset
    }

    // MARK: Shared

    /// Opens a job's file or directory for reading: by name relative to
    /// its directory, `O_NOFOLLOW`, and re-checked with fstat to be the very
    /// regular file or directory `fstatat` saw (same device and inode).
    /// When the job took the read permission away and the runner owns the
    /// entry (not root: the job's files are the caller's), the permission
    /// is given back by a chmod that does not follow symlinks.
    /// Returns nil (and reports the entry) for what is not to be read.
    private func openSource(_ name: [CChar], path: [UInt8], info: stat, in parent: CInt,
                            flags: CInt) throws -> CInt? {
        let isDirectory = flags & O_DIRECTORY != 0
        let needed: mode_t = isDirectory ? 0o500 : 0o400
        let ownedByCaller = euid != 0 && info.st_uid == euid
        let giveBack = { _ = fchmodat(parent, name, info.st_mode & 0o7777 | needed, AT_SYMLINK_NOFOLLOW) }
        var changedMode = false
        if ownedByCaller, info.st_mode & needed != needed {
            giveBack()
            changedMode = true
        }
        let openFlags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags
        var fd = openat(parent, name, openFlags)
        if fd < 0, errno == EACCES || errno == EPERM, !changedMode, euid == 0 || ownedByCaller {
            giveBack()
            fd = openat(parent, name, openFlags)
        }
        guard fd >= 0 else {
            let error = Errno(rawValue: errno)
            switch error {
            case .permissionDenied, .notPermitted:
                skip(.unreadable, path, "cannot be opened (\(error.symbolicName))")
            case .tooManySymbolicLinkLevels:
                skip(.symlink, path, "symbolic links are not collected")
            case .noSuchFileOrDirectory, .notDirectory, .noSuchAddressOrDevice, .resourceTemporarilyUnavailable:
                skip(.unknown, path, "changed while being collected")
            default:
                throw Failure(operation: isDirectory ? "open the directory" : "open the file", path: path,
                              errno: error)
            }
            return nil
        }
        var opened = stat()
        guard fstat(fd, &opened) == 0 else {
            let error = Errno(rawValue: errno)
            close(fd)
            throw Failure(operation: "stat", path: path, errno: error)
        }
        guard opened.st_dev == info.st_dev, opened.st_ino == info.st_ino,
              opened.st_mode & S_IFMT == info.st_mode & S_IFMT else {
            close(fd)
            skip(.unknown, path, "changed while being collected")
            return nil
        }
        // Readable but not searchable: entries could be listed, not opened.
        if isDirectory, ownedByCaller, opened.st_mode & needed != needed {
            _ = fchmod(fd, opened.st_mode & 0o7777 | needed)
        }
        return fd
    }

    /// Mode and times of a finished copy (after its contents, which would
    /// change a directory's mtime).
    private func finish(_ fd: CInt, mode: mode_t, info: stat, path: [UInt8]) throws {
        guard fchmod(fd, mode) == 0 else {
            throw Failure(operation: "set the mode of", path: path, errno: Errno(rawValue: errno))
        }
        var times = [info.st_atim, info.st_mtim]
        guard futimens(fd, &times) == 0 else {
            throw Failure(operation: "set the times of", path: path, errno: Errno(rawValue: errno))
        }
    }

    /// Records a skipped entry; past the list's cap only the count grows.
    /// `always` is for the one entry-limit summary, which must be visible.
    func skip(_ kind: ArtifactReport.Skipped.Kind, _ path: [UInt8], _ reason: String, always: Bool = false) {
        report.skippedCount += 1
        if always || report.skipped.count < limits.maxSkippedListed {
            report.skipped.append(.init(path: ArtifactReport.displayPath(path), kind: kind, reason: reason))
        }
    }
}
