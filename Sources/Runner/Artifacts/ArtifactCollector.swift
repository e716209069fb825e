import CSandbox
import Glibc
import Sandbox
import SystemPackage

/// Copies a finished job's outputs folder into `<results>/outputs/`.
///
/// The tree was written by the job, so it is treated as hostile; every
/// process of the job is dead by now, but nothing here relies on that:
///
/// - it is walked through directory descriptors only (`openat`,
///   `fstatat(AT_SYMLINK_NOFOLLOW)`, `getdents`), never by resolving a path
///   through names the job chose, and a symlink is never followed;
/// - only regular files and directories are copied; symlinks, FIFOs,
///   sockets and devices are listed in the report's `skipped` (a FIFO or
///   device is never even opened, and a file is opened `O_NONBLOCK` and
///   re-checked with fstat to be the regular file that was examined);
/// - names keep every byte and are created with `*at` calls under the
///   copy's own directory descriptors, so nothing lands outside it;
/// - the copy belongs to the invoking user; permission bits are kept,
///   setuid, setgid and sticky dropped, and the owner can always read and
///   delete what it got (directories at least 0700, files at least 0600);
/// - depth, entry count and the skipped list are bounded, and sparse files
///   stay sparse, so a crafted tree cannot hang or exhaust the runner;
/// - the copy is built under a hidden sibling of the destination and
///   swapped in with one `renameat2(RENAME_EXCHANGE)`: a reader sees the
///   old outputs or the new ones. On failure the partial copy is removed,
///   the old outputs stay, and a `SandboxError(.io)` says what failed.
public struct ArtifactCollector: Sendable {
    /// Directories deeper than this are created but not read (one
    /// `too_deep` entry each). Two descriptors are open per level.
    public var maxDepth: Int
    /// Entries examined (of any kind) before the walk stops with one
    /// `too_many_entries` entry.
    public var maxEntries: Int
    /// Skipped entries listed in the report; `skipped_count` has them all.
    public var maxSkippedListed: Int
    /// Names never collected, at any depth (reported as `withheld`): the
    /// daemon withholds `syft.pub.yaml`, since a permission file the job
    /// wrote into its outputs would govern who reads them.
    ///
    /// These name lists are arrays, not Sets: a handful of names, and the
    /// first copy of a Set<String> has the runtime instantiate its metadata
    /// by name, which checks String: Hashable by scanning every protocol
    /// conformance of the binary (0.6 ms of a one-shot run whose job wrote
    /// outputs).
    public var withheldNames: [String]

    /// Top-level files of the previous outputs that the new ones keep (hard
    /// links, when they are regular files): the daemon's permission file,
    /// so the outputs are never in place without it.
    public var keptNames: [String]

    /// The previous outputs, once swapped out, are removed with their
    /// freeing left to the process's exit (`TreeRemoval`): for a process
    /// that ends with the run (the one-shot CLI).
    public var freesAfterExit = false

    public init(maxDepth: Int = 128, maxEntries: Int = 100_000, maxSkippedListed: Int = 1000,
                withheldNames: [String] = [], keptNames: [String] = []) {
        self.maxDepth = maxDepth
        self.maxEntries = maxEntries
        self.maxSkippedListed = maxSkippedListed
        self.withheldNames = withheldNames
        self.keptNames = keptNames
    }

    /// Collects the tree under the directory `root` (e.g. the root of the
    /// job's outputs filesystem). The caller keeps `root`: it is neither
    /// closed nor moved (the walk reads through new open descriptions).
    public func collect(from root: FileDescriptor, into destination: FilePath) throws -> ArtifactReport {
        var info = stat()
        guard fstat(root.rawValue, &info) == 0 else {
            throw SandboxError(.io, "cannot examine the outputs to collect", errno: Errno(rawValue: errno))
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw SandboxError(.io, "the outputs to collect are not a directory")
        }
        if info.st_mode & 0o500 != 0o500, geteuid() != 0, info.st_uid == geteuid() {
            _ = fchmod(root.rawValue, info.st_mode & 0o7777 | 0o500)
        }
        let source = openat(root.rawValue, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard source >= 0 else {
            throw SandboxError(.io, "cannot open the outputs to collect", errno: Errno(rawValue: errno))
        }
        defer { close(source) }
        return try collect(source: source, info: info, into: destination, describedAs: "the outputs folder")
    }

    /// Collects the directory at `staging`. Its last component must be a
    /// real directory (a symlink there is refused, not followed); the
    /// components before it are the runner's own and resolve as usual.
    public func collect(from staging: FilePath, into destination: FilePath) throws -> ArtifactReport {
        let (parent, name) = try Self.openParent(of: staging, purpose: "the outputs to collect")
        defer { close(parent) }
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw SandboxError(.io, "cannot find the outputs to collect", path: staging.string,
                               errno: Errno(rawValue: errno))
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw SandboxError(.io, "the outputs to collect are not a directory"
                               + (info.st_mode & S_IFMT == S_IFLNK ? " (a symlink)" : ""), path: staging.string)
        }
        if info.st_mode & 0o500 != 0o500, geteuid() != 0, info.st_uid == geteuid() {
            _ = fchmodat(parent, name, info.st_mode & 0o7777 | 0o500, AT_SYMLINK_NOFOLLOW)
        }
        let source = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard source >= 0 else {
            throw SandboxError(.io, "cannot open the outputs to collect", path: staging.string,
                               errno: Errno(rawValue: errno))
        }
        defer { close(source) }
        var opened = stat()
        guard fstat(source, &opened) == 0, opened.st_dev == info.st_dev, opened.st_ino == info.st_ino else {
            throw SandboxError(.io, "the outputs to collect changed while being opened", path: staging.string)
        }
        return try collect(source: source, info: opened, into: destination, describedAs: staging.string)
    }

