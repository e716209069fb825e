import Foundation
import Testing

/// Sandboxes start by executing the binary again as `syft-sandbox-init`
/// (all but a one-shot run's early one, a fork: EarlyStartTests), which
/// makes the namespaces it is told to and waits on a socket for its
/// go-ahead and the plan it carries.
/// Anything else there (a process that is not the runner, a damaged plan)
/// gets a failure record on the error descriptor and exit status 127;
/// nothing runs.
@Suite struct InitEntryTests {
    @Test(arguments: ["garbage", String(repeating: "\0", count: 4096)])
    func aPlanThatIsNotOneIsReportedAndNothingRuns(contents: String) async throws {
        let folder = NSTemporaryDirectory() + "syft-init-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try contents.write(toFile: folder + "/plan", atomically: false, encoding: .utf8)
        let run = await TestSupport.run([TestSupport.probe, "init-plan", folder + "/plan", TestSupport.binary])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("status=127\n"), "\(run.stdout)")
        #expect(run.stdout.contains("record=248\n"), "\(run.stdout)")
        #expect(run.stdout.contains("message=read the sandbox's plan"), "\(run.stdout)")
    }

    /// A socket that is not one (a file), as from a process that is not the
    /// runner. Run so, by hand, as root, it is in the host's namespaces (no
    /// namespace flags): it must not touch the host's mounts either (no
    /// /proc of its own over the host's, no change of propagation), which
    /// the init otherwise prepares before its plan comes.
    @Test func aGoAheadThatIsNotOneIsReportedAndNothingRuns() async throws {
        let folder = NSTemporaryDirectory() + "syft-init-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "G".write(toFile: folder + "/socket", atomically: false, encoding: .utf8)
        let mountsBefore = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        let script = "exec 5<\"$1/socket\" 6>\"$1/error\"; exec -a syft-sandbox-init \"$0\" 5 6 0"
        let run = await TestSupport.run(["/bin/bash", "-c", script, TestSupport.binary, folder])
        #expect(try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) == mountsBefore,
                "the init changed the host's mounts")
        #expect(run.status == 127)
        let record = try Data(contentsOf: URL(fileURLWithPath: folder + "/error"))
        // struct csb_error: stage, errno, then the message.
        #expect(record.count == 8 + 240)
        let message = String(decoding: record.dropFirst(8).prefix { $0 != 0 }, as: UTF8.self)
        #expect(message.contains("receive the parent's go-ahead"), "\(message)")
    }

    /// Arguments that are not descriptors and namespace flags: the init
    /// exits 127 at once (it has nowhere to report to).
    @Test(arguments: ["5 6 zz", "5 6 12345678123456789", "x 6 0"])
    func anInitGivenOtherArgumentsExits(arguments: String) async {
        let run = await TestSupport.run(["/bin/bash", "-c", "exec -a syft-sandbox-init \"$0\" \(arguments)", TestSupport.binary])
        #expect(run.status == 127, "\(run.stderr)")
    }

    /// The same binary under any other name is the CLI, whatever it is given.
    @Test func anotherNameIsTheCLI() async {
        let run = await TestSupport.run(["/bin/bash", "-c", "exec -a syft-sandbox-initx \"$0\" 5 6", TestSupport.binary])
        #expect(run.status == 125, "\(run.stderr)")
    }
    /// Where clone3 is filtered (container runtimes' seccomp profiles answer
    /// ENOSYS), the sandbox starts through the fork-like clone(2) instead.
    @Test func withClone3FilteredTheSandboxStillStarts() async throws {
        let job = try JobFixture("echo started")
        let run = await TestSupport.run([TestSupport.probe, "noclone3", TestSupport.binary, "--results", job.results.path, job.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "started\n")
    }

    /// The child that executes the init shares the runner's memory while
    /// the runner goes on: when its exec fails, the failure still arrives as
    /// a record (what failed, the errno) and the run fails as a setup
    /// failure; nothing is left and no results are written. (The explicit
    /// `run` subcommand: a command line the constructor leaves to main,
    /// whose sandbox executes its init.)
    @Test func anInitThatCannotBeExecutedIsReported() async throws {
        let job = try JobFixture("echo started")
        let run = await TestSupport.run([TestSupport.probe, "noexecveat", TestSupport.binary, "run", job.path,
                                         "--results", job.results.path])
        #expect(run.status == 125, "\(run.stderr)")
        #expect(run.stderr.contains("execute the sandbox's init"), "\(run.stderr)")
        #expect(run.stderr.contains("EACCES"), "\(run.stderr)")
        #expect(job.result("stdout.txt") == nil)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: job.results.path)) ?? []
        #expect(left.isEmpty, "left in the results folder: \(left)")
    }
}
