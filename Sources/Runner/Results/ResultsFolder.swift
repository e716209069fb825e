#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CSandbox
import Glibc
import Sandbox
import SystemPackage

/// The folder a run's results land in, written so that a reader never sees
/// a half-written set: logs grow in hidden partial files, outputs/ is
/// swapped in whole, and result.json is written last.
struct ResultsFolder {
    /// The hidden files the job's stdout and stderr grow in. A class: the
    /// descriptors are closed once (`close`), whoever of `commit` and
    /// `discard` comes first, or both (a commit that failed, then the
    /// run's clean-up): a second close would close whatever file took
    /// the number meanwhile.
    final class PartialLogs {
        let stdout: FileDescriptor
        let stderr: FileDescriptor
        let stdoutPath: FilePath
        let stderrPath: FilePath
        private(set) var isOpen = true

        init(stdout: FileDescriptor, stderr: FileDescriptor, stdoutPath: FilePath, stderrPath: FilePath) {
            self.stdout = stdout
            self.stderr = stderr
            self.stdoutPath = stdoutPath
            self.stderrPath = stderrPath
        }

        /// Closes both descriptors, the first time only; throws the first
        /// close's error (the data may not have reached the disk).
        func close() throws {
            guard isOpen else { return }
            isOpen = false
            let closedStdout = Result { try stdout.close() }
            try stderr.close()
            try closedStdout.get()
        }
    }

    let path: FilePath
    let runID: String

    init(_ given: FilePath, runID: String) throws {
        if FileSystem.lstatKind(given) == nil, mkdir(given.string, 0o755) != 0, errno != EEXIST {
            throw SandboxError(.resultsNotWritable, "cannot create the results folder", path: given.string,
                               errno: Errno(rawValue: errno))
        }
        let path = try FileSystem.canonical(given)
        var info = stat()
        guard stat(path.string, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw SandboxError(.resultsNotWritable, "the results path is not a folder", path: path.string)
        }
        guard access(path.string, W_OK | X_OK) == 0 else {
            throw SandboxError(.resultsNotWritable, "cannot write the results folder", path: path.string,
                               errno: Errno(rawValue: errno), hint: "pass --results with a folder you can write")
        }
        self.path = path
        self.runID = runID
    }

    func createPartialLogs() throws -> PartialLogs {
        let stdoutPath = path.appending(".stdout.txt.partial-\(runID)")
        let stderrPath = path.appending(".stderr.txt.partial-\(runID)")
        let stdout = try create(stdoutPath)
        do {
            return PartialLogs(stdout: stdout, stderr: try create(stderrPath),
                               stdoutPath: stdoutPath, stderrPath: stderrPath)
        } catch {
            try? stdout.close()
            unlink(stdoutPath.string)
            throw error
        }
    }

    private func create(_ file: FilePath) throws -> FileDescriptor {
        do {
            return try FileDescriptor.open(file, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                           permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch let error as Errno {
            throw SandboxError(.resultsNotWritable, "cannot create a log file", path: file.string, errno: error)
        }
    }

    /// What `commit` writes and replaces, made ready while the job runs
    /// (`prepareCommit`), so that the way from the job's end to the caller
    /// creates no file and frees none: returncode.txt's and result.json's
    /// temporary files exist, and the files the commit replaces (the
    /// previous run's stdout.txt, stderr.txt, returncode.txt, result.json)
    /// are held open (O_PATH). Unlinked while held, a file is freed (its
    /// pages, blocks and inode: ext4's eviction, 20-40 µs each) when its
    /// descriptor closes (`releaseReplaced`), not in the commit's unlink.
    struct PreparedCommit {
        var returncode: FileSystem.PendingFile
        var record: FileSystem.PendingFile?
        var replaced: [CInt]
    }

    static let replacedNames = ["stdout.txt", "stderr.txt", "returncode.txt", "result.json"]

    func prepareCommit(writesRecord: Bool) throws -> PreparedCommit {
        let returncode = try FileSystem.PendingFile(for: path.appending("returncode.txt"), suffix: runID)
        let record: FileSystem.PendingFile?
        do {
            record = writesRecord ? try FileSystem.PendingFile(for: path.appending("result.json"), suffix: runID) : nil
        } catch {
            returncode.discard()
            throw error
        }
        // A name that is missing (a first run) or changes before the commit
        // only means that its freeing is not deferred.
        let replaced = Self.replacedNames.compactMap { name -> CInt? in
            let fd = open(path.appending(name).string, CSB_O_PATH | O_NOFOLLOW | O_CLOEXEC)
            return fd >= 0 ? fd : nil
        }
        return PreparedCommit(returncode: returncode, record: record, replaced: replaced)
    }

    /// Closes the descriptors of the replaced files, which frees those the
    /// commit unlinked; `afterExit` leaves that to the process's end
    /// (`csb_exit_close_later`: after its caller's wait returned), for a
    /// process that ends with the run.
    static func releaseReplaced(_ prepared: PreparedCommit, afterExit: Bool) {
        for fd in prepared.replaced where !afterExit || csb_exit_close_later(fd) != 0 {
            close(fd)
        }
    }

    /// Removes the partial logs and the prepared files; `keep` still gets
    /// the logs first.
    func discard(_ logs: PartialLogs, prepared: PreparedCommit?, keepingLogsIn keep: FilePath? = nil) {
        try? logs.close()
        if let keep, (try? FileSystem.makeDirectories(keep, mode: 0o700)) != nil {
            try? FileSystem.linkOrCopy(logs.stdoutPath, to: keep.appending("stdout.txt"))
            try? FileSystem.linkOrCopy(logs.stderrPath, to: keep.appending("stderr.txt"))
        }
        unlink(logs.stdoutPath.string)
        unlink(logs.stderrPath.string)
        prepared?.returncode.discard()
        prepared?.record?.discard()
    }

    /// What a runner killed mid-run (kill -9) leaves in a results folder:
    /// the hidden partial logs and outputs, a temporary returncode.txt.
    /// None of it ever looks complete; this removes it. Returns the names.
    @discardableResult
    static func sweepLeftovers(in folder: FilePath) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.string) else { return [] }
        let leftovers = names.filter { name in
            (name.hasPrefix(".stdout.txt.partial-") || name.hasPrefix(".stderr.txt.partial-")
             || name.hasPrefix(".outputs.partial-") || name.hasPrefix("returncode.txt.tmp-")
             || name.hasPrefix("result.json.tmp-"))
        }
        for name in leftovers { try? ArtifactCollector.removeTree(folder.appending(name)) }
        return leftovers
    }

