import Foundation
import Sandbox
import Testing

/// PID 1 starts on a CPU other than its caller's (cpus.c: on a small
/// machine the caller's CPU is the busy one), and gets the caller's
/// affinity back once its plan woke it, before the job exists: the job may run on
/// the CPUs its caller may, no fewer and no others.
@Suite struct CPUAffinityTests {
    static let script = "grep Cpus_allowed_list /proc/self/status"

    /// This process's allowed CPUs, the line the job prints.
    static func callersLine() throws -> String {
        let line = try #require(CPUMask.line(inStatus: "/proc/self/status"))
        return line + "\n"
    }

    /// The one-shot CLI, whose PID 1 is cloned by its constructor (early.c).
    @Test func theOneShotJobMayRunWhereItsCallerMay() async throws {
        let job = try JobFixture(Self.script)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == (try Self.callersLine()))
    }

    /// The Swift API, whose PID 1 is cloned by the sandbox's thread.
    @Test func theSwiftAPIsJobMayRunWhereItsCallerMay() async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        let result = try await Sandbox.run(try TestSupport.shellConfiguration(Self.script), output: files.output())
        #expect(result.termination == .exited(0), "\(files.text(.stderr))")
        #expect(files.text() == (try Self.callersLine()))
    }

    /// A caller held to one CPU: PID 1 is not moved (there is nowhere
    /// else), and the job stays on that CPU too.
    @Test func aCallerHeldToOneCPUKeepsItsJobThere() async throws {
        // The highest CPU this process may use: the list's last number ("0-1", "0,2-3").
        let list = try Self.callersLine().split(separator: "\t").last ?? ""
        let last = try #require(list.split(whereSeparator: { $0 == "," || $0 == "-" }).last
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let job = try JobFixture(Self.script)
        let run = await TestSupport.run(["/usr/bin/taskset", "-c", "\(last)", TestSupport.binary,
                                         "--results", job.results.path, job.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "Cpus_allowed_list:\t\(last)\n")
    }

    /// The one-shot CLI's sandbox thread starts on its caller's CPU (it
    /// would share PID 1's otherwise) and is let go once the job runs: while
    /// the job runs, it may run wherever the CLI may.
    @Test func theSandboxThreadIsLetGoOnceTheJobRuns() async throws {
        let job = try JobFixture("echo ready; sleep 30")
        let process = try await TestSupport.startCLI(job, [])
        defer { process.terminate() }
        let tasks = "/proc/\(process.processIdentifier)/task"
        let thread = try #require(try FileManager.default.contentsOfDirectory(atPath: tasks).first { tid in
            (try? String(contentsOfFile: "\(tasks)/\(tid)/comm", encoding: .utf8)) == "sandbox\n"
        }, "no thread named sandbox")
        let line = CPUMask.line(inStatus: "\(tasks)/\(thread)/status")
        #expect(line.map { $0 + "\n" } == (try Self.callersLine()))
    }
}
