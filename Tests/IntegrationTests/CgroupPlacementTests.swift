import Foundation
import Runner
@testable import Sandbox
import SystemPackage
import Testing

/// PID 1 enters the job's cgroup before the job exists, whichever way: a v2
/// group made before the clone takes it at the clone (CLONE_INTO_CGROUP);
/// one found only after it (a hybrid layout) through its `cgroup.procs`,
/// written by PID 1 with the runner's credentials. Either way the group
/// counts the job's CPU and is gone after the run. (A v2 group of this
/// machine's controller-less v2 hierarchy, as in CPUTimeTests.)
@Suite struct CgroupPlacementTests {
    @Test(arguments: [true, false])
    func aV2GroupHoldsTheJobWhicheverWayPID1EntersIt(cloneInto: Bool) async throws {
        guard let parent = CPUTimeTests.v2Parent() else { return }
        defer { rmdir(parent) }
        let files = try CaptureFiles()
        defer { files.remove() }
        let configuration = SandboxConfiguration(
            mounts: try RootFilesystem.assembled(skeleton: BuiltinPolicies.skeleton, network: .none, tmpBytes: 16 << 20),
            executable: "/bin/bash", arguments: ["bash", "-c", "python3 -c 'sum(range(60000000))'; cat /proc/self/cgroup"],
            environment: [("PATH", "/usr/bin:/bin")], workingDirectory: "/",
            seccomp: try BuiltinPolicies.seccompProgram(),
            limits: ResourceLimits(wallTime: .seconds(20), memoryBytes: nil, processes: nil))
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<RunOutcome, Never>) in
            Thread {
                let launch = SandboxLaunch(network: .none, cgroups: .v2(parent: FilePath(parent)), pool: nil,
                                           cgroupFirst: cloneInto)
                let result: RunOutcome
                do {
                    let supervisor = try Supervisor(configuration: configuration, output: files.output(), control: nil)
                    result = supervisor.run(from: launch)
                } catch {
                    result = .failed(error as? SandboxError ?? SandboxError(.internalError, "\(error)"))
                }
                launch.finish()
                continuation.resume(returning: result)
            }.start()
        }
        guard case let .finished(result) = outcome else {
            Issue.record("the sandbox did not run: \(outcome)")
            return
        }
        #expect(result.termination == .exited(0), "\(files.text(.stderr))")
        #expect(result.enforcement == .cgroupV2)
        // The group counted the job's CPU (python's sum: about 300 ms here).
        #expect(result.userCPUTime + result.systemCPUTime > .milliseconds(100), "\(result.userCPUTime)")
        // Its v2 line: the group is the cgroup namespace's root when PID 1
        // was cloned into it, else the job's group below the runner's.
        let unified = files.text().split(separator: "\n").first { $0.hasPrefix("0::") }.map(String.init)
        if cloneInto {
            #expect(unified == "0::/", "\(files.text())")
        } else {
            #expect(unified?.contains("/job-") == true, "\(files.text())")
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        #expect(!left.contains { $0.hasPrefix("job-") }, "\(left)")
    }
}