    /// Copies the job's outputs filesystem (its root directory) into
    /// outputs/, replacing the previous outputs/ atomically. Files the job
    /// wrote under the `withholding` names are not copied; the previous
    /// outputs' own ones (the owner's permission file) are kept.
    /// `freesAfterExit`: the previous outputs are freed after the process's
    /// exit (`ArtifactCollector.freesAfterExit`).
    func collectOutputs(from root: FileDescriptor, withholding names: [String] = [],
                        freesAfterExit: Bool = false) throws -> ArtifactReport {
        var collector = ArtifactCollector(withheldNames: names, keptNames: names)
        collector.freesAfterExit = freesAfterExit
        return try collector.collect(from: root, into: path.appending("outputs"))
    }

    /// Moves the logs into place, then returncode.txt, then result.json.
    /// Every step is an atomic replacement (`FileSystem.replace`), so a
    /// reader never sees a half-written file; `durable` also fsyncs the two
    /// small files (a one-shot run's caller reads them at once and skips
    /// the two journal commits). A nil `record` discards its prepared file;
    /// without `prepared`, the small files are created here. On failure,
    /// what was not moved into place is removed.
    func commit(_ logs: PartialLogs, prepared: PreparedCommit?, returncode: Int32, record: ResultRecord?,
                durable: Bool, keepingLogsIn keep: FilePath? = nil) throws {
        var moved = false
        defer {
            if !moved {
                prepared?.returncode.discard()
                prepared?.record?.discard()
            }
        }
        try logs.close()
        if let keep {
            try FileSystem.makeDirectories(keep, mode: 0o700)
            try FileSystem.linkOrCopy(logs.stdoutPath, to: keep.appending("stdout.txt"))
            try FileSystem.linkOrCopy(logs.stderrPath, to: keep.appending("stderr.txt"))
        }
        try FileSystem.replace(path.appending("stdout.txt"), with: logs.stdoutPath)
        try FileSystem.replace(path.appending("stderr.txt"), with: logs.stderrPath)
        moved = true
        let recordFile = prepared?.record
        if record == nil { recordFile?.discard() }
        do {
            // No trailing newline: syft-job writes it so and its readers int() it.
            let bytes = Array(String(returncode).utf8)
            if let pending = prepared?.returncode {
                try pending.finish(writing: bytes, durable: durable)
            } else {
                try FileSystem.writeAtomically(bytes, to: path.appending("returncode.txt"), durable: durable)
            }
        } catch {
            if record != nil { recordFile?.discard() }
            throw error
        }
        if let record {
            if let recordFile {
                try recordFile.finish(writing: record.fileBytes, durable: durable)
            } else {
                try FileSystem.writeAtomically(record.fileBytes, to: path.appending("result.json"), durable: durable)
            }
        }
    }
}
