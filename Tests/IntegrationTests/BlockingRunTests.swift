import Foundation
import Runner
@testable import Sandbox
import SystemPackage
import Testing

/// The one-shot CLI's way to run a started sandbox: `sendAhead`, then
/// `runBlocking` and `waitUntilEnded` on a plain thread (the CLI's main
/// thread), not a task.
@Suite struct BlockingRunTests {
    func configuration(_ script: String) throws -> SandboxConfiguration {
        try TestSupport.shellConfiguration(script)
    }

    /// `body` on a thread of its own, as the CLI's main thread runs it (not
    /// on the cooperative pool, which a blocked test would starve).
    func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Waits until PID 1 is cloned and the sandbox's thread has had time to
    /// wait for its work (the plan ahead, the run).
    func waitUntilStarted(_ started: StartedSandbox) async throws {
        _ = try await TestSupport.waitUntil { started.initPID != nil }
        try await Task.sleep(for: .milliseconds(50))
    }

    /// Sent ahead at once (the sandbox's thread may still be starting) or
    /// once it waits; either way the job runs, and once `waitUntilEnded`
    /// returns its group is gone; PID 1, which waits to be let go once it
    /// left the group, is let go and reaped right after.
    @Test(arguments: [false, true])
    func aBlockingRunAfterThePlanSentAheadRunsAndLeavesNothing(startedFirst: Bool) async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = Sandbox.start(network: .none)
        if startedFirst { try await waitUntilStarted(started) }
        let config = try configuration("echo ran; cat /proc/self/cgroup")
        let output = files.output()
        let result = try await onThread {
            started.sendAhead(config)
            let result = try started.runBlocking(config, output: output)
            started.waitUntilEnded()
            return result
        }
        #expect(result.termination == .exited(0))
        #expect(files.text().hasPrefix("ran\n"), "\(files.text())")
        let initPID = try #require(started.initPID)
        if let name = files.text().split(whereSeparator: { $0 == "/" || $0 == "\n" }).first(where: { $0.hasPrefix("job-") }) {
            for parent in CgroupProbe.parents {
                #expect(!FileManager.default.fileExists(atPath: parent.path + "/" + name),
                        "the job's group \(parent.path)/\(name) outlived waitUntilEnded")
            }
        } else {
            #expect(CgroupProbe.parents.isEmpty, "the job was in no job group: \(files.text())")
        }
        // Let go and reaped at once (the sandbox's thread kills a PID 1
        // that is still there after 5 s).
        let reaped = try await TestSupport.waitUntil(2) { kill(initPID, 0) != 0 && errno == ESRCH }
        #expect(reaped, "PID 1 was not reaped within 2 s of the blocking run")
    }

    /// A caller whose process exits next (the CLI, whose exit closes the
    /// descriptors the sandbox's thread would wait on) lets PID 1 go from
    /// its own thread, and the sandbox's thread leaves PID 1 be: PID 1
    /// exits, and is still there to be reaped (by this test; by whoever
    /// reaps the CLI's orphans) well after. Were the sandbox's thread to go
    /// on to wait for it and reap it, as it does for any other caller, the
    /// test's reaping would find nothing; were PID 1 not let go, it would
    /// not exit. The sandbox's thread, waiting for the let-go, ends.
    @Test func aCallerWhoseProcessExitsNextLetsPID1GoAndTheThreadLeavesItBe() async throws {
        let (initPID, thread) = try await runBlocking(Sandbox.start(network: .none), sayingProcessExits: false,
                                                      thenExiting: true)
        let exited = try await TestSupport.waitUntil(2) { hasExited(initPID) }
        #expect(exited, "PID 1 was not let go: it did not exit within 2 s")
        let threadEnded = try await TestSupport.waitUntil(2) { isGone(thread: thread) }
        #expect(threadEnded, "the sandbox's thread was still there 2 s after its caller said it exits")
        try await Task.sleep(for: .milliseconds(300))
        #expect(hasExited(initPID), "PID 1 was reaped by the sandbox's thread after its caller said it exits")
        var info = siginfo_t()
        _ = waitid(P_PID, id_t(initPID), &info, WEXITED)
    }

    /// A caller that says at the run that its process exits after it (the
    /// CLI: `runBlocking(processExits: true)`) has the sandbox's thread
    /// end as soon as the job's group is gone, while PID 1 waits for the
    /// caller's let-go: the process's exit then has no second thread to
    /// wake on the way to its parent's wait. Were the thread to stay for
    /// the let-go (as for any other caller), it would still be there
    /// before `waitUntilEnded`; were PID 1 let go at the thread's end, it
    /// would have exited before it. After the let-go PID 1 exits, and is
    /// left unreaped (to this test; to whoever reaps the CLI's orphans).
    @Test func aCallerWhoseProcessExitsAfterTheRunHasTheThreadEndAtTheJobsEnd() async throws {
        let started = Sandbox.start(network: .none)
        let (initPID, thread) = try await runBlocking(started, sayingProcessExits: true, thenExiting: false)
        let threadEnded = try await TestSupport.waitUntil(2) { isGone(thread: thread) }
        #expect(threadEnded, "the sandbox's thread was still there 2 s after the run")
        try await Task.sleep(for: .milliseconds(100))
        #expect(!hasExited(initPID), "PID 1 exited before its caller let it go")
        try await onThread { started.waitUntilEnded(processExits: true) }
        let exited = try await TestSupport.waitUntil(2) { hasExited(initPID) }
        #expect(exited, "PID 1 was not let go: it did not exit within 2 s")
        var info = siginfo_t()
        _ = waitid(P_PID, id_t(initPID), &info, WEXITED)
    }

    /// `echo ran` run blocking on `started` (its plan sent ahead), on a
    /// thread of its own: `runBlocking(processExits: sayingProcessExits)`,
    /// then `waitUntilEnded(processExits: true)` when `thenExiting`. The
    /// run's PID 1 and the sandbox's thread.
    func runBlocking(_ started: StartedSandbox, sayingProcessExits: Bool,
                     thenExiting: Bool) async throws -> (initPID: Int32, thread: Int32) {
        let files = try CaptureFiles()
        defer { files.remove() }
        let config = try configuration("echo ran")
        let output = files.output()
        let result = try await onThread { () -> SandboxResult in
            started.sendAhead(config)
            let result = try started.runBlocking(config, output: output, processExits: sayingProcessExits)
            if thenExiting { started.waitUntilEnded(processExits: true) }
            return result
        }
        #expect(result.termination == .exited(0))
        #expect(files.text() == "ran\n")
        return (try #require(started.initPID), try #require(started.threadID))
    }

    /// True once `pid`, a child of this process, has exited (not reaped).
    func hasExited(_ pid: Int32) -> Bool {
        var info = siginfo_t()
        let waited = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
        return waited == 0 && info._sifields._sigchld.si_pid == pid
    }

    /// True once this process has no thread `thread`.
    func isGone(thread: Int32) -> Bool {
        access("/proc/self/task/\(thread)", F_OK) != 0
    }

    /// A blocking run without a plan sent ahead runs too.
    @Test func aBlockingRunWithoutAPlanAheadRuns() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = Sandbox.start(network: .none)
        try await waitUntilStarted(started)
        let config = try configuration("echo plain")
        let output = files.output()
        let result = try await onThread { try started.runBlocking(config, output: output) }
        #expect(result.termination == .exited(0))
        #expect(files.text() == "plain\n")
        try await onThread { started.waitUntilEnded() }
    }

    /// A failed blocking run throws only once nothing of it is left: PID 1
    /// is reaped when the error arrives (the CLI exits right after), and a
    /// second run of the same sandbox is refused. Failed before the
    /// go-ahead (mounts other than those sent ahead) or at it (a mount
    /// source that does not exist, found by PID 1 while it built the root
    /// ahead).
    @Test(arguments: [false, true])
    func aFailedBlockingRunLeavesNothingAndASecondIsRefused(failingMount: Bool) async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = Sandbox.start(network: .none)
        try await waitUntilStarted(started)
        let initPID = try #require(started.initPID)
        var ahead = try configuration("echo ahead")
        var changed = ahead
        if failingMount {
            ahead.mounts.insert(.bind(FilePath("/no/such/source/\(UUID().uuidString)"), at: "/missing"), at: 1)
            changed = ahead
        } else {
            changed.mounts.append(Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: "/extra"))
        }
        let (sent, run) = (ahead, changed)
        let output = files.output()
        let (first, alive, second) = try await onThread { () -> (SandboxError.Code?, Bool, SandboxError.Code?) in
            started.sendAhead(sent)
            var codes: [SandboxError.Code?] = []
            var alive = true
            for _ in 0..<2 {
                do {
                    _ = try started.runBlocking(run, output: output)
                    codes.append(nil)
                } catch let error as SandboxError {
                    codes.append(error.code)
                }
                if codes.count == 1 { alive = kill(initPID, 0) == 0 }
            }
            return (codes[0], alive, codes[1])
        }
        #expect(first == (failingMount ? .setupFailed : .invalidInput))
        #expect(!alive, "PID 1 was still there (or not reaped) when the failed run threw")
        #expect(second == .invalidInput)
        #expect(files.text() == "")
        try await onThread { started.waitUntilEnded() }
    }

    /// The job's group of a run that failed once the group was made (the
    /// job's program does not exist: its exec fails) is gone when the
    /// error arrives: the CLI exits right after. Its groups
    /// go under parents of this test's own (v1 here; a v2 parent would need
    /// its controllers delegated).
    @Test func aFailedBlockingRunRemovesItsGroupBeforeItThrows() async throws {
        guard case let .v1(hierarchies) = CgroupSupport.detected else { return }
        let name = "test-blocking-\(UUID().uuidString)"
        let own = hierarchies.map { CgroupSupport.Hierarchy(controller: $0.controller, parent: $0.parent.appending(name)) }
        for hierarchy in own { #expect(mkdir(hierarchy.parent.string, 0o755) == 0) }
        defer { for hierarchy in own { rmdir(hierarchy.parent.string) } }
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = StartedSandbox(network: .none, cgroups: .v1(hierarchies: own), pool: nil)
        var config = try configuration("echo never")
        config.executable = "/no/such/program"
        let (failing, output) = (config, files.output())
        let left = try await onThread { () -> [String] in
            started.sendAhead(failing)
            do {
                _ = try started.runBlocking(failing, output: output)
                return ["the run did not fail"]
            } catch {}
            return own.flatMap { hierarchy in
                ((try? FileManager.default.contentsOfDirectory(atPath: hierarchy.parent.string)) ?? [])
                    .filter { $0.hasPrefix("job-") }.map { "\(hierarchy.parent)/\($0)" }
            }
        }
        #expect(left.isEmpty, "the failed run's groups were still there when it threw: \(left)")
        try await onThread { started.waitUntilEnded() }
    }
    /// `whileRunning` runs on the calling thread while the job runs: the job
    /// waits for a FIFO in its folder, which only `whileRunning` writes to.
    /// Run after the job's end instead, the job would wait out its 5 s and
    /// fail.
    @Test func whileRunningRunsOnTheCallerWhileTheJobRuns() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("syft-fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o666) == 0)
        let files = try CaptureFiles()
        defer { files.remove() }
        var config = try configuration("read -r word < /job/fifo && echo \"got $word\"")
        config.mounts.append(.bind(FilePath(folder.path), at: "/job"))
        config.limits.wallTime = .seconds(5)
        let (job, output) = (config, files.output())
        let started = Sandbox.start(network: .none)
        let (result, caller) = try await onThread { () -> (SandboxResult, Bool) in
            var onCaller = false
            let caller = pthread_self()
            let result = try started.runBlocking(job, output: output) {
                onCaller = pthread_equal(pthread_self(), caller) != 0
                // Non-blocking: there is no reader until the job reads.
                let deadline = Date().addingTimeInterval(5)
                var fd: Int32 = -1
                while fd < 0 && Date() < deadline {
                    fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                    if fd < 0 { usleep(1000) }
                }
                if fd >= 0 {
                    _ = "hello\n".withCString { write(fd, $0, 6) }
                    close(fd)
                }
            }
            started.waitUntilEnded()
            return (result, onCaller)
        }
        #expect(caller)
        #expect(result.termination == .exited(0), "\(result.termination) \(files.text())")
        #expect(files.text() == "got hello\n", "\(files.text())")
    }

    /// A run that fails to start still runs `whileRunning`, once, before it throws.
    @Test func whileRunningRunsOnceForARunThatNeverStarts() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        var config = try configuration("echo never")
        config.executable = "/no/such/program"
        let (failing, output) = (config, files.output())
        let started = Sandbox.start(network: .none)
        let calls = try await onThread { () -> Int in
            var calls = 0
            do {
                _ = try started.runBlocking(failing, output: output) { calls += 1 }
            } catch {}
            started.waitUntilEnded()
            return calls
        }
        #expect(calls == 1)
    }

    /// After a blocking run, PID 1 waits to exit until the caller has
    /// written its results (`waitUntilEnded`): its exit's teardown of the
    /// namespaces stays out of their way. Then it is let go and reaped.
    @Test func theRunsPID1WaitsForTheCallersWaitUntilEnded() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let started = Sandbox.start(network: .none)
        let config = try configuration("true")
        let output = files.output()
        let result = try await onThread { try started.runBlocking(config, output: output) }
        #expect(result.termination == .exited(0))
        let initPID = try #require(started.initPID)
        try await Task.sleep(for: .milliseconds(200))
        #expect(kill(initPID, 0) == 0, "PID 1 exited before the caller's waitUntilEnded")
        try await onThread { started.waitUntilEnded() }
        let reaped = try await TestSupport.waitUntil(2) { kill(initPID, 0) != 0 && errno == ESRCH }
        #expect(reaped, "PID 1 was not reaped within 2 s of waitUntilEnded")
    }

    /// The sandbox's thread wakes the blocked caller away from its own CPU
    /// at the job's end (cpus.c): the caller has its own CPUs back when
    /// runBlocking returns, not a mask short of one.
    @Test func theCallerHasItsCPUsBackAfterABlockingRun() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let config = try configuration("true")
        let output = files.output()
        let (before, after) = try await onThread {
            let before = CPUMask.ofThisThread()
            let started = Sandbox.start(network: .none)
            _ = try started.runBlocking(config, output: output)
            let after = CPUMask.ofThisThread()
            started.waitUntilEnded()
            return (before, after)
        }
        #expect(after == before)
    }
}
