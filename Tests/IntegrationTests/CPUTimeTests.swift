import Foundation
import Runner
import Sandbox
import SystemPackage
import Testing

/// The CPU limit through the library: without a cgroup to count it
/// (`cgroups: .unavailable`), RLIMIT_CPU per process and SIGXCPU read back
/// as `cpu_time` where that can be told soundly; with the detected cgroup
/// (v1 cpuacct here); and with a cgroup v2 group (`cpu.stat`), made in a
/// v2 hierarchy even when it has no controllers, as on this machine.
@Suite struct CPUTimeTests {
    func run(_ script: String, cpuTime: Duration = .seconds(1), cgroups: CgroupSupport,
             memoryAndProcesses: Bool = true) async throws -> SandboxResult {
        let files = try CaptureFiles()
        defer { files.remove() }
        let configuration = SandboxConfiguration(
            mounts: try RootFilesystem.assembled(skeleton: BuiltinPolicies.skeleton, network: .none, tmpBytes: 16 << 20),
            executable: "/bin/bash", arguments: ["bash", "-c", script],
            environment: [("PATH", "/usr/bin:/bin")], workingDirectory: "/",
            seccomp: try BuiltinPolicies.seccompProgram(),
            limits: ResourceLimits(wallTime: .seconds(20), cpuTime: cpuTime,
                                   memoryBytes: memoryAndProcesses ? ResourceLimits.defaultMemoryBytes : nil,
                                   processes: memoryAndProcesses ? ResourceLimits.defaultProcesses : nil),
            cgroups: cgroups)
        return try await Sandbox.run(configuration, output: files.output())
    }

    static let noCgroups = CgroupSupport.unavailable(reason: "disabled by the test")

    @Test func withoutACgroupTheSpinningMainProcessDiesOfSIGXCPU() async throws {
        let result = try await run("while :; do :; done", cgroups: Self.noCgroups)
        #expect(result.termination == .signaled(SIGXCPU))
        #expect(result.limitHit == .cpuTime)
        #expect(result.cpuTimeEnforcement == .rlimit)
        // RLIMIT_CPU counts scheduler ticks, rusage the runtime: close, not equal.
        #expect(result.userCPUTime + result.systemCPUTime >= .milliseconds(700))
    }

    /// A child killed by SIGXCPU, its status passed on by the shell (128+24):
    /// the sandbox's processes did spend the soft limit, so it is cpu_time.
    @Test func withoutACgroupAChildsSIGXCPUPassedOnIsReported() async throws {
        let result = try await run("python3 -c 'while True: pass'; exit $?", cgroups: Self.noCgroups)
        #expect(result.termination == .exited(128 + SIGXCPU))
        #expect(result.limitHit == .cpuTime)
    }

    /// The fallback's limit: two children of 0.6 s each, 1.2 s in all,
    /// with a 1 s limit. No process reaches RLIMIT_CPU, so nothing stops
    /// the job; only the cgroup's count of the whole job would.
    @Test func withoutACgroupOnlyEachProcessIsLimited() async throws {
        let result = try await run("""
        for i in 1 2; do python3 -c 'import time
        start = time.process_time()
        while time.process_time() - start < 0.6: pass'; done
        """, cgroups: Self.noCgroups)
        #expect(result.termination == .exited(0))
        #expect(result.limitHit == .none)
        #expect(result.cpuTimeEnforcement == .rlimit)
        #expect(result.userCPUTime + result.systemCPUTime >= .milliseconds(1200))
    }

    /// Exiting 152 without spending the CPU is just an exit status.
    @Test func anExitStatusOf152AloneIsNotACPULimit() async throws {
        let result = try await run("exit 152", cgroups: Self.noCgroups)
        #expect(result.termination == .exited(152))
        #expect(result.limitHit == .none)
    }

    /// With the cgroup the whole job is counted and the supervisor ends it
    /// at the budget, well before RLIMIT_CPU (kept a second past it).
    @Test(.enabled(if: CgroupProbe.accountsCPU, "needs a cgroup that accounts CPU time"))
    func withACgroupTheBudgetIsTheWholeJobs() async throws {
        let result = try await run("""
        for i in 1 2 3; do python3 -c 'import time
        start = time.process_time()
        while time.process_time() - start < 0.3: pass'; done; sleep 5
        """, cpuTime: .milliseconds(500), cgroups: .detected)
        #expect(result.termination == .signaled(SIGKILL))
        #expect(result.limitHit == .cpuTime)
        #expect(result.cpuTimeEnforcement != .rlimit)
        let cpu = result.userCPUTime + result.systemCPUTime
        #expect(cpu >= .milliseconds(500) && cpu < .milliseconds(800), "\(cpu)")
    }

    /// A fresh parent for job groups in the v2 hierarchy (the test's own
    /// v2 group), or nil where there is none or it cannot be written.
    static func v2Parent() -> String? {
        guard let mountinfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
              let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
              let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }),
              let mount = mountinfo.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") }) else { return nil }
        let point = String(mount.split(separator: " ")[4])
        let own = String(line.dropFirst(3))
        let parent = point + (own == "/" ? "" : own) + "/syft-test-v2-\(UInt32.random(in: 0 ... .max))"
        guard mkdir(parent, 0o755) == 0 else { return nil }
        guard FileManager.default.fileExists(atPath: parent + "/cpu.stat") else {
            rmdir(parent)
            return nil
        }
        return parent
    }

    /// cgroup v2 (`cpu.stat` usage_usec, there without the cpu controller):
    /// the same whole-job budget, and the job's CPU read from the group.
    @Test func aV2GroupCountsAndEndsTheWholeJob() async throws {
        guard let parent = Self.v2Parent() else { return }
        defer { rmdir(parent) }
        // No memory or pids limits: this v2 hierarchy has no such controllers.
        let result = try await run("""
        python3 -c 'while True: pass' & python3 -c 'while True: pass' & wait
        """, cpuTime: .milliseconds(600), cgroups: .v2(parent: FilePath(parent)), memoryAndProcesses: false)
        #expect(result.termination == .signaled(SIGKILL))
        #expect(result.limitHit == .cpuTime)
        #expect(result.enforcement == .cgroupV2)
        #expect(result.cpuTimeEnforcement == .cgroupV2)
        let cpu = result.userCPUTime + result.systemCPUTime
        #expect(cpu >= .milliseconds(600) && cpu < .milliseconds(900), "\(cpu)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        #expect(!left.contains { $0.hasPrefix("job-") }, "\(left)")
    }
}
