import Crypto
import Glibc
import Sandbox
import SystemPackage

extension SandboxError.Code {
    /// A submission changed while it was being read (the sync engine may
    /// still be writing it): to be checked again later, not rejected.
    public static let submissionUnstable = Self(rawValue: "submission_unstable")
}

/// Bounds on what one submission may hold, so that a crafted inbox folder
/// cannot exhaust the daemon's memory, disk or time.
public struct SubmissionLimits: Sendable, Hashable {
    /// run.sh and config.yaml each (config.yaml is read into memory).
    public var maxControlFileBytes: Int
    /// The sizes of all files together.
    public var maxTotalBytes: Int64
    /// Files and folders, the top-level three included.
    public var maxEntries: Int
    /// Folders below the job folder (`code` is 1); a descriptor is open
    /// per level during a walk, two when copying.
    public var maxDepth: Int

    public init(maxControlFileBytes: Int = 4 << 20, maxTotalBytes: Int64 = 256 << 20, maxEntries: Int = 10_000,
                maxDepth: Int = 64) {
        self.maxControlFileBytes = maxControlFileBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxEntries = maxEntries
        self.maxDepth = maxDepth
    }
}

/// SHA-256 over a submission's tree, to pin the code that was received
/// (and approved) to the code that runs.
///
/// The entries are `code/` and everything in it, `config.yaml` and
/// `run.sh` (`syft.pub.yaml` is not part of the submission), each named by
/// its path relative to the job folder (`code/lib/a.py`, raw name bytes,
/// `/` between components). The hash input is the 22 bytes
/// `syftbox-submission-v1` and a NUL, then for each entry in bytewise order
/// of its path:
///
/// - one kind byte: `d` (0x64) for a folder, `f` (0x66) for a regular file;
/// - the path's length in bytes, 8 bytes big-endian, then the path;
/// - for a file only: its size, 8 bytes big-endian, then the SHA-256 of
///   its contents (32 bytes).
///
/// Every field is either fixed-size or length-prefixed and the kind byte
/// says whether content follows, so the input decodes back to exactly one
/// tree: two different trees (a changed byte, a renamed file, bytes moved
/// from one file to another, an empty folder added) hash alike only
/// through a SHA-256 collision. Hashing each file's digest rather than its
/// bytes lets one walk in directory order produce the entries, sorted
/// afterwards, without keeping files open. Permission bits and times are
/// not included: sync engines do not keep them reliably, and they do not
/// change what the reviewed code says.
public struct SubmissionFingerprint: Sendable, Hashable, CustomStringConvertible {
    /// 32 bytes.
    public var digest: [UInt8]

    public init(digest: [UInt8]) { self.digest = digest }

    /// From 64 hex digits (either case).
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        digest = bytes
    }

    /// Lowercase hex, as approval rules list fingerprints.
    public var hex: String {
        digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    public var description: String { hex }
}

/// A submission that passed the receipt checks.
public struct Submission: Sendable, Hashable {
    public var metadata: SubmissionMetadata
    public var fingerprint: SubmissionFingerprint
    /// Regular files, run.sh and config.yaml included.
    public var files: Int
    /// Folders, `code` included.
    public var directories: Int
    /// The files' sizes together.
    public var bytes: Int64

    public init(metadata: SubmissionMetadata, fingerprint: SubmissionFingerprint, files: Int, directories: Int,
                bytes: Int64) {
        self.metadata = metadata
        self.fingerprint = fingerprint
        self.files = files
        self.directories = directories
        self.bytes = bytes
    }

    /// The entries a job folder must hold, and nothing else.
    public static let requiredEntries = ["code", "config.yaml", "run.sh"]
    /// The permission file that may sit beside them; never read.
    public static let permissionFile = "syft.pub.yaml"
}

/// The outcome of checking one inbox job folder.
public enum SubmissionCheck: Sendable, Hashable {
    case valid(Submission)
    /// A sentence for the owner and the submitter (`review_reason`).
    case rejected(reason: String)
}

