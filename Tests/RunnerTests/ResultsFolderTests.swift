import Foundation
import Glibc
@testable import Runner
import Sandbox
import SystemPackage
import Testing

/// The results folder's commit, prepared while the job runs.
@Suite struct ResultsFolderTests {
    let root = FilePath(NSTemporaryDirectory()).appending("syft-results-\(UUID().uuidString)")

    private func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.string)) ?? []).sorted()
    }

    private func contents(_ name: String) -> String? {
        try? String(contentsOfFile: root.appending(name).string, encoding: .utf8)
    }

    private func previousRun() throws {
        try FileSystem.makeDirectories(root)
        for name in ResultsFolder.replacedNames {
            #expect(FileManager.default.createFile(atPath: root.appending(name).string, contents: Data("old \(name)".utf8)))
        }
    }

    /// A run's results folder as `OneShotRun` has it while the job runs.
    private func start(runID: String, writesRecord: Bool) throws
        -> (ResultsFolder, ResultsFolder.PartialLogs, ResultsFolder.PreparedCommit) {
        let folder = try ResultsFolder(root, runID: runID)
        let logs = try folder.createPartialLogs()
        return (folder, logs, try folder.prepareCommit(writesRecord: writesRecord))
    }

    private func inode(_ fd: CInt) -> stat? {
        var info = stat()
        return fstat(fd, &info) == 0 ? info : nil
    }

    /// The replaced files are held, unlinked, until `releaseReplaced`: the
    /// commit itself frees none of them.
    @Test func theCommitReplacesThePreviousRunAndHoldsWhatItReplaced() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try previousRun()
        let (folder, logs, prepared) = try start(runID: "run-1", writesRecord: false)
        #expect(prepared.replaced.count == 4)
        #expect(names().contains("returncode.txt.tmp-run-1"), "\(names())")
        #expect(!names().contains("result.json.tmp-run-1"), "no record, no file for it")
        try FileSystem.writeAll(Array("out".utf8), to: logs.stdout)

        try folder.commit(logs, prepared: prepared, returncode: 3, record: nil, durable: false)
        #expect(names() == ["result.json", "returncode.txt", "stderr.txt", "stdout.txt"])
        #expect(contents("stdout.txt") == "out")
        #expect(contents("stderr.txt") == "")
        #expect(contents("returncode.txt") == "3")
        #expect(contents("result.json") == "old result.json", "writesRecord false leaves it alone")
        // stdout.txt, stderr.txt, returncode.txt: replaced, unlinked, still held.
        let held = prepared.replaced.compactMap(inode)
        #expect(held.count == 4)
        #expect(held.filter { $0.st_nlink == 0 }.count == 3, "\(held.map(\.st_nlink))")
        #expect(heldHere().count == 4, "\(heldHere())")
        ResultsFolder.releaseReplaced(prepared, afterExit: false)
        // By target, not by number: another test may reuse a closed number at once.
        #expect(heldHere().isEmpty, "left open: \(heldHere())")
    }

    /// This process's descriptors of files in (or once in) this test's folder.
    private func heldHere() -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.compactMap { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                  target.hasPrefix(root.string + "/") else { return nil }
            return target
        }
    }

    @Test func aFirstRunHasNothingToHold() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try FileSystem.makeDirectories(root)
        let (folder, logs, prepared) = try start(runID: "first", writesRecord: true)
        #expect(prepared.replaced.isEmpty)
        try folder.commit(logs, prepared: prepared, returncode: 0, record: nil, durable: true)
        #expect(names() == ["returncode.txt", "stderr.txt", "stdout.txt"], "a nil record discards its file")
    }

    @Test func discardLeavesThePreviousRunAsItWas() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try previousRun()
        let (folder, logs, prepared) = try start(runID: "gone", writesRecord: true)
        #expect(names().count == 8, "\(names())")
        folder.discard(logs, prepared: prepared)
        ResultsFolder.releaseReplaced(prepared, afterExit: false)
        #expect(names() == ResultsFolder.replacedNames.sorted())
        for name in ResultsFolder.replacedNames { #expect(contents(name) == "old \(name)") }
    }

    /// A commit that fails half-way (stderr.txt has become a folder) leaves
    /// no temporary file behind.
    @Test func aFailedCommitLeavesNoTemporaryFile() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try previousRun()
        let (folder, logs, prepared) = try start(runID: "broken", writesRecord: true)
        #expect(unlink(root.appending("stderr.txt").string) == 0)
        try FileSystem.makeDirectories(root.appending("stderr.txt"))
        #expect(throws: SandboxError.self) {
            try folder.commit(logs, prepared: prepared, returncode: 0, record: nil, durable: false)
        }
        ResultsFolder.releaseReplaced(prepared, afterExit: false)
        #expect(!names().contains { $0.contains(".tmp-") }, "\(names())")
    }

    /// The commit closed the logs before it failed; the run's clean-up
    /// (discard) then must not close their numbers again: by then they may
    /// be another file's (here two opened right after the failure, which
    /// take the lowest free numbers: the logs' own).
    @Test func theCleanUpAfterAFailedCommitClosesNoOtherFile() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try previousRun()
        let (folder, logs, prepared) = try start(runID: "reused", writesRecord: false)
        #expect(unlink(logs.stdoutPath.string) == 0) // the first move fails: after the logs were closed
        #expect(throws: SandboxError.self) {
            try folder.commit(logs, prepared: prepared, returncode: 0, record: nil, durable: false)
        }
        #expect(!logs.isOpen)
        let others = [open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_RDONLY | O_CLOEXEC)]
        defer { for fd in others where fd >= 0 { close(fd) } }
        folder.discard(logs, prepared: prepared)
        ResultsFolder.releaseReplaced(prepared, afterExit: false)
        for fd in others { #expect(fcntl(fd, F_GETFD) >= 0, "descriptor \(fd) was closed by the discard") }
        #expect(!names().contains { $0.contains(".partial-") || $0.contains(".tmp-") }, "\(names())")
    }
}
