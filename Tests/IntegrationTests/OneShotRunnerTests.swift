import Foundation
import Logging
import Runner
import Sandbox
import SystemPackage
import Testing

/// `OneShotRunner` in process, as the daemon runs its jobs.
@Suite struct OneShotRunnerTests {
    /// The job's outputs filesystem comes back as a descriptor of its root;
    /// once collected it is closed: a daemon running job after job holds
    /// none of them (each was one more open descriptor, for good). The
    /// outputs get a size no other filesystem of the process has, and the
    /// process's descriptors on a tmpfs of that size are counted.
    @Test func noOutputsFilesystemStaysOpenAfterTheRun() async throws {
        let job = try JobFixture("echo hi > outputs/note.txt")
        let size: UInt64 = 3 * 1024 * 1024 + 7 * 4096
        var options = OneShotOptions(jobFolder: FilePath(job.path), seccomp: try BuiltinPolicies.seccompProgram(),
                                     skeleton: BuiltinPolicies.skeleton)
        options.resultsFolder = FilePath(job.results.path)
        options.outputsBytes = size
        let logger = Logger(label: "test")
        for _ in 0..<2 {
            let outcome = try await OneShotRunner.run(options, logger: logger)
            #expect(outcome.exitStatus == 0)
        }
        #expect(job.result("outputs/note.txt") == "hi\n")
        #expect(Self.descriptorsOnTmpfs(ofSize: size) == 0, "the outputs filesystem is still open")
    }

    static func descriptorsOnTmpfs(ofSize size: UInt64) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return names.filter { name in
            var info = statvfs()
            guard statvfs("/proc/self/fd/" + name, &info) == 0 else { return false }
            return UInt64(info.f_blocks) * UInt64(info.f_frsize) == size
        }.count
    }
}