/// What a job folder looked like at one scan (names, kinds, sizes, times,
/// inodes; no contents), to tell a folder the sync engine is still
/// filling from one that is complete: equal signatures from two scans
/// some seconds apart, with nothing missing, mean nothing moved between
/// them.
public struct CompletenessSignature: Sendable, Hashable {
    /// SHA-256 over the entries' paths and `lstat` fields.
    public var digest: [UInt8]
    /// Entries seen (past the entry limit the walk stops, and says so in
    /// the digest).
    public var entries: Int
    /// Which of `code`, `config.yaml`, `run.sh` are not there (by name,
    /// whatever their kind).
    public var missing: [String]

    /// All three required entries exist. Whether they are of the right
    /// kind is for the check to say, with a reason.
    public var hasRequiredEntries: Bool { missing.isEmpty }
}

extension Submission {
    // MARK: Checks

    /// Checks the job folder at `folder` (its last component must be a real
    /// folder, not a link; the ones before it resolve as usual). See
    /// `check(_: FileDescriptor, limits:)`.
    public static func check(_ folder: FilePath, limits: SubmissionLimits = SubmissionLimits()) throws
        -> SubmissionCheck
    {
        guard let fd = try SubmissionWalk.openFolder(folder) else {
            return .rejected(reason: "the job folder is a symbolic link, not a folder")
        }
        defer { close(fd) }
        return try check(FileDescriptor(rawValue: fd), limits: limits)
    }

    /// Checks a job folder opened by the caller (e.g. with
    /// `SyftBoxLayout.openInboxFolder(of:)`): it must hold exactly `code/`
    /// (a real folder), `run.sh` and `config.yaml` (regular files; a
    /// `syft.pub.yaml` beside them is ignored), within `limits`, with only
    /// regular files and folders anywhere below (a symlink, FIFO, socket or
    /// device node is a rejection naming its path, and is never opened),
    /// and config.yaml must parse. Everything is read through descriptors,
    /// without following links, and hashed in the same pass.
    ///
    /// Throws `submissionUnstable` when a file changed while being read
    /// (check again later), `io` when the folder cannot be read at all.
    public static func check(_ folder: FileDescriptor, limits: SubmissionLimits = SubmissionLimits()) throws
        -> SubmissionCheck
    {
        let walk = SubmissionWalk(limits: limits, keepConfig: true)
        do {
            try walk.walk(folder.rawValue)
        } catch let rejection as SubmissionWalk.Rejection {
            return .rejected(reason: rejection.reason)
        }
        let metadata: SubmissionMetadata
        do {
            metadata = try SubmissionMetadata.parse(walk.config)
        } catch let error as SandboxError {
            return .rejected(reason: error.message)
        }
        return .valid(Submission(metadata: metadata, fingerprint: walk.fingerprint, files: walk.files,
                                 directories: walk.directories, bytes: walk.bytes))
    }

    /// The fingerprint of the job folder at `folder` (last component not
    /// followed). Throws `invalidSubmission` with the reason when the folder
    /// is not a well-formed submission, `submissionUnstable` when it
    /// changed while being read.
    public static func fingerprint(of folder: FilePath, limits: SubmissionLimits = SubmissionLimits()) throws
        -> SubmissionFingerprint
    {
        guard let fd = try SubmissionWalk.openFolder(folder) else {
            throw SandboxError(.invalidSubmission, "the job folder is a symbolic link, not a folder",
                               path: folder.string)
        }
        defer { close(fd) }
        do {
            return try fingerprint(of: FileDescriptor(rawValue: fd), limits: limits)
        } catch var error as SandboxError {
            error.path = error.path ?? folder.string
            throw error
        }
    }

    /// The fingerprint of a job folder opened by the caller.
    public static func fingerprint(of folder: FileDescriptor, limits: SubmissionLimits = SubmissionLimits()) throws
        -> SubmissionFingerprint
    {
        let walk = SubmissionWalk(limits: limits, keepConfig: false)
        do {
            try walk.walk(folder.rawValue)
        } catch let rejection as SubmissionWalk.Rejection {
            throw SandboxError(.invalidSubmission, rejection.reason)
        }
        return walk.fingerprint
    }

    // MARK: Completeness

