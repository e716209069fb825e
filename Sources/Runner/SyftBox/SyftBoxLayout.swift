import Glibc
import Sandbox
import SystemPackage

extension SandboxError.Code {
    /// The SyftBox folder or the owner's email cannot be used.
    public static let invalidSyftBox = Self(rawValue: "invalid_syftbox")
}

/// The on-disk job protocol of one job, read off its path (syft-job's
/// `JobRef.protocol_version`): protocol 0 (syft-job <= 0.1.38) keeps jobs
/// flat under the submitter's folder, protocol 1 under a `v1` segment.
public enum JobProtocol: Int, Sendable, Hashable, CustomStringConvertible {
    case v0 = 0
    case v1 = 1

    /// The folder between the submitter's folder and the job's: none for
    /// protocol 0, `v1` for protocol 1 (syft-job's `protocol_dir_name`).
    public var segment: String? {
        switch self {
        case .v0: nil
        case .v1: "v1"
        }
    }

    public var description: String { "protocol \(rawValue)" }
}

/// One job folder in the owner's inbox. Every field comes from the path
/// (as syft-job's `JobRef` does), never from the submitter's files. The
/// names are single path components as `SyftBoxLayout.scanInbox` returns
/// them; the paths built from them assume so.
public struct InboxJob: Sendable, Hashable, CustomStringConvertible {
    /// The submitter: the name of its folder under `inbox/`.
    public var submitter: String
    /// The job's folder name.
    public var name: String
    public var protocolVersion: JobProtocol

    public init(submitter: String, name: String, protocolVersion: JobProtocol) {
        self.submitter = submitter
        self.name = name
        self.protocolVersion = protocolVersion
    }

    /// `DS/v1/JOB` or `DS/JOB`: the same below `inbox/` and `review/`
    /// (syft-job's `get_job_submission_dir` and `get_review_job_dir`).
    public var relativePath: FilePath {
        var path = FilePath(submitter)
        if let segment = protocolVersion.segment { path.append(segment) }
        path.append(name)
        return path
    }

    public var description: String { relativePath.string }
}

/// What one scan of the inbox found: the job folders, and the entries that
/// looked like submitter or job folders but were passed over, with why.
public struct InboxScan: Sendable, Hashable {
    public struct Skipped: Sendable, Hashable, CustomStringConvertible {
        /// Relative to `inbox/`; bytes that are not UTF-8 shown as `\xNN`.
        public var path: String
        public var reason: String

        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }

        public var description: String { "\(path): \(reason)" }
    }

    /// By submitter; for each, its protocol-1 jobs then its protocol-0
    /// jobs (the order of syft-job's codecs), each by name (bytewise).
    public struct Refused: Sendable, Hashable {
        public var job: InboxJob
        public var reason: String
    }

    public var jobs: [InboxJob] = []
    public var skipped: [Skipped] = []
    /// Entries named as jobs but unusable as one (a symbolic link): to be rejected with the reason.
    public var refused: [Refused] = []

    public init(jobs: [InboxJob] = [], skipped: [Skipped] = []) {
        self.jobs = jobs
        self.skipped = skipped
    }
}

/// Where a data owner's jobs live in a SyftBox folder:
///
/// ```
/// ROOT/OWNER/app_data/job/inbox/DS/v1/JOB/   protocol 1 (syft-job >= 0.1.39)
/// ROOT/OWNER/app_data/job/inbox/DS/JOB/      protocol 0
/// ROOT/OWNER/app_data/job/review/DS/v1/JOB/  state.yaml, logs, outputs
/// ROOT/OWNER/app_data/job/review/DS/JOB/
/// ```
///
/// Submitters can write anything below their own `inbox/DS/` folder (the
/// owner grants them write on `**` there), so the scan treats those names
/// as hostile: it reads them through descriptors, never follows a symlink
/// (a submitter or job folder that is a link is skipped, not resolved, so
/// nothing outside the tree can pose as a job), and passes over names
/// that could not be a submitter's email or a job's folder.
public struct SyftBoxLayout: Sendable, Hashable {
    /// The SyftBox folder (`SYFTBOX_FOLDER`).
    public var root: FilePath
    /// The data owner's email: the datasite whose inbox this is.
    public var owner: String

