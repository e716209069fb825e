import CSandbox
import Glibc
import SystemPackage

/// Runs one sandbox from clone to reap on a dedicated thread: one poll()
/// loop over the stdout and stderr pipes, the pidfd of the sandbox's PID 1
/// and a cancellation eventfd, with the nearest deadline as poll's timeout.
/// No polling intervals: every wake-up is an event or a deadline.
///
/// Deadlines: the wall-clock timeout, and, when the job's cgroup accounts
/// CPU time and a CPU limit is set, the earliest moment the job could have
/// spent its CPU budget: the budget left divided by the CPUs it may run on
/// (see `CPUBudget`). At that moment the group's counter is read; over the
/// limit, the whole sandbox is killed (as on timeout), else the next check
/// is planned the same way. A job that sleeps is checked rarely, one that
/// spins on every CPU at the moment its budget runs out.
final class Supervisor: @unchecked Sendable {
    let configuration: SandboxConfiguration
    private let output: OutputCapture
    private let control: SandboxControl?
    let cancelFD: Int32
    /// The pipes and the plan, made here, on the caller's thread, before
    /// the handoff (the sandbox's thread may still be in the clone).
    let prepared: PreparedStart
    /// Called on the sandbox's thread once the job runs (its exec done), or
    /// not at all when it never does.
    var jobStarted: (@Sendable () -> Void)?

    /// `prepared`: made already for this configuration (`StartedSandbox.sendAhead`).
    init(configuration: SandboxConfiguration, output: OutputCapture, control: SandboxControl?,
         prepared: PreparedStart? = nil) throws {
        self.configuration = configuration
        self.output = output
        self.control = control
        self.prepared = try prepared ?? PreparedStart(configuration)
        cancelFD = csb_eventfd()
        guard cancelFD >= 0 else {
            throw SandboxError(.setupFailed, "create the cancellation eventfd", errno: Errno(rawValue: errno))
        }
    }

    deinit { close(cancelFD) }

    /// What `cancel` adds to the eventfd. A cancellation is this much or
    /// more: a stray write of another component's (an event loop waking a
    /// descriptor it closed, whose number this eventfd now has: seen with
    /// SwiftNIO loops shut down in tests) adds 1 and is ignored.
    static let cancelToken: UInt64 = 1 << 32

    /// Asks the loop to kill the sandbox (safe from any thread).
    func cancel() {
        var token = Self.cancelToken
        _ = write(cancelFD, &token, 8)
    }

    /// True when the eventfd holds a cancellation (reading it clears it:
    /// a later `cancel` is seen again).
    func takeCancellation() -> Bool {
        var value: UInt64 = 0
        guard read(cancelFD, &value, 8) == 8 else { return false }
        return value >= Self.cancelToken
    }