    /// The signature of the job folder at `folder` now; nil when there is
    /// no such folder (or it is not a real one). Never reads contents and
    /// never rejects: a symlink or FIFO inside is part of the signature
    /// like anything else, and the check says what is wrong with it later.
    public static func completenessSignature(of folder: FilePath,
                                             limits: SubmissionLimits = SubmissionLimits()) throws
        -> CompletenessSignature?
    {
        let fd: CInt?
        do {
            fd = try SubmissionWalk.openFolder(folder)
        } catch let error as SandboxError where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return nil
        }
        guard let fd else { return nil }
        defer { close(fd) }
        return try completenessSignature(of: FileDescriptor(rawValue: fd), limits: limits)
    }

    /// The signature of a job folder opened by the caller.
    public static func completenessSignature(of folder: FileDescriptor,
                                             limits: SubmissionLimits = SubmissionLimits()) throws
        -> CompletenessSignature
    {
        var hasher = SHA256()
        var entries = 0
        var top: Set<String> = []
        func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) } }
        func number(_ value: Int64) { add(SubmissionWalk.bigEndian(UInt64(bitPattern: value))) }

        func visit(_ directory: CInt, path: [UInt8], depth: Int) throws {
            var names: [[CChar]] = []
            do {
                try DirectoryEntries.forEach(in: directory) { name in
                    names.append(name)
                    return true
                }
            } catch let error as Errno {
                throw SandboxError(.io, "cannot read the folder \(SubmissionWalk.display(path))", errno: error)
            }
            for name in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                let raw = DirectoryEntries.bytes(name)
                if depth == 0 {
                    if raw == Array(Submission.permissionFile.utf8) { continue }
                    top.insert(String(decoding: raw, as: UTF8.self))
                }
                entries += 1
                if entries > limits.maxEntries {
                    add(Array("too many entries".utf8))
                    return
                }
                let childPath = path.isEmpty ? raw : path + [0x2F] + raw
                var info = stat()
                guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                    // Gone meanwhile: that is a change too.
                    number(-1)
                    continue
                }
                number(Int64(childPath.count))
                add(childPath)
                for field in [Int64(info.st_mode), Int64(info.st_size), Int64(info.st_ino), Int64(info.st_dev),
                              Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
                              Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)] {
                    number(field)
                }
                guard info.st_mode & S_IFMT == S_IFDIR, depth < limits.maxDepth else { continue }
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else {
                    number(-2)
                    continue
                }
                defer { close(child) }
                try visit(child, path: childPath, depth: depth + 1)
                if entries > limits.maxEntries { return }
            }
        }
        try visit(folder.rawValue, path: [], depth: 0)
        let missing = Submission.requiredEntries.filter { !top.contains($0) }
        return CompletenessSignature(digest: Array(hasher.finalize()), entries: entries, missing: missing)
    }
}

extension SyftBoxLayout {
    /// Opens a job's inbox folder for `Submission.check` and
    /// `SubmissionSnapshot.create`: `inbox/` as usual (the owner's), then
    /// every component below it `O_NOFOLLOW`, so a submitter folder or
    /// protocol folder swapped for a symlink since the scan cannot lead
    /// the check elsewhere. Throws `invalidSubmission` when a component is
    /// a symlink or not a folder, `io` (with ENOENT) when it is gone.
    public func openInboxFolder(of job: InboxJob) throws -> FileDescriptor {
        var fd = open(inbox.string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SandboxError(.io, "cannot open the inbox", path: inbox.string, errno: Errno(rawValue: errno))
        }
        var path = inbox
        for component in job.relativePath.components {
            path.append(component)
            let next = component.withPlatformString { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            let error = Errno(rawValue: errno)
            close(fd)
            guard next >= 0 else {
                if error == .tooManySymbolicLinkLevels || error == .notDirectory {
                    throw SandboxError(.invalidSubmission, "not a folder (a symbolic link?)", path: path.string,
                                       errno: error)
                }
                throw SandboxError(.io, "cannot open", path: path.string, errno: error)
            }
            fd = next
        }
        return FileDescriptor(rawValue: fd)
    }
}

// MARK: - The walk

/// One pass over a submission through descriptors: checks the shape and
/// the limits, hashes every file, and, for a snapshot, copies each
/// regular file and folder into a parallel tree as it goes.
final class SubmissionWalk {
    /// The submission is not acceptable; `reason` says why, for the owner.
    struct Rejection: Error {
        var reason: String
    }

