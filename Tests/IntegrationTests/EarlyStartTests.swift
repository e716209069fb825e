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

    /// The early PID 1 is a fork of the CLI made before main: its copy of
    /// the caller's command line and environment is zeroed (read here from
    /// the host, as root), and nothing in the sandbox can read its memory:
    /// /proc/1/environ is refused to the job (PID 1 holds capabilities the
    /// job lacks, and is non-dumpable).
    @Test func theEarlyPID1KeepsNothingOfTheCallersEnvironment() async throws {
        let secret = "secret-\(TestSupport.marker())"
        let job = try JobFixture("""
            if cat /proc/1/environ > /dev/null 2>&1; then echo readable; else echo unreadable; fi
            echo ready
            sleep 30
            """)
        let environment = ProcessInfo.processInfo.environment.merging(["SYFT_TEST_SECRET": secret]) { $1 }
        let process = try await TestSupport.startCLI(job, ["--timeout", "60"], environment: environment)
        defer { process.terminate() }
        let children = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children",
                                    encoding: .utf8)) ?? ""
        let pid1 = try #require(children.split(separator: " ").first.flatMap { Int32($0) }, "no PID 1: \(children)")
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid1)/environ"))
        let commandLine = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid1)/cmdline"))
        #expect(!environ.isEmpty && environ.allSatisfy { $0 == 0 }, "PID 1's environment: \(environ.count) bytes, not zeroed")
        #expect(!commandLine.isEmpty && commandLine.allSatisfy { $0 == 0 }, "PID 1's command line is not zeroed")
        let partial = try FileManager.default.contentsOfDirectory(atPath: job.results.path)
            .first { $0.hasPrefix(".stdout.txt.partial") }
        let stdout = try String(contentsOfFile: job.results.path + "/" + #require(partial), encoding: .utf8)
        #expect(stdout.hasPrefix("unreadable\n"), "\(stdout)")
    }

    /// The job folder need not be the last argument.
    @Test func theFolderMayStandAnywhere() async throws {
        let job = try JobFixture("echo hi")
        let run = await TestSupport.cli([job.path, "--results", job.results.path, "--json"], environment: Self.debugLog)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("early_clone=true"), "\(run.stderr)")
        #expect(job.result("stdout.txt") == "hi\n")
    }

    /// A command line the constructor leaves to main (here the explicit
    /// `run` subcommand) starts its sandbox as before.
    @Test func otherwiseTheRunClonesItsOwn() async throws {
        let job = try JobFixture("echo hi")
        let run = await TestSupport.cli(["run", job.path, "--results", job.results.path], environment: Self.debugLog)
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

    /// Bad input found once the early PID 1 was taken (the job folder has
    /// no run.sh): the CLI exits 125, and nothing of the sandbox outlives it.
    @Test func anEarlySandboxTakenButNeverRunEndsWithTheRun() async throws {
        let job = try JobFixture("echo hi")
        try FileManager.default.removeItem(atPath: job.path + "/run.sh")
        let run = await TestSupport.run([TestSupport.probe, "reaper", TestSupport.binary,
                                         "--results", job.results.path, job.path])
        #expect(run.stdout.contains("status=125\n"), "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("lingering=0\n"), "\(run.stdout)")
        #expect(run.stderr.contains("no run.sh"), "\(run.stderr)")
    }
}
