import CSandbox
import Glibc

/// The rest of a sandbox's start, once its configuration is there.
extension Supervisor {
    enum SetUp {
        /// The job runs; `lateDetection`: the process's first look for its
        /// cgroups, made on the way (not this sandbox's own setup time).
        case started(cpuBudget: CPUBudget?, lateDetection: Duration)
        case failed(SandboxError)
    }

    /// The go-ahead (the plan, the output pipes' write ends, which this
    /// closes); while PID 1 builds the root, the cgroup (unless made before
    /// the clone), its limits and the placement; then the wait for the
    /// job's exec. On failure the launch's PID 1 is already stopped.
    func setUp(_ launch: SandboxLaunch) -> SetUp {
        let plan = prepared.plan
        let networkNamespace = launch.networkNamespace ?? -1
        let asSentAhead = launch.sentAheadPlan === prepared
        var failure = csb_error()
        let went = configuration.seccomp.withUnsafeBPF { bpf -> Int32 in
            var config = plan.config(seccomp: bpf, networkNamespace: networkNamespace)
            return csb_spawn_go(&config, &launch.child, asSentAhead, &failure)
        }
        prepared.closeWriteEnds()
        if went != 0 { return .failed(Self.setupError(failure)) }
        let detected = launch.detecting
        launch.makeCgroup()
        let lateDetection = launch.detecting - detected
        let cgroup = launch.cgroup
        var joinFiles: [Int32] = []
        do throws(SandboxError) {
            try cgroup?.apply(JobCgroup.Limits(memoryBytes: configuration.limits.memoryBytes,
                                               processes: configuration.limits.processes))
            joinFiles = try cgroup?.joinFiles(clonedInto: launch.clonedIntoCgroup) ?? []
        } catch {
            launch.stop()
            return .failed(error)
        }
        let budget = configuration.limits.cpuTime.flatMap { limit in
            cgroup.flatMap { $0.accountsCPU ? CPUBudget(limit: limit, cgroup: $0) : nil }
        }
        let placed = Self.placedRlimits(configuration.limits, inCgroup: cgroup != nil, cgroupEnforcesCPU: budget != nil)
        if csb_spawn_place(&launch.child, joinFiles, joinFiles.count, placed, placed.count, &failure) != 0 {
            return .failed(Self.setupError(failure))
        }
        // While PID 1 starts the job, which joins the group.
        cgroup?.openUsageFiles()
        let waited = configuration.seccomp.withUnsafeBPF { bpf -> Int32 in
            var config = plan.config(seccomp: bpf, networkNamespace: networkNamespace)
            return csb_spawn_wait(&config, &launch.child, &failure)
        }
        if waited != 0 { return .failed(Self.setupError(failure)) }
        return .started(cpuBudget: budget, lateDetection: lateDetection)
    }

    /// The job's rlimits that depend on its cgroup, sent with the placement.
    /// Without a group, RLIMIT_AS and RLIMIT_NPROC stand in for its memory
    /// and process limits. With the group enforcing the CPU budget,
    /// RLIMIT_CPU only backs it up well past it (the kernel checks it
    /// against tick samples, which drift from the runtime the cgroup counts
    /// by several percent under load), so the supervisor's kill at the
    /// budget is what a job meets; without it, the per-process RLIMIT_CPU
    /// is the limit (soft: SIGXCPU; one second later the hard one: SIGKILL).
    static func placedRlimits(_ limits: ResourceLimits, inCgroup: Bool, cgroupEnforcesCPU: Bool) -> [csb_rlimit] {
        var result: [csb_rlimit] = []
        if !inCgroup, let bytes = limits.memoryBytes { result.append(SpawnPlan.rlimit(CSB_RLIMIT_AS, bytes)) }
        if !inCgroup, let count = limits.processes { result.append(SpawnPlan.rlimit(CSB_RLIMIT_NPROC, count)) }
        if let limit = limits.cpuTime {
            let seconds = UInt64(cgroupEnforcesCPU ? backstopSeconds(limit) : rlimitSeconds(limit))
            result.append(SpawnPlan.rlimit(CSB_RLIMIT_CPU, seconds, hard: seconds + 1))
        }
        return result
    }

}

/// What a run needs before its go-ahead that does not depend on the
/// launch: the output pipes and the plan. The caller makes it before the
/// handoff, while the sandbox's thread may still be in the clone; it owns
/// the pipes (the write ends until the go-ahead has sent them).
final class PreparedStart {
    let plan: SpawnPlan
    let stdout: (read: Int32, write: Int32)
    let stderr: (read: Int32, write: Int32)
    private var writeEndsOpen = true

    init(_ configuration: SandboxConfiguration) throws(SandboxError) {
        let stdout = try Supervisor.capturePipe()
        let stderr: (read: Int32, write: Int32)
        do throws(SandboxError) {
            stderr = try Supervisor.capturePipe()
        } catch {
            for fd in [stdout.read, stdout.write] { close(fd) }
            throw error
        }
        do {
            plan = try SpawnPlan(configuration, stdout: stdout.write, stderr: stderr.write)
        } catch {
            for fd in [stdout.read, stdout.write, stderr.read, stderr.write] { close(fd) }
            throw error as? SandboxError ?? SandboxError(.setupFailed, "\(error)")
        }
        self.stdout = stdout
        self.stderr = stderr
    }

    /// The sandbox has its copies (or will never run): only the job may write.
    func closeWriteEnds() {
        guard writeEndsOpen else { return }
        writeEndsOpen = false
        close(stdout.write)
        close(stderr.write)
    }

    deinit {
        closeWriteEnds()
        close(stdout.read)
        close(stderr.read)
    }
}
