#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Sandbox
import SystemPackage

/// The folder a run's results land in, written so that a reader never sees
/// a half-written set: logs grow in hidden partial files, outputs/ is
/// swapped in whole, and result.json is written last.
struct ResultsFolder {
    struct PartialLogs {
        var stdout: FileDescriptor
        var stderr: FileDescriptor
        var stdoutPath: FilePath
        var stderrPath: FilePath
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

    /// Removes the partial logs; `keep` still gets them first.
    func discard(_ logs: PartialLogs, keepingLogsIn keep: FilePath? = nil) {
        try? logs.stdout.close()
        try? logs.stderr.close()
        if let keep, (try? FileSystem.makeDirectories(keep, mode: 0o700)) != nil {
            try? FileSystem.linkOrCopy(logs.stdoutPath, to: keep.appending("stdout.txt"))
            try? FileSystem.linkOrCopy(logs.stderrPath, to: keep.appending("stderr.txt"))
        }
        unlink(logs.stdoutPath.string)
        unlink(logs.stderrPath.string)
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
    func collectOutputs(from root: FileDescriptor, withholding names: [String] = []) throws -> ArtifactReport {
        try ArtifactCollector(withheldNames: names, keptNames: names).collect(from: root, into: path.appending("outputs"))
    }

    /// Moves the logs into place, then returncode.txt, then result.json.
    /// Every step is an atomic replacement (`FileSystem.replace`), so a
    /// reader never sees a half-written file; `durable` also fsyncs the two
    /// small files (a one-shot run's caller reads them at once and skips
    /// the two journal commits).
    func commit(_ logs: PartialLogs, returncode: Int32, record: ResultRecord?, durable: Bool,
                keepingLogsIn keep: FilePath? = nil) throws {
        try logs.stdout.close()
        try logs.stderr.close()
        if let keep {
            try FileSystem.makeDirectories(keep, mode: 0o700)
            try FileSystem.linkOrCopy(logs.stdoutPath, to: keep.appending("stdout.txt"))
            try FileSystem.linkOrCopy(logs.stderrPath, to: keep.appending("stderr.txt"))
        }
        try FileSystem.replace(path.appending("stdout.txt"), with: logs.stdoutPath)
        try FileSystem.replace(path.appending("stderr.txt"), with: logs.stderrPath)
        // No trailing newline: syft-job writes it so and its readers int() it.
        try FileSystem.writeAtomically(Array(String(returncode).utf8), to: path.appending("returncode.txt"),
                                       durable: durable)
        if let record {
            try FileSystem.writeAtomically(record.fileBytes, to: path.appending("result.json"),
                                           durable: durable)
        }
    }
}
