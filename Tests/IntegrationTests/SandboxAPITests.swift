import Foundation
import Runner
@testable import Sandbox
import SystemPackage
import Testing

/// The Swift API the daemon embeds: `Sandbox.run` with a live sink, and
/// cancellation of the calling task; `Sandbox.start` (the one-shot CLI's
/// early start) and what it refuses.
@Suite struct SandboxAPITests {
    final class Chunks: @unchecked Sendable {
        private let lock = NSLock()
        private var chunks: [(OutputChannel, [UInt8])] = []
        func append(_ stream: OutputChannel, _ bytes: [UInt8]) { lock.withLock { chunks.append((stream, bytes)) } }
        func text(_ stream: OutputChannel) -> String {
            lock.withLock { String(decoding: chunks.filter { $0.0 == stream }.flatMap(\.1), as: UTF8.self) }
        }
    }

    func configuration(_ script: String, wallTime: Duration = .seconds(30)) throws -> SandboxConfiguration {
        try TestSupport.shellConfiguration(script, wallTime: wallTime)
    }

    @Test func outputReachesFilesAndTheLiveSink() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let chunks = Chunks()
        let result = try await Sandbox.run(
            configuration("echo one; echo two >&2; sleep 0.1; echo three; exit 7"),
            output: files.output(sink: { chunks.append($0, $1) }))
        #expect(result.termination == .exited(7))
        #expect(result.shellStatus == 7)
        #expect(result.limitHit == .none)
        #expect(chunks.text(.stdout) == "one\nthree\n")
        #expect(chunks.text(.stderr) == "two\n")
        #expect(files.text() == "one\nthree\n")
        #expect(result.stdoutBytes == 10 && result.stderrBytes == 4)
        #expect(result.wallTime > .milliseconds(100))
    }

    @Test func cancellingTheTaskKillsTheSandboxPromptly() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let config = try configuration("sleep 60")
        let task = Task { try await Sandbox.run(config, output: files.output()) }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        task.cancel()
        let result = try await task.value
        #expect(result.limitHit == .cancelled)
        #expect(result.termination == .signaled(SIGKILL))
        // The sandbox's own clock (its thread, not this task's, which a
        // loaded run's busy cooperative pool may resume late): from its
        // configuration to its end, setup included.
        #expect(result.wallTime < .seconds(3), "the sandbox outlived its cancellation: \(result.wallTime)")
        #expect(cancelled.duration(to: .now) < .seconds(30), "the job ran to its end")
    }

    /// PID 1 waits for its configuration; released without a run, it is
    /// killed and reaped (a zombie would still answer kill(pid, 0)).
    @Test func aStartedSandboxThatIsNeverRunIsKilledAndReaped() async throws {
        var started: StartedSandbox? = Sandbox.start(network: .none)
        _ = try await TestSupport.waitUntil { started?.initPID != nil }
        let initPID = try #require(started?.initPID, "PID 1 was not started")
        try await Task.sleep(for: .milliseconds(100))
        #expect(kill(initPID, 0) == 0, "PID 1 should wait for its configuration")
        started = nil
        let gone = try await TestSupport.waitUntil { kill(initPID, 0) != 0 && errno == ESRCH }
        #expect(gone, "PID 1 of a released, never run sandbox is still there (or not reaped)")
        _ = started
    }

    /// At the job's end PID 1 moves itself out of the job's cgroup, so
    /// `ended` removes the group without waiting for PID 1's exit (the
    /// kernel tearing its namespaces down); PID 1 is reaped afterwards on
    /// the sandbox's thread: no group and, soon, no zombie are left.
    @Test func theJobsGroupIsGoneAtItsEndAndPID1IsReapedAfterwards() async throws {
        let parents = CgroupProbe.parents
        guard !parents.isEmpty else { return } // no cgroup to check here
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = Sandbox.start(network: .none)
        let result = try await started.run(configuration("cat /proc/self/cgroup"), output: files.output())
        #expect(result.termination == .exited(0))
        let initPID = try #require(started.initPID)
        let name = try #require(files.text().split(whereSeparator: { $0 == "/" || $0 == "\n" })
            .first { $0.hasPrefix("job-") }.map(String.init), "the job was in no job group: \(files.text())")
        await started.ended()
        for parent in parents {
            #expect(!FileManager.default.fileExists(atPath: parent.path + "/" + name),
                    "the job's group \(parent.path)/\(name) outlived the sandbox")
        }
        let reaped = try await TestSupport.waitUntil { kill(initPID, 0) != 0 && errno == ESRCH } // a zombie still answers
        #expect(reaped, "PID 1 was not reaped after the sandbox ended")
    }

    /// What the CLI does when its own preparation fails after the start:
    /// once `discard` returns, PID 1 is reaped already.
    @Test func aDiscardedSandboxIsGoneWhenDiscardReturns() async throws {
        let started = Sandbox.start(network: .none)
        _ = try await TestSupport.waitUntil { started.initPID != nil }
        let initPID = try #require(started.initPID, "PID 1 was not started")
        #expect(kill(initPID, 0) == 0)
        await started.discard()
        #expect(kill(initPID, 0) != 0 && errno == ESRCH, "PID 1 is still there (or not reaped)")
    }

    @Test func aStartedSandboxRefusesAnotherNetworkAndASecondRun() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let loopback = Sandbox.start(network: .loopback)
        await #expect {
            _ = try await loopback.run(configuration("true"), output: files.output())
        } throws: { ($0 as? SandboxError)?.code == .invalidInput }

        let started = Sandbox.start(network: .none)
        let result = try await started.run(configuration("echo once"), output: files.output())
        #expect(result.termination == .exited(0))
        await #expect {
            _ = try await started.run(configuration("echo twice"), output: files.output())
        } throws: { ($0 as? SandboxError)?.code == .invalidInput }
    }

    /// The configuration sent ahead of the run (the one-shot CLI's way):
    /// PID 1 builds the root while the caller prepares the rest, and the
    /// run with it runs. A run with another command but the same mounts
    /// runs that command (the go-ahead's plan is the one PID 1 follows).
    @Test(arguments: [false, true])
    func aConfigurationSentAheadRuns(otherCommand: Bool) async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = Sandbox.start(network: .none)
        let ahead = try configuration("echo ahead")
        started.sendAhead(ahead)
        var config = ahead
        if otherCommand { config.arguments = ["sh", "-c", "echo other"] }
        let result = try await started.run(config, output: files.output())
        #expect(result.termination == .exited(0))
        #expect(files.text() == (otherCommand ? "other\n" : "ahead\n"))
        await started.ended()
    }

    /// Sends `ahead`, runs `run` and expects it to fail as `failed` says,
    /// with nothing of the job run.
    func expectFailure(ahead: SandboxConfiguration, run: SandboxConfiguration,
                       _ failed: @escaping (SandboxError) -> Bool) async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = Sandbox.start(network: .none)
        started.sendAhead(ahead)
        await #expect {
            _ = try await started.run(run, output: files.output())
        } throws: { error in
            (error as? SandboxError).map(failed) ?? false
        }
        #expect(files.text() == "")
        await started.ended()
    }

    /// A run whose mounts (or ids, network, staging directory) are not
    /// those sent ahead, which PID 1 made already, is refused as bad input,
    /// and nothing runs.
    @Test func aRunWithOtherMountsThanThoseSentAheadIsRefused() async throws {
        let ahead = try configuration("echo ahead")
        var other = ahead
        other.mounts.append(Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: "/extra"))
        try await expectFailure(ahead: ahead, run: other) { $0.code == .invalidInput }
    }

    /// A mount that fails among those made ahead fails the run with what
    /// failed, as it would after the go-ahead.
    @Test func aFailingMountMadeAheadFailsTheRun() async throws {
        var config = try configuration("echo never")
        config.mounts.insert(.bind(FilePath("/no/such/source/\(UUID().uuidString)"), at: "/missing"), at: 1)
        try await expectFailure(ahead: config, run: config) { failure in
            failure.code == .setupFailed && "\(failure)".contains("/no/such/source")
        }
    }

    /// RLIMIT_AS and RLIMIT_NPROC come with the cgroup placement: set when
    /// no group holds the job, left alone when one does.
    @Test func rlimitsStandInForAMissingCgroupOnly() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        var config = try configuration("ulimit -v; ulimit -p")
        config.limits.memoryBytes = 256 << 20
        config.limits.processes = 77
        config.cgroups = .unavailable(reason: "test")
        let without = try await Sandbox.run(config, output: files.output())
        #expect(without.termination == .exited(0))
        #expect(files.text() == "262144\n77\n", "\(files.text())")
        #expect(without.enforcement == .rlimit)

        guard CgroupSupport.detected.isAvailable else { return }
        let inGroup = try CaptureFiles()
        defer { inGroup.remove() }
        config.cgroups = nil
        let with = try await Sandbox.run(config, output: inGroup.output())
        #expect(with.termination == .exited(0))
        // Neither was set: address space unlimited, processes as the runner had them.
        let lines = inGroup.text().split(separator: "\n")
        #expect(lines.first == "unlimited" && lines.count == 2 && lines[1] != "77", "\(inGroup.text())")
        #expect(with.enforcement != .rlimit)
    }

    @Test func aSetupFailureThrowsWithTheStageAndPath() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        var config = try configuration("true")
        config.mounts.append(.bind(FilePath("/nonexistent-\(UUID().uuidString)"), at: "/data"))
        do {
            _ = try await Sandbox.run(config, output: files.output())
            Issue.record("a missing bind source did not fail the setup")
        } catch let error as SandboxError {
            #expect(error.code == .setupFailed)
            #expect(error.description.contains("mount"))
            #expect(error.description.contains("/nonexistent-"))
            #expect(error.errno == .noSuchFileOrDirectory)
        }
    }
}