    /// Refuses an owner that syft-job itself refuses (its datasite email
    /// check), which also keeps the owner one plain path component.
    public init(root: FilePath, owner: String) throws {
        guard Self.isEmailAddress(owner) else {
            throw SandboxError(.invalidSyftBox, "not a usable email address for the data owner: \"\(owner)\"",
                               hint: "syft-job accepts letters, digits and ._%+- before the @, letters, digits and .- after it")
        }
        self.root = root
        self.owner = owner
    }

    /// `ROOT/OWNER/app_data/job`.
    public var jobFolder: FilePath { root.appending(owner).appending("app_data").appending("job") }
    /// Where submitters write their jobs.
    public var inbox: FilePath { jobFolder.appending("inbox") }
    /// Where the owner's side writes state, logs and outputs.
    public var review: FilePath { jobFolder.appending("review") }

    public func inboxFolder(of job: InboxJob) -> FilePath { inbox.pushing(job.relativePath) }

    /// The review folder of a job: the inbox path with `review` for
    /// `inbox`, protocol segment included (syft-job writes a protocol-0
    /// job's state at `review/DS/JOB/state.yaml`).
    public func reviewFolder(of job: InboxJob) -> FilePath { review.pushing(job.relativePath) }

    public func stateFile(of job: InboxJob) -> FilePath { reviewFolder(of: job).appending("state.yaml") }

    // MARK: Names

    /// syft-job's `^v\d+$` (`is_protocol_dir_name`): a folder so named is a
    /// protocol segment, never a job. Python's `\d` is any Unicode decimal
    /// digit and its `$` also matches before one final newline; both are
    /// kept so that no name the client takes for a segment is a job here.
    public static func isProtocolSegment(_ name: String) -> Bool {
        var scalars = Substring(name).unicodeScalars[...]
        guard scalars.first == "v" else { return false }
        scalars = scalars.dropFirst()
        if scalars.last == "\n" { scalars = scalars.dropLast() }
        return !scalars.isEmpty && scalars.allSatisfy { $0.properties.numericType == .decimal }
    }

    /// syft-job's datasite email check, `^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$`.
    /// Submitter folders must pass it too (syft-job does not check them):
    /// the submitter's name goes into `syft.pub.yaml` read rules, where `*`
    /// and `*@domain` are wildcards, and into logs.
    public static func isEmailAddress(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let at = bytes.firstIndex(of: UInt8(ascii: "@")) else { return false }
        let local = bytes[..<at], domain = bytes[(at + 1)...]
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
        }
        return !local.isEmpty && !domain.isEmpty
            && local.allSatisfy { isAlphanumeric($0) || Array("._%+-".utf8).contains($0) }
            && domain.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// Why a folder name cannot be a job's (or a submitter's) name, or nil
    /// when it can: names that are not UTF-8, that hold control characters
    /// (they would garble logs and review reasons), or that are hidden
    /// (a leading dot: sync engines and editors keep their temporaries
    /// under such names; syft-job itself never makes one, and its listing
    /// of a job's files leaves them out).
    static func unusableNameReason(_ raw: [UInt8]) -> String? {
        guard let name = String(validating: raw, as: UTF8.self) else { return "the name is not valid UTF-8" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "the name holds control characters"
        }
        if raw.first == UInt8(ascii: ".") { return "hidden name (a temporary of a sync engine or an editor)" }
        return nil
    }

