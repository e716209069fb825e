import Foundation
import Testing

/// A one-shot command line's sandbox is cloned by a constructor, before the
/// Swift runtime starts (early.c), and the run takes it; what is not taken
/// ends with the process.
@Suite struct EarlyStartTests {
    static let debugLog = ProcessInfo.processInfo.environment.merging(["SYFT_SANDBOX_LOG_LEVEL": "debug"]) { $1 }

    @Test func aOneShotRunTakesTheSandboxClonedBeforeTheRuntime() async throws {
        let job = try JobFixture("echo hi")
        let run = await job.run([], environment: Self.debugLog)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("early_clone=true"), "\(run.stderr)")
        #expect(job.result("stdout.txt") == "hi\n")
    }

    /// The early clone is made with the network policy of the command line
    /// (`--net=VALUE` as well as `--net VALUE`): taken, and lo is up.
    @Test(arguments: [["--net=loopback"], ["--net", "loopback"]])
    func theEarlyCloneHasTheCommandLinesNetwork(options: [String]) async throws {
        let job = try JobFixture(TestSupport.reachItself)
        let run = await job.run(options, environment: Self.debugLog)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("early_clone=true"), "\(run.stderr)")
        #expect(job.result("stdout.txt") == "reply\n")
    }

    /// A command line the constructor is not sure of (here the job folder
    /// is not the last argument) starts its sandbox as before.
    @Test func otherwiseTheRunClonesItsOwn() async throws {
        let job = try JobFixture("echo hi")
        let run = await TestSupport.cli([job.path, "--results", job.results.path], environment: Self.debugLog)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("early_clone=false"), "\(run.stderr)")
        #expect(job.result("stdout.txt") == "hi\n")
    }

    /// Bad input found once the sandbox was cloned early: the CLI exits 125,
    /// and the PID 1 that never got its go-ahead ends with it (the probe,
    /// a child subreaper, gets every process the CLI leaves: the early PID 1
    /// and the exit's helper, both gone within 5 s).
    @Test func anEarlySandboxThatIsNotTakenEndsWithTheProcess() async throws {
        let job = try JobFixture("echo hi")
        let run = await TestSupport.run([TestSupport.probe, "reaper", TestSupport.binary,
                                         "--results", job.results.path, "--memory", "bogus", job.path])
        let lines = Dictionary(run.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
        #expect(lines["status"] == "125", "\(run.stdout) \(run.stderr)")
        #expect(Int(lines["orphans"] ?? "") ?? 0 >= 2, "the early PID 1 was not started: \(run.stdout)")
        #expect(lines["lingering"] == "0", "\(run.stdout)")
        #expect(job.result("stdout.txt") == nil)
    }
}
