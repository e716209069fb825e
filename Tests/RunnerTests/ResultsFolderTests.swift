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

    private func inode(_ fd: CInt) -> stat? {
        var info = stat()
        return fstat(fd, &info) == 0 ? info : nil
    }

    /// The replaced files are held, unlinked, until `releaseReplaced`: the
    /// commit itself frees none of them.
    @Test func theCommitReplacesThePreviousRunAndHoldsWhatItReplaced() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try previousRun()
        let folder = try ResultsFolder(root, runID: "run-1")
        let logs = try folder.createPartialLogs()
        let prepared = try folder.prepareCommit(writesRecord: false)
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
        ResultsFolder.releaseReplaced(prepared, afterExit: false)
        for fd in prepared.replaced { #expect(fcntl(fd, F_GETFD) == -1, "descriptor \(fd) left open") }
    }

    @Test func aFirstRunHasNothingToHold() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try FileSystem.makeDirectories(root)
        let folder = try ResultsFolder(root, runID: "first")
        let logs = try folder.createPartialLogs()
        let prepared = try folder.prepareCommit(writesRecord: true)
        #expect(prepared.replaced.isEmpty)
        try folder.commit(logs, prepared: prepared, returncode: 0, record: nil, durable: true)
        #expect(names() == ["returncode.txt", "stderr.txt", "stdout.txt"], "a nil record discards its file")
    }

    @Test func discardLeavesThePreviousRunAsItWas() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try previousRun()
        let folder = try ResultsFolder(root, runID: "gone")
        let logs = try folder.createPartialLogs()
        let prepared = try folder.prepareCommit(writesRecord: true)
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
        let folder = try ResultsFolder(root, runID: "broken")
        let logs = try folder.createPartialLogs()
        let prepared = try folder.prepareCommit(writesRecord: true)
        #expect(unlink(root.appending("stderr.txt").string) == 0)
        try FileSystem.makeDirectories(root.appending("stderr.txt"))
        #expect(throws: SandboxError.self) {
            try folder.commit(logs, prepared: prepared, returncode: 0, record: nil, durable: false)
        }
        ResultsFolder.releaseReplaced(prepared, afterExit: false)
        #expect(!names().contains { $0.contains(".tmp-") }, "\(names())")
    }
}