    /// The job whose inbox or review folder holds `path` (the folder
    /// itself, or anything in it), by the names the scan accepts; nil for
    /// paths above a job folder or names no job can have.
    public func job(containing path: FilePath) -> InboxJob? {
        var relative = path
        guard relative.removePrefix(inbox) || relative.removePrefix(review) else { return nil }
        let names = relative.components.map(\.string)
        guard names.count >= 2, Self.isEmailAddress(names[0]),
              Self.unusableNameReason(Array(names[0].utf8)) == nil else { return nil }
        let job: InboxJob
        if Self.isProtocolSegment(names[1]) {
            guard names[1] == "v1", names.count >= 3 else { return nil }
            job = InboxJob(submitter: names[0], name: names[2], protocolVersion: .v1)
        } else {
            job = InboxJob(submitter: names[0], name: names[1], protocolVersion: .v0)
        }
        guard Self.unusableNameReason(Array(job.name.utf8)) == nil, job.name != "..", job.name != "." else { return nil }
        return job
    }

    // MARK: Scan

    /// Lists the job folders of every submitter, both protocols. A missing
    /// inbox is an empty one. The folders above `inbox/` are the owner's and
    /// resolve as usual; below, only real directories are entered, each
    /// opened `O_NOFOLLOW` relative to its parent's descriptor. Regular
    /// files at the submitter and protocol levels (`syft.pub.yaml`) are not
    /// jobs and are passed over silently. Like syft-job, a folder is listed
    /// whatever it holds: whether it is a complete, valid submission is for
    /// `Submission` to say.
    public func scanInbox() throws -> InboxScan {
        let inboxFD = open(inbox.string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard inboxFD >= 0 else {
            let error = Errno(rawValue: errno)
            if error == .noSuchFileOrDirectory { return InboxScan() }
            throw SandboxError(.io, "cannot open the inbox", path: inbox.string, errno: error)
        }
        defer { close(inboxFD) }
        var scan = InboxScan()
        for entry in try Self.entries(of: inboxFD, path: []) where entry.kind != S_IFREG {
            let path = entry.raw
            guard entry.kind == S_IFDIR else {
                scan.skip(path, entry.kind == S_IFLNK ? "a symbolic link, not a submitter's folder"
                                                      : "not a folder")
                continue
            }
            if let reason = Self.unusableNameReason(entry.raw) {
                scan.skip(path, reason)
                continue
            }
            let submitter = String(decoding: entry.raw, as: UTF8.self)
            guard Self.isEmailAddress(submitter) else {
                scan.skip(path, "not an email address, so not a submitter's folder")
                continue
            }
            guard let submitterFD = try Self.openDirectory(entry, in: inboxFD, path: path, scan: &scan) else { continue }
            defer { close(submitterFD) }
            try scanSubmitter(submitter, fd: submitterFD, into: &scan)
        }
        return scan
    }

    private func scanSubmitter(_ submitter: String, fd: CInt, into scan: inout InboxScan) throws {
        let base = Array(submitter.utf8)
        var flat: [InboxJob] = []
        for entry in try Self.entries(of: fd, path: base) where entry.kind != S_IFREG {
            let path = base + [0x2F] + entry.raw
            let name = String(validating: entry.raw, as: UTF8.self)
            if let name, Self.isProtocolSegment(name) {
                guard name == JobProtocol.v1.segment else {
                    scan.skip(path, "a folder for job protocol \(name.dropFirst()), which is not supported")
                    continue
                }
                guard entry.kind == S_IFDIR else {
                    scan.skip(path, entry.kind == S_IFLNK ? "a symbolic link, not a protocol folder" : "not a folder")
                    continue
                }
                guard let segmentFD = try Self.openDirectory(entry, in: fd, path: path, scan: &scan) else { continue }
                defer { close(segmentFD) }
                for job in try Self.entries(of: segmentFD, path: path) where job.kind != S_IFREG {
                    if let found = Self.job(job, parentPath: path, submitter: submitter, protocolVersion: .v1,
                                            scan: &scan) {
                        scan.jobs.append(found)
                    }
                }
            } else if let found = Self.job(entry, parentPath: base, submitter: submitter, protocolVersion: .v0,
                                           scan: &scan) {
                flat.append(found)
            }
        }
        // Protocol 1 before protocol 0, as syft-job's codecs list them.
        scan.jobs += flat
    }

    /// The job an entry of a submitter or protocol folder stands for, or
    /// nil (and a skip) when it cannot be one.
    private static func job(_ entry: Entry, parentPath: [UInt8], submitter: String, protocolVersion: JobProtocol,
                            scan: inout InboxScan) -> InboxJob? {
        let path = parentPath + [0x2F] + entry.raw
        guard entry.kind == S_IFDIR else {
            scan.skip(path, entry.kind == S_IFLNK ? "a symbolic link, not a job folder" : "not a folder")
            // A link where a job folder belongs, named as a job can be: the
            // submitter is told (rejected) rather than ignored.
            if entry.kind == S_IFLNK, unusableNameReason(entry.raw) == nil {
                let name = String(decoding: entry.raw, as: UTF8.self)
                if !isProtocolSegment(name) {
                    scan.refused.append(.init(job: InboxJob(submitter: submitter, name: name, protocolVersion: protocolVersion),
                                              reason: "the job folder is a symbolic link; submit a folder"))
                }
            }
            return nil
        }
        if let reason = unusableNameReason(entry.raw) {
            scan.skip(path, reason)
            return nil
        }
        let name = String(decoding: entry.raw, as: UTF8.self)
        if isProtocolSegment(name) {
            scan.skip(path, "a name reserved for protocol folders, never a job's")
            return nil
        }
        return InboxJob(submitter: submitter, name: name, protocolVersion: protocolVersion)
    }

    struct Entry {
        var name: [CChar]
        var raw: [UInt8]
        var kind: mode_t
        var info: stat
    }

    /// A directory's entries sorted by name bytes, each examined without
    /// following links. Entries that vanish meanwhile are left out.
    private static func entries(of directory: CInt, path: [UInt8]) throws -> [Entry] {
        var names: [[CChar]] = []
        do {
            try DirectoryEntries.forEach(in: directory) { name in
                if DirectoryEntries.isSafe(name) { names.append(name) }
                return true
            }
        } catch let error as Errno {
            throw SandboxError(.io, "cannot read the folder \(ArtifactReport.displayPath(path))", errno: error)
        }
        var entries: [Entry] = []
        for name in names {
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { continue }
                throw SandboxError(.io, "cannot examine \(ArtifactReport.displayPath(path + [0x2F] + DirectoryEntries.bytes(name)))",
                                   errno: Errno(rawValue: errno))
            }
            entries.append(Entry(name: name, raw: DirectoryEntries.bytes(name), kind: info.st_mode & S_IFMT, info: info))
        }
        return entries.sorted { $0.raw.lexicographicallyPrecedes($1.raw) }
    }

    /// Opens a directory entry `O_NOFOLLOW` and checks it is the directory
    /// that was examined; nil (and a skip) when it was swapped meanwhile.
    private static func openDirectory(_ entry: Entry, in parent: CInt, path: [UInt8],
                                      scan: inout InboxScan) throws -> CInt? {
        let fd = openat(parent, entry.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let error = Errno(rawValue: errno)
            switch error {
            case .tooManySymbolicLinkLevels, .notDirectory, .noSuchFileOrDirectory:
                scan.skip(path, "changed while being examined")
                return nil
            case .permissionDenied:
                scan.skip(path, "cannot be opened (EACCES)")
                return nil
            default:
                throw SandboxError(.io, "cannot open \(ArtifactReport.displayPath(path))", errno: error)
            }
        }
        var opened = stat()
        guard fstat(fd, &opened) == 0, opened.st_dev == entry.info.st_dev, opened.st_ino == entry.info.st_ino else {
            close(fd)
            scan.skip(path, "changed while being examined")
            return nil
        }
        return fd
    }
}

extension InboxScan {
    fileprivate mutating func skip(_ path: [UInt8], _ reason: String) {
        skipped.append(Skipped(path: ArtifactReport.displayPath(path), reason: reason))
    }
}