    /// Finishes the start `launch` made (plan and go-ahead; cgroup, limits
    /// and placement while PID 1 builds the root; the job's exec) and runs
    /// the job to its end: returns once nothing of it can run any more and
    /// both pipes are drained, which may be while PID 1 is still exiting
    /// (the kernel tearing the namespaces down); `launch.finish()` then
    /// reaps it and releases the rest.
    func run(from launch: SandboxLaunch) -> RunOutcome {
        let received = ContinuousClock.now
        if let failure = launch.failure { return .failed(failure) }
        if let ahead = launch.sentAhead, !Self.matches(configuration, ahead) {
            launch.stop()
            return .failed(SandboxError(
                .invalidInput, "the configuration is not the one sent ahead of the run",
                hint: "run the sandbox with the mounts, ids, network and staging directory given to sendAhead"))
        }
        guard configuration.network == launch.network else {
            launch.stop()
            return .failed(SandboxError(
                .invalidInput, "the configuration asks for the \(configuration.network) network, but the sandbox was started with \(launch.network)",
                hint: "start the sandbox with the network policy its configuration names"))
        }
        let (stdoutPipe, stderrPipe) = (prepared.stdout, prepared.stderr)
        let budget: CPUBudget?
        let lateDetection: Duration
        switch setUp(launch) {
        case let .started(cpuBudget, detection):
            (budget, lateDetection) = (cpuBudget, detection)
        case let .failed(error):
            return .failed(error)
        }
        // The go-ahead and the cgroup are done: the thread may leave its
        // caller's CPU (cpus.c). Best effort: held, it still runs.
        _ = csb_thread_release_cpu(&launch.heldCPU)
        jobStarted?()
        let cgroup = launch.cgroup
        let running = ContinuousClock.now
        // While the job starts: groups a runner that is gone left behind.
        launch.support?.sweepStaleGroupsOnce(ownGroups: cgroup == nil ? 0 : 1)

        let streams = [
            CaptureStream(name: .stdout, pipe: stdoutPipe.read, file: output.stdout, limit: configuration.limits.outputBytes),
            CaptureStream(name: .stderr, pipe: stderrPipe.read, file: output.stderr, limit: configuration.limits.outputBytes),
        ]
        let deadline = configuration.limits.wallTime.map { received + $0 }
        var cpuCheck: ContinuousClock.Instant?
        var cpuSpent = false
        func checkCPU(_ budget: CPUBudget, at now: ContinuousClock.Instant) {
            switch budget.check(at: now) {
            case .spent: cpuSpent = true; cpuCheck = nil
            case let .checkAgain(at): cpuCheck = at
            case .unreadable: cpuCheck = nil
            }
        }
        if let budget { checkCPU(budget, at: running) }
        var limitHit = SandboxResult.LimitHit.none
        var usage: csb_usage?
        var report: csb_report?
        var reportPending = true
        var endedAt = ContinuousClock.now
        var killed = false
        func kill(_ reason: SandboxResult.LimitHit) {
            if limitHit == .none { limitHit = reason }
            if !killed {
                _ = csb_signal(&launch.child, SIGKILL)
                killed = true
            }
        }
        /// PID 1's report, if it is there: EAGAIN leaves it pending, a
        /// socket closed without one (PID 1 killed) ends the wait for it.
        func takeReport() {
            var taken = csb_report()
            switch csb_take_report(&launch.child, &taken) {
            case 0:
                report = taken
                launch.reported(taken)
                reportPending = false
                endedAt = .now
            case EAGAIN: break
            default: reportPending = false
            }
        }
        /// The job's main process ended (PID 1 said so, or is gone).
        var jobEnded: Bool { usage != nil || report != nil }
        /// Nothing of the job can run any more: PID 1 was reaped, or
        /// reported that it had reaped everything (it is exiting now; the
        /// launch's `finish` reaps it after this returns).
        var sandboxEnded: Bool { usage != nil || report?.alone == 1 }

        while !sandboxEnded || streams.contains(where: { !$0.finished }) {
            var fds = [pollfd(fd: usage == nil ? launch.child.pidfd : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: killed || jobEnded ? -1 : control?.readEnd ?? -1, events: Int16(POLLIN), revents: 0)]
            for stream in streams {
                fds.append(pollfd(fd: stream.finished ? -1 : stream.pipe, events: Int16(POLLIN), revents: 0))
            }
            fds.append(pollfd(fd: reportPending && usage == nil ? launch.child.status_fd : -1, events: Int16(POLLIN),
                              revents: 0))
            var timeout: Int32 = -1
            if !jobEnded, !killed, let wake = Self.earliest(deadline, cpuCheck) {
                let remaining = ContinuousClock.now.duration(to: wake)
                timeout = remaining <= .zero ? 0 : Int32(clamping: Self.milliseconds(remaining) + 1)
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0, errno == EINTR { continue }
            // A descriptor of this loop closed by someone else (its number
            // may already be reused) or poll failing: nothing it reports can
            // be trusted, so the sandbox is stopped and the run fails as a
            // defect, not as a cancellation or a job's own ending.
            if let broken = ready < 0 ? "poll() failed: \(Errno(rawValue: errno).symbolicName)" : Self.closedDescriptor(in: fds) {
                launch.stop()
                for index in streams.indices { streams[index].finish() }
                return .failed(SandboxError(
                    .internalError, "the sandbox was stopped because its supervisor lost track of it: \(broken)",
                    hint: "a defect of syft-sandbox-run (a descriptor closed twice elsewhere in the process); please report it"))
            }
            if let deadline, !jobEnded, !killed, ContinuousClock.now >= deadline { kill(.timeout) }
            // The job ended on its own: it is not judged on CPU it may have
            // spent since the last check.
            if let budget, let due = cpuCheck, !jobEnded, !killed, fds[0].revents == 0, fds[5].revents == 0 {
                let now = ContinuousClock.now
                if now >= due { checkCPU(budget, at: now) }
            }
            if cpuSpent, !jobEnded { kill(.cpuTime) }
            if fds[1].revents != 0, takeCancellation() { kill(.cancelled) }
            if fds[2].revents != 0, let control {
                for signal in control.drain() where !killed {
                    if signal == SIGKILL { kill(.cancelled) } else { _ = csb_signal(&launch.child, signal) }
                }
            }
            for index in streams.indices where fds[3 + index].revents != 0 {
                streams[index].pump(sink: output.sink)
                if streams[index].overLimit { kill(.output) }
            }
            if fds[5].revents != 0 { takeReport() }
            if fds[0].revents != 0 {
                var reaped = csb_usage()
                if csb_reap(&launch.child, &reaped) == 0 {
                    usage = reaped
                    launch.reaped(inOrder: true)
                    if reportPending { takeReport() } // sent just before PID 1 exited
                    if report == nil { endedAt = .now }
                }
            }
        }
        for index in streams.indices { streams[index].finish() }
        var outcome = result(usage: usage, report: report, limitHit: limitHit, streams: streams,
                             wallTime: received.duration(to: .now), fallbacks: Int(launch.child.idmap_fallbacks))
        Self.account(cgroup: cgroup, note: launch.cgroupNote, cpuReported: report?.alone == 1, into: &outcome)
        if configuration.limits.cpuTime != nil {
            outcome.cpuTimeEnforcement = budget == nil ? .rlimit : outcome.enforcement
        }
        outcome.exported = takeExports(&launch.child)
        outcome.startedEarly = launch.startedEarly
        // The launch, and the finish from the configuration's arrival on
        // (not the wait for it: the caller was preparing the job).
        outcome.setupTime = launch.duration + received.duration(to: running) - lateDetection
        // PID 1's reap and the cgroup's removal are not counted: the
        // launch's `finish` does them after this returns.
        outcome.teardownTime = endedAt.duration(to: .now)
        return .finished(outcome)
    }

    /// True when `configuration` has the mounts, ids, network and staging
    /// directory of the one sent ahead (what PID 1 used of it).
    static func matches(_ configuration: SandboxConfiguration, _ ahead: SandboxConfiguration) -> Bool {
        configuration.mounts == ahead.mounts && configuration.identity == ahead.identity
            && configuration.network == ahead.network && configuration.stagingDirectory == ahead.stagingDirectory
    }

    /// Takes ownership of the exported roots from the C record.
    private func takeExports(_ child: inout csb_child) -> [ExportedFilesystem] {
        let targets = configuration.mounts.compactMap { mount -> String? in
            if case .exportedTmpfs = mount.kind { return mount.target } else { return nil }
        }
        let fds = withUnsafeBytes(of: child.exported_fds) { Array($0.bindMemory(to: Int32.self)) }
        let count = Int(child.exported_count)
        child.exported_count = 0
        return (0..<count).map { ExportedFilesystem(target: targets[$0], descriptor: FileDescriptor(rawValue: fds[$0])) }
    }

    /// The earlier of two moments, or the one there is. (Not `[a, b]
    /// .compactMap { $0 }.min()`: an array of optionals and a Comparable
    /// witness looked up at run time, in every run.)
    static func earliest(_ first: ContinuousClock.Instant?, _ second: ContinuousClock.Instant?) -> ContinuousClock.Instant? {
        guard let first else { return second }
        guard let second else { return first }
        return second < first ? second : first
    }

    /// RLIMIT_CPU behind a cgroup-enforced budget: a quarter more, at least a second.
    static func backstopSeconds(_ limit: Duration) -> Int64 {
        let seconds = rlimitSeconds(limit)
        return seconds + max(1, (seconds + 3) / 4)
    }

    /// RLIMIT_CPU's soft value for a limit, as SpawnPlan rounds it: whole
    /// seconds, up, at least one.
    static func rlimitSeconds(_ limit: Duration) -> Int64 {
        max(1, limit.components.seconds + (limit.components.attoseconds > 0 ? 1 : 0))
    }

    /// What the cgroup saw, and the limit it names when the job did not
    /// end well on its own: an OOM kill means memory, a refused fork pids.
    /// The group's CPU time is the total (every process it held, those
    /// killed at teardown included, and those whose parent ignored SIGCHLD,
    /// whose rusage nobody collects). `cpuReported`: PID 1 reaped every
    /// process, so `result` holds the split of its report already, and
    /// only the group's total is read (one file, not four on v1) and split
    /// in that ratio.
    private static func account(cgroup: JobCgroup?, note: String?, cpuReported: Bool,
                                into result: inout SandboxResult) {
        result.cgroupNote = note
        guard let cgroup else { return }
        let usage = cgroup.usage(withCPU: !cpuReported)
        result.enforcement = cgroup.version == 2 ? .cgroupV2 : .cgroupV1
        if let cpu = usage.cpu {
            result.userCPUTime = cpu.user
            result.systemCPUTime = cpu.system
        } else if cpuReported, let total = cgroup.cpuTotal() {
            (result.userCPUTime, result.systemCPUTime) = Self.split(total, like: (result.userCPUTime, result.systemCPUTime))
        }
        result.memoryPeakBytes = usage.memoryPeakBytes
        result.oomKilled = usage.oomKills > 0
        result.processLimitReached = usage.pidsLimitHits > 0
        guard result.limitHit == .none, result.termination != .exited(0) else { return }
        if result.oomKilled { result.limitHit = .memory } else if result.processLimitReached { result.limitHit = .pids }
    }

    /// `total` in the ratio of `reported` user and system time (all user
    /// time when nothing was reported: a job too short for a tick).
    static func split(_ total: Duration, like reported: (user: Duration, system: Duration)) -> (Duration, Duration) {
        let sum = reported.user + reported.system
        guard sum > .zero else { return (total, .zero) }
        let user = total * (reported.user / sum)
        return (user, total - user)
    }

    /// The job's end: from PID 1's report when it came (the job's wait
    /// status, the usage of what PID 1 reaped), else from PID 1's own end
    /// (killed: its rusage holds everything it reaped).
    private func result(usage: csb_usage?, report: csb_report?, limitHit: SandboxResult.LimitHit,
                        streams: [CaptureStream], wallTime: Duration, fallbacks: Int) -> SandboxResult {
        var termination: SandboxResult.Termination
        let userUsec, systemUsec, maxRSS: Int64
        if let report {
            let status = report.wait_status
            termination = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
            (userUsec, systemUsec, maxRSS) = (report.user_usec, report.system_usec, report.max_rss_kb)
        } else {
            let usage = usage ?? csb_usage()
            termination = usage.init_code == CLD_EXITED ? .exited(usage.init_status) : .signaled(usage.init_status)
            (userUsec, systemUsec, maxRSS) = (usage.user_usec, usage.system_usec, usage.max_rss_kb)
        }
        var hit = limitHit
        if hit == .none, let limit = configuration.limits.cpuTime,
           Self.diedOfCPURlimit(termination, sandboxCPU: .microseconds(userUsec + systemUsec),
                                rlimitSeconds: Self.rlimitSeconds(limit)) {
            hit = .cpuTime
        }
        return SandboxResult(
            termination: termination, limitHit: hit, wallTime: wallTime,
            userCPUTime: .microseconds(userUsec), systemCPUTime: .microseconds(systemUsec),
            maxRSSKilobytes: maxRSS,
            stdoutBytes: streams[0].kept, stderrBytes: streams[1].kept,
            outputTruncated: streams.contains { $0.truncated }, idmapFallbacks: fallbacks)
    }

    /// RLIMIT_CPU's verdict, as far as it can be told from outside: the
    /// job's main process died of SIGXCPU, or it exited with 128+SIGXCPU
    /// (a shell whose last command died of it) and the sandbox's processes
    /// (PID 1's rusage: everything reaped) spent the CPU for one of them to
    /// have got the signal. A job merely exiting 152 does not count.
    ///
    /// "The CPU for it" is half the soft limit, not all of it: the kernel
    /// checks RLIMIT_CPU against scheduler tick samples, rusage reports
    /// the runtime, and under load they differ (a process killed at 1 s of
    /// ticks measured as 0.92 s of runtime here).
    ///
    /// Not seen: a process killed by SIGXCPU whose parent then ends some
    /// other way (`python spin.py; exit 1`): nothing outside the job learns
    /// of that death (PID 1 only reaps orphans). With cgroup accounting it
    /// cannot come first: the supervisor ends the job at the budget, well
    /// before any process's RLIMIT_CPU.
    static func diedOfCPURlimit(_ termination: SandboxResult.Termination, sandboxCPU: Duration,
                                rlimitSeconds: Int64) -> Bool {
        switch termination {
        case .signaled(SIGXCPU): true
        case .exited(128 + SIGXCPU): sandboxCPU * 2 >= .seconds(rlimitSeconds)
        default: false
        }
    }

    static func setupError(_ failure: csb_error) -> SandboxError {
        let message = withUnsafeBytes(of: failure.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let stage = SetupStage(rawValue: failure.stage)
        return SandboxError(.setupFailed, "sandbox setup failed at \(stage.name): \(message)",
                            errno: Errno(rawValue: failure.error), hint: stage.hint)
    }

    /// What the poll loop watches, in the order of its `pollfd`s.
    static let pollDescriptorNames = ["the sandbox's pidfd", "the cancellation eventfd", "the control pipe",
                                      "the stdout pipe", "the stderr pipe", "the sandbox's socket"]

    /// The first of `fds` that poll found not open (POLLNVAL), named.
    static func closedDescriptor(in fds: [pollfd]) -> String? {
        guard let index = fds.firstIndex(where: { $0.fd >= 0 && $0.revents & Int16(POLLNVAL) != 0 }) else { return nil }
        let name = index < pollDescriptorNames.count ? pollDescriptorNames[index] : "descriptor #\(index)"
        return "\(name) (descriptor \(fds[index].fd)) was closed while the sandbox ran"
    }

    static func capturePipe() throws(SandboxError) -> (read: Int32, write: Int32) {
        var readEnd: Int32 = -1, writeEnd: Int32 = -1
        let rc = csb_capture_pipe(&readEnd, &writeEnd)
        guard rc == 0 else {
            throw SandboxError(.setupFailed, "create an output pipe", errno: Errno(rawValue: rc))
        }
        return (readEnd, writeEnd)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// Names of the shim's stages, mirroring `enum csb_stage`.
struct SetupStage {
    var rawValue: Int32

    var name: String {
        switch rawValue {
        case 1: "prepare"
        case 2: "clone"
        case 3: "id map"
        case 4: "idmapped mount"
        case 5: "sync"
        case 6: "mount"
        case 7: "pivot_root"
        case 8: "network"
        case 9: "hostname"
        case 10: "init"
        case 11: "file descriptors"
        case 12: "session"
        case 13: "rlimit"
        case 14: "capabilities"
        case 15: "no_new_privs"
        case 16: "seccomp"
        case 17: "chdir"
        case 18: "exec"
        case 19: "cgroup"
        default: "stage \(rawValue)"
        }
    }

    var hint: String? {
        switch rawValue {
        case 2: "the kernel must allow user namespaces (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone = 1)"
        case 6: "check that the path exists, is not a symlink and is readable by the runner"
        case 18: "check that the program exists inside the sandbox's root"
        default: nil
        }
    }
}