    /// Removes the tree at `path` without following any symlink in it (a
    /// link to a directory outside is removed, the directory is not
    /// touched), giving unreadable directories back to their owner first.
    /// Nothing to do when `path` does not exist. The components before the
    /// last are resolved as usual: they are the caller's.
    public static func removeTree(_ path: FilePath) throws {
        let parent: CInt
        let name: [CChar]
        do {
            (parent, name) = try openParent(of: path, purpose: "the folder to remove")
        } catch let error as SandboxError where error.errno == .noSuchFileOrDirectory {
            return
        }
        defer { close(parent) }
        do {
            try TreeRemoval.remove(name, in: parent)
        } catch {
            throw SandboxError(.io, "cannot \(error.operation) \(ArtifactReport.displayPath(error.path))",
                               path: path.removingLastComponent().string, errno: error.errno)
        }
    }

    // MARK: Copy and swap

    private func collect(source: CInt, info: stat, into destination: FilePath,
                         describedAs sourceName: String) throws -> ArtifactReport {
        let (parent, name) = try Self.openParent(of: destination, purpose: "the results folder")
        defer { close(parent) }
        // The previous outputs, when they are a real directory (-1: none).
        let previous = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        defer { if previous >= 0 { close(previous) } }
        if previous >= 0, alreadyHolds(nothingFrom: source, mode: info.st_mode & 0o777 | 0o700, previous: previous) {
            return ArtifactReport()
        }
        let partial = try Self.createHiddenDirectory(in: parent, for: name, destination: destination)
        let walk = ArtifactWalk(self)
        do {
            let copy = openat(parent, partial, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard copy >= 0 else {
                throw ArtifactWalk.Failure(operation: "open the new outputs folder", path: [],
                                           errno: Errno(rawValue: errno))
            }
            defer { close(copy) }
            try walk.copyContents(of: source, into: copy, path: [], depth: 0)
            guard fchmod(copy, info.st_mode & 0o777 | 0o700) == 0 else {
                throw ArtifactWalk.Failure(operation: "set the mode of", path: [], errno: Errno(rawValue: errno))
            }
            var times = [info.st_atim, info.st_mtim]
            _ = futimens(copy, &times)
            if previous >= 0 { keepPrevious(from: previous, into: copy) }
            try Self.swap(partial, into: name, in: parent, destination: destination)
        } catch {
            try? TreeRemoval.remove(partial, in: parent)
            if let failure = error as? ArtifactWalk.Failure {
                let what = failure.path.isEmpty ? "" : " \"\(ArtifactReport.displayPath(failure.path))\""
                throw SandboxError(.io, "collecting \(sourceName) failed: cannot \(failure.operation)\(what)",
                                   path: destination.string, errno: failure.errno,
                                   hint: "the previous outputs (if any) were left in place")
            }
            throw error
        }
        // The old outputs now sit at the hidden name. The new ones are in
        // place, so a failure to remove the old ones must not fail the run.
        try? TreeRemoval.remove(partial, in: parent, freesAfterExit: freesAfterExit)
        return walk.report
    }

    /// True when there is nothing to collect and the previous outputs (of
    /// the copy's `mode`) hold only kept files: the copy would come out the
    /// same, so the folder is left as it is (no new directory, no swap;
    /// only its times stay the previous ones).
    private func alreadyHolds(nothingFrom source: CInt, mode: mode_t, previous: CInt) -> Bool {
        guard (try? DirectoryEntries.hasEntries(source)) == false else { return false }
        var folder = stat()
        guard fstat(previous, &folder) == 0, folder.st_mode & 0o7777 == mode, folder.st_uid == geteuid() else { return false }
        var onlyKept = true
        do {
            try DirectoryEntries.forEach(in: previous) { entry in
                let name = String(decoding: DirectoryEntries.bytes(entry), as: UTF8.self)
                onlyKept = keptNames.contains(name) && Self.isRegularFile(name, in: previous)
                return onlyKept
            }
        } catch {
            return false
        }
        return onlyKept
    }

    /// Links `keptNames` of the previous outputs into the copy; a name that
    /// is missing, not a regular file or cannot be linked is left out (the
    /// caller writes its own then).
    private func keepPrevious(from previous: CInt, into copy: CInt) {
        for kept in keptNames where Self.isRegularFile(kept, in: previous) {
            _ = linkat(previous, kept, copy, kept, 0)
        }
    }

    private static func isRegularFile(_ name: String, in directory: CInt) -> Bool {
        var info = stat()
        return fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    /// Puts the finished copy `partial` at `name`. With RENAME_EXCHANGE the
    /// two names swap in one step whatever `name` was (a directory, or a
    /// symlink that is then removed as a link, never followed); without an
    /// old entry, a rename that refuses to replace. Filesystems without
    /// renameat2 flags get two renames: the old entry moved aside, then the
    /// new one moved in; afterwards the old entry is at `partial` either way.
    private static func swap(_ partial: [CChar], into name: [CChar], in parent: CInt,
                             destination: FilePath) throws {
        func failure(_ error: Errno) -> SandboxError {
            SandboxError(.io, "cannot move the collected outputs into place", path: destination.string, errno: error)
        }
        for _ in 0..<8 {
            if csb_renameat2(parent, partial, parent, name, CSB_RENAME_EXCHANGE) == 0 { return }
            if errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP { break }
            guard errno == ENOENT else { throw failure(Errno(rawValue: errno)) }
            // No old outputs: move in, unless one appeared meanwhile.
            if csb_renameat2(parent, partial, parent, name, CSB_RENAME_NOREPLACE) == 0 { return }
            if errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP { break }
            guard errno == EEXIST else { throw failure(Errno(rawValue: errno)) }
        }
        var old = stat()
        guard fstatat(parent, name, &old, AT_SYMLINK_NOFOLLOW) == 0 else {
            guard renameat(parent, partial, parent, name) == 0 else { throw failure(Errno(rawValue: errno)) }
            return
        }
        let aside = try createHiddenName(in: parent, for: name, destination: destination, directory: false)
        guard renameat(parent, name, parent, aside) == 0 else { throw failure(Errno(rawValue: errno)) }
        guard renameat(parent, partial, parent, name) == 0 else {
            let error = Errno(rawValue: errno)
            _ = renameat(parent, aside, parent, name)
            throw failure(error)
        }
        guard renameat(parent, aside, parent, partial) == 0 else {
            try? TreeRemoval.remove(aside, in: parent)
            return
        }
    }

    /// `.<name>.partial-<random>`: a fresh empty directory (0700) next to
    /// the destination, on the same filesystem so the swap is a rename.
    private static func createHiddenDirectory(in parent: CInt, for name: [CChar],
                                              destination: FilePath) throws -> [CChar] {
        try createHiddenName(in: parent, for: name, destination: destination, directory: true)
    }

    private static func createHiddenName(in parent: CInt, for name: [CChar], destination: FilePath,
                                         directory: Bool) throws -> [CChar] {
        let base = DirectoryEntries.bytes(name)
        for _ in 0..<16 {
            let suffix = String(UInt64.random(in: .min ... .max), radix: 16)
            let hidden = Array(([0x2E] + base + Array(".partial-\(suffix)".utf8)).map { CChar(bitPattern: $0) }) + [0]
            if directory {
                if mkdirat(parent, hidden, 0o700) == 0 { return hidden }
                guard errno == EEXIST else {
                    throw SandboxError(.io, "cannot create the folder for the collected outputs",
                                       path: destination.string, errno: Errno(rawValue: errno))
                }
            } else {
                var existing = stat()
                if fstatat(parent, hidden, &existing, AT_SYMLINK_NOFOLLOW) != 0, errno == ENOENT { return hidden }
            }
        }
        throw SandboxError(.io, "cannot find a free temporary name", path: destination.string, errno: .fileExists)
    }

    /// The directory holding `path` (opened normally: it is the runner's)
    /// and `path`'s last component as a NUL-terminated name, which must be
    /// a plain name (not "." or "..").
    private static func openParent(of path: FilePath, purpose: String) throws -> (CInt, [CChar]) {
        guard let (directoryPath, last) = FileSystem.splitLastComponent(path) else {
            throw SandboxError(.invalidInput, "not a usable path for \(purpose)", path: path.string)
        }
        let name = last.utf8CString.map { $0 }
        let fd = open(directoryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SandboxError(.io, "cannot open the folder of \(purpose)", path: directoryPath,
                               errno: Errno(rawValue: errno))
        }
        return (fd, name)
    }
}