    private let limits: SubmissionLimits
    private let keepConfig: Bool
    /// The copy's root, for a snapshot.
    private let copyRoot: CInt?
    private(set) var config: [UInt8] = []
    private(set) var files = 0
    private(set) var directories = 0
    private(set) var bytes: Int64 = 0
    private var entries: [(path: [UInt8], kind: UInt8, size: Int64, digest: [UInt8])] = []
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)

    init(limits: SubmissionLimits, keepConfig: Bool, copyInto copyRoot: CInt? = nil) {
        self.limits = limits
        self.keepConfig = keepConfig
        self.copyRoot = copyRoot
    }

    deinit { buffer.deallocate() }

    /// Opens the folder at `path`: its parent as usual, its last component
    /// `O_NOFOLLOW`. Nil when that component is a symlink (which Linux
    /// reports as ENOTDIR under `O_DIRECTORY`, hence the lstat).
    static func openFolder(_ path: FilePath) throws -> CInt? {
        let fd = Glibc.open(path.string, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let error = Errno(rawValue: errno)
            var info = stat()
            if error == .tooManySymbolicLinkLevels
                || (error == .notDirectory && lstat(path.string, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK) {
                return nil
            }
            throw SandboxError(.io, "cannot open the job folder", path: path.string, errno: error)
        }
        return fd
    }

    var fingerprint: SubmissionFingerprint {
        var hasher = SHA256()
        func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) } }
        add(Array("syftbox-submission-v1".utf8) + [0])
        for entry in entries.sorted(by: { $0.path.lexicographicallyPrecedes($1.path) }) {
            add([entry.kind])
            add(Self.bigEndian(UInt64(entry.path.count)))
            add(entry.path)
            if entry.kind == Self.fileKind {
                add(Self.bigEndian(UInt64(entry.size)))
                add(entry.digest)
            }
        }
        return SubmissionFingerprint(digest: Array(hasher.finalize()))
    }

    static let directoryKind = UInt8(ascii: "d")
    static let fileKind = UInt8(ascii: "f")

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    static func display(_ path: [UInt8]) -> String { ArtifactReport.displayPath(path) }

    // MARK: Top level

    func walk(_ folder: CInt) throws {
        let names = try sortedNames(folder, path: [])
        let required = Submission.requiredEntries.map { Array($0.utf8) }
        let extras = names.map(DirectoryEntries.bytes).filter {
            !required.contains($0) && $0 != Array(Submission.permissionFile.utf8)
        }
        if !extras.isEmpty {
            let listed = extras.prefix(3).map { "\"\(Self.display($0))\"" }.joined(separator: ", ")
                + (extras.count > 3 ? " and \(extras.count - 3) more" : "")
            throw Rejection(reason: "the submission holds \(listed), which \(extras.count == 1 ? "is" : "are") not "
                            + "allowed: a submission holds exactly code/, run.sh and config.yaml")
        }
        for name in Submission.requiredEntries where !names.map(DirectoryEntries.bytes).contains(Array(name.utf8)) {
            throw Rejection(reason: "the submission has no \(name == "code" ? "code/ folder" : name)")
        }
        var infos: [String: stat] = [:]
        for name in Submission.requiredEntries {
            var info = stat()
            guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw unstable(Array(name.utf8)) }
            let kind = info.st_mode & S_IFMT
            if name == "code" {
                guard kind == S_IFDIR else { throw Rejection(reason: "code is \(Self.describe(kind)), not a folder") }
            } else {
                guard kind == S_IFREG else {
                    throw Rejection(reason: "\(name) is \(Self.describe(kind)), not a regular file")
                }
                guard info.st_size <= limits.maxControlFileBytes else {
                    throw Rejection(reason: "\(name) is larger than \(Self.size(Int64(limits.maxControlFileBytes)))")
                }
            }
            infos[name] = info
        }
        // In bytewise order: "code" < "config.yaml" < "run.sh".
        var count = 0
        for name in Submission.requiredEntries {
            let cName = Array(name.utf8CString)
            try visit(cName, info: infos[name]!, in: folder, copyParent: copyRoot, path: Array(name.utf8), depth: 1,
                      count: &count)
        }
    }

    // MARK: Entries

    private func visit(_ name: [CChar], info known: stat?, in parent: CInt, copyParent: CInt?, path: [UInt8],
                       depth: Int, count: inout Int) throws {
        count += 1
        if count > limits.maxEntries {
            throw Rejection(reason: "the submission holds more than \(limits.maxEntries) files and folders")
        }
        guard DirectoryEntries.isSafe(name) else {
            throw Rejection(reason: "\(Self.display(path)) does not have a usable file name")
        }
        var info = stat()
        if let known {
            info = known
        } else if fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) != 0 {
            let error = Errno(rawValue: errno)
            if error == .noSuchFileOrDirectory { throw unstable(path) }
            if error == .permissionDenied {
                throw Rejection(reason: "\(Self.display(path)) cannot be examined (EACCES)")
            }
            throw SandboxError(.io, "cannot examine \(Self.display(path)) in the submission", errno: error)
        }
        let kind = info.st_mode & S_IFMT
        switch kind {
        case S_IFREG:
            try copyFile(name, info: info, in: parent, copyParent: copyParent, path: path)
        case S_IFDIR:
            guard depth <= limits.maxDepth else {
                throw Rejection(reason: "\(Self.display(path)) is nested more than \(limits.maxDepth) folders deep")
            }
            try directory(name, info: info, in: parent, copyParent: copyParent, path: path, depth: depth,
                          count: &count)
        default:
            throw Rejection(reason: "\(Self.display(path)) is \(Self.describe(kind)); a submission may hold only "
                            + "regular files and folders")
        }
    }

    private func directory(_ name: [CChar], info: stat, in parent: CInt, copyParent: CInt?, path: [UInt8],
                           depth: Int, count: inout Int) throws {
        let fd = try open(name, info: info, in: parent, path: path, flags: O_DIRECTORY)
        defer { close(fd) }
        var copy: CInt?
        if let copyParent {
            guard mkdirat(copyParent, name, 0o700) == 0 else {
                throw SandboxError(.io, "cannot create \(Self.display(path)) in the snapshot", errno: Errno(rawValue: errno))
            }
            let opened = openat(copyParent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard opened >= 0 else {
                throw SandboxError(.io, "cannot open \(Self.display(path)) in the snapshot", errno: Errno(rawValue: errno))
            }
            copy = opened
        }
        defer { if let copy { close(copy) } }
        directories += 1
        entries.append((path: path, kind: Self.directoryKind, size: 0, digest: []))
        for child in try sortedNames(fd, path: path) {
            try visit(child, info: nil, in: fd, copyParent: copy, path: path + [0x2F] + DirectoryEntries.bytes(child),
                      depth: depth + 1, count: &count)
        }
        if let copy, fchmod(copy, 0o755) != 0 {
            throw SandboxError(.io, "cannot set the mode of \(Self.display(path)) in the snapshot",
                               errno: Errno(rawValue: errno))
        }
    }

    /// Reads (and hashes, and copies) a regular file; exactly `st_size`
    /// bytes must come, or it changed while being read.
    private func copyFile(_ name: [CChar], info: stat, in parent: CInt, copyParent: CInt?, path: [UInt8]) throws {
        let size = Int64(info.st_size)
        bytes += size
        if bytes > limits.maxTotalBytes {
            throw Rejection(reason: "the submission's files total more than \(Self.size(limits.maxTotalBytes))")
        }
        let input = try open(name, info: info, in: parent, path: path, flags: O_NONBLOCK)
        defer { close(input) }
        var output: CInt = -1
        if let copyParent {
            let mode: mode_t = info.st_mode & 0o111 != 0 ? 0o755 : 0o644
            output = openat(copyParent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard output >= 0 else {
                throw SandboxError(.io, "cannot create \(Self.display(path)) in the snapshot", errno: Errno(rawValue: errno))
            }
            _ = fchmod(output, mode)
        }
        defer { if output >= 0 { close(output) } }
        let keep = keepConfig && path == Array("config.yaml".utf8)
        var hasher = SHA256()
        var total: Int64 = 0
        while true {
            // One byte past the size: enough to see that the file grew.
            let want = Int(min(Int64(buffer.count), size - total + 1))
            let count = read(input, buffer.baseAddress, want)
            if count < 0 {
                if errno == EINTR { continue }
                throw SandboxError(.io, "cannot read \(Self.display(path)) in the submission", errno: Errno(rawValue: errno))
            }
            if count == 0 { break }
            total += Int64(count)
            if total > size { throw unstable(path) }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
            hasher.update(bufferPointer: chunk)
            if keep { config += chunk }
            if output >= 0 { try writeAll(output, chunk, path: path) }
        }
        guard total == size else { throw unstable(path) }
        files += 1
        entries.append((path: path, kind: Self.fileKind, size: size, digest: Array(hasher.finalize())))
    }

    private func writeAll(_ fd: CInt, _ chunk: UnsafeRawBufferPointer, path: [UInt8]) throws {
        if let failure = FileSystem.write(all: chunk, to: fd) {
            throw SandboxError(.io, "cannot write \(Self.display(path)) in the snapshot", errno: failure)
        }
    }

    /// Opens an entry `O_NOFOLLOW` and checks with fstat that it is the very
    /// file or folder examined (same device, inode and kind): a swap in
    /// between is a change, not something to follow.
    private func open(_ name: [CChar], info: stat, in parent: CInt, path: [UInt8], flags: CInt) throws -> CInt {
        let fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags)
        guard fd >= 0 else {
            let error = Errno(rawValue: errno)
            switch error {
            case .permissionDenied, .notPermitted:
                throw Rejection(reason: "\(Self.display(path)) cannot be read (\(error.symbolicName))")
            case .tooManySymbolicLinkLevels, .noSuchFileOrDirectory, .notDirectory, .noSuchAddressOrDevice:
                throw unstable(path)
            default:
                throw SandboxError(.io, "cannot open \(Self.display(path)) in the submission", errno: error)
            }
        }
        var opened = stat()
        guard fstat(fd, &opened) == 0 else {
            let error = Errno(rawValue: errno)
            close(fd)
            throw SandboxError(.io, "cannot examine \(Self.display(path)) in the submission", errno: error)
        }
        guard opened.st_dev == info.st_dev, opened.st_ino == info.st_ino,
              opened.st_mode & S_IFMT == info.st_mode & S_IFMT else {
            close(fd)
            throw unstable(path)
        }
        return fd
    }

    private func sortedNames(_ directory: CInt, path: [UInt8]) throws -> [[CChar]] {
        var names: [[CChar]] = []
        do {
            try DirectoryEntries.forEach(in: directory) { name in
                names.append(name)
                if names.count > limits.maxEntries { return false }
                return true
            }
        } catch let error as Errno {
            if error == .permissionDenied {
                throw Rejection(reason: "\(path.isEmpty ? "the job folder" : Self.display(path)) cannot be read (EACCES)")
            }
            throw SandboxError(.io, "cannot read \(path.isEmpty ? "the job folder" : Self.display(path))", errno: error)
        }
        if names.count > limits.maxEntries {
            throw Rejection(reason: "the submission holds more than \(limits.maxEntries) files and folders")
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private func unstable(_ path: [UInt8]) -> SandboxError {
        SandboxError(.submissionUnstable, "\(Self.display(path)) changed while the submission was being read",
                     hint: "the sync engine may still be writing it; check it again later")
    }

    static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFREG: "a regular file"
        case S_IFDIR: "a folder"
        case S_IFLNK: "a symbolic link"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFBLK, S_IFCHR: "a device node"
        default: "of an unknown file type"
        }
    }

    /// "4 MiB", "256 MiB", "1000 bytes".
    static func size(_ bytes: Int64) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}
