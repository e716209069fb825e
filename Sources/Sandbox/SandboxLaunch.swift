import CSandbox
import Glibc

/// The part of a sandbox's start that needs none of its configuration, made
/// on the sandbox's own thread: a network namespace from the pool and PID 1
/// cloned into its namespaces, where it waits for the go-ahead
/// (`csb_spawn_go`), and the job's cgroup. (A PID 1 the one-shot command
/// line's constructor cloned is taken on the caller's thread instead,
/// `takeEarly`, and the launch handed to the sandbox's thread later.)
///
/// The order keeps the clone, and then the go-ahead, early. cgroup v2
/// places PID 1 at the clone (CLONE_INTO_CGROUP), so where /sys/fs/cgroup
/// is a unified hierarchy the group is found and made first. Elsewhere PID 1
/// is cloned at once, and the cgroups are found and made (`makeCgroup`)
/// after the go-ahead, while PID 1 builds the root; the job then writes
/// itself into them before anything of its own runs (v1 `tasks`; a v2
/// group found there after all, a hybrid layout with the controllers on
/// its v2 side, through its `cgroup.procs`), and PID 1 stays out.
///
/// It owns what it made until `end` (after `stop` when the sandbox will not
/// run): PID 1's descriptors, the cgroup (removed earlier by `release`
/// when PID 1 was never in it), the pooled namespace.
final class SandboxLaunch {
    let network: NetworkPolicy
    /// How long the start took: the clone and the init's exec included, not
    /// the process's first look for its cgroups (a once-per-process cost).
    private(set) var duration: Duration = .zero
    var child = csb_child()
    private(set) var cgroup: JobCgroup?
    /// True when clone3 placed PID 1 in `cgroup`.
    private(set) var clonedIntoCgroup = false
    /// Why there is no cgroup, when there is none (rlimits stand in).
    private(set) var cgroupNote: String?
    /// The pooled namespace PID 1 joined; nil: a namespace of its own (or the host's).
    let networkNamespace: Int32?
    /// True when PID 1 was the one cloned before the runtime started (early.c).
    private(set) var startedEarly = false
    /// Why PID 1 could not be started; nil when it waits.
    private(set) var failure: SandboxError?
    /// Where the cgroup goes (nil until found).
    private(set) var support: CgroupSupport?
    /// The process's first look for its cgroups, when this launch made it.
    private(set) var detecting = Duration.zero
    private let pool: NetworkNamespacePool?
    private var ended = false
    private var isReaped = false
    private var reapedInOrder = false
    private var cgroupEmpty = false

    /// `cgroups` nil: this process's detected support. `cgroupFirst` nil:
    /// decided as above (tests force either order).
    init(network: NetworkPolicy, cgroups given: CgroupSupport?, pool offered: NetworkNamespacePool?,
         cgroupFirst forced: Bool? = nil) {
        let began = ContinuousClock.now
        self.network = network
        support = given
        // A pooled network namespace goes back only once PID 1 was reaped.
        pool = offered.flatMap { $0.policy == network ? $0 : nil }
        networkNamespace = pool?.lease()
        let v2Given = if case .v2 = given { true } else { false }
        let cgroupFirst = forced ?? (v2Given || given == nil && CgroupSupport.unifiedHierarchyMounted)
        if cgroupFirst, case .v2 = findSupport() { makeCgroup() }
        if networkNamespace == nil, cgroup == nil, let early = Self.takeEarlyClone(network: network, &child) {
            // Cloned before the runtime started (early.c): its own time is the start's.
            (failure, duration, startedEarly) = (early.failure, early.duration, true)
            return
        }
        failure = Self.clone(network: network, networkNamespace: networkNamespace, into: cgroup, &child)
        clonedIntoCgroup = failure == nil && cgroup != nil
        duration = began.duration(to: .now) - detecting
    }

    /// PID 1 as the one-shot command line's constructor cloned it (early.c),
    /// taken on the calling thread; nil when there is none for `network`, or
    /// when this launch needs what it lacks: a pooled network namespace to
    /// clone into, or a cgroup made before the clone (a unified hierarchy).
    /// Such launches are made by `init`, on the sandbox's thread.
    static func takeEarly(network: NetworkPolicy, cgroups given: CgroupSupport?,
                          pool offered: NetworkNamespacePool?) -> SandboxLaunch? {
        if let offered, offered.policy == network { return nil }
        let v2Given = if case .v2 = given { true } else { false }
        if v2Given || given == nil && CgroupSupport.unifiedHierarchyMounted { return nil }
        var child = csb_child()
        guard let early = takeEarlyClone(network: network, &child) else { return nil }
        return SandboxLaunch(network: network, cgroups: given, early: child, failure: early.failure,
                             duration: early.duration)
    }

    private init(network: NetworkPolicy, cgroups given: CgroupSupport?, early: csb_child, failure: SandboxError?,
                 duration: Duration) {
        self.network = network
        support = given
        pool = nil
        networkNamespace = nil
        child = early
        self.failure = failure
        self.duration = duration
        startedEarly = true
    }

    /// The sandbox's thread, started by the caller for a launch it took
    /// (`takeEarly`), is held to the caller's CPU until the job runs
    /// (cpus.c): `Supervisor.run` lets it go.
    var heldCPU = csb_cpu_mask()

    /// The configuration sent ahead (`sendAhead`), whose mounts the run's
    /// must be; nil when none went.
    private(set) var sentAhead: SandboxConfiguration?
    /// The plan that went ahead: a run with this very one (the caller's
    /// `preparedAhead`) sends the go-ahead without it, and PID 1 keeps the
    /// copy it read (`csb_spawn_go`'s `as_sent_ahead`).
    private(set) var sentAheadPlan: PreparedStart?

    /// Sends the plan ahead of the go-ahead (`csb_spawn_ahead`). A failure
    /// stops PID 1, and the run fails with it.
    func sendAhead(_ configuration: SandboxConfiguration, prepared: PreparedStart) {
        guard failure == nil, sentAhead == nil else { return }
        let plan = prepared.plan
        var error = csb_error()
        let sent = configuration.seccomp.withUnsafeBPF { bpf -> Int32 in
            var config = plan.config(seccomp: bpf, networkNamespace: networkNamespace ?? -1)
            return csb_spawn_ahead(&config, &child, &error)
        }
        if sent == 0 {
            (sentAhead, sentAheadPlan) = (configuration, prepared)
        } else {
            failure = Supervisor.setupError(error)
        }
    }

    /// The clone a one-shot command line started before the runtime did
    /// (`csb_early_take`), when there is one for `network`.
    private static func takeEarlyClone(network: NetworkPolicy, _ child: inout csb_child)
        -> (failure: SandboxError?, duration: Duration)? {
        var error = csb_error()
        var nanoseconds: Int64 = 0
        let result = csb_early_take(network.cValue, &child, &error, &nanoseconds)
        guard result >= 0 else { return nil }
        return (result == 0 ? nil : Supervisor.setupError(error), .nanoseconds(nanoseconds))
    }

    /// The given support, or the process's detected one (its first look is
    /// timed: a once-per-process cost, not a launch's own).
    private func findSupport() -> CgroupSupport {
        if let support { return support }
        let start = ContinuousClock.now
        let detected = CgroupSupport.detected
        detecting += start.duration(to: .now)
        support = detected
        return detected
    }

    /// Makes the job's cgroup unless it was made before the clone (or tried):
    /// after the go-ahead, while PID 1 builds the root. Without one,
    /// `cgroupNote` says why (rlimits stand in).
    func makeCgroup() {
        guard cgroup == nil, cgroupNote == nil else { return }
        let support = findSupport()
        if case let .unavailable(reason) = support {
            cgroupNote = reason
            return
        }
        let name = "job-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 16))"
        do {
            cgroup = try JobCgroup(support: support, name: name)
        } catch {
            cgroupNote = error.description
        }
    }

    /// Clones PID 1 (v2: into `cgroup`); nil, or why it failed.
    private static func clone(network: NetworkPolicy, networkNamespace: Int32?, into cgroup: JobCgroup?,
                              _ child: inout csb_child) -> SandboxError? {
        var start = csb_start_config(network: network.cValue, netns_fd: networkNamespace ?? -1,
                                     cgroup_fd: cgroup?.cloneDirectory ?? -1, fork_init: false)
        var error = csb_error()
        return csb_spawn_start(&start, &child, &error) == 0 ? nil : Supervisor.setupError(error)
    }

    /// PID 1's report came: when it says that nothing of the job is left
    /// and that the job's cgroup is empty (PID 1 was never in it),
    /// `release` removes the group without waiting for PID 1's exit.
    func reported(_ report: csb_report) {
        cgroupEmpty = report.alone == 1 && report.cgroup_empty == 1
    }

    /// After the run: nothing of the job is left once this returns. When
    /// PID 1 reported that it reaped every process of a group it was
    /// never in, the group goes at once, and PID 1 sleeps until `finish`
    /// lets it go: its exit, where the kernel tears the namespaces down
    /// (~0.5 ms of CPU, two RCU grace periods), would otherwise take one of
    /// a CI machine's two CPUs from this removal and the caller's writing
    /// of the results. Otherwise (v2: PID 1 was cloned into the group) it
    /// is `finish`, which waits for PID 1's exit.
    func release() {
        if cgroupEmpty, !ended, let cgroup, cgroup.removeIfEmpty() {
            self.cgroup = nil
            return
        }
        finish()
    }

    /// PID 1 was reaped: by the run (`inOrder`: its namespace may go back
    /// to the pool) or by `stop`.
    func reaped(inOrder: Bool) {
        isReaped = true
        reapedInOrder = inOrder
    }

    /// After the run: lets PID 1 go (when the run returned at its report,
    /// it is exiting, or waits for this: `release`), waits for its end and
    /// reaps it, then releases the rest (`end`). A PID 1 still there after
    /// five seconds is killed.
    func finish() {
        if !isReaped, child.pid > 0, child.pidfd >= 0 {
            _ = csb_release_init(&child)
            var fd = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
            var ready: Int32
            repeat { ready = poll(&fd, 1, 5_000) } while ready < 0 && errno == EINTR
            var usage = csb_usage()
            if ready == 1, csb_reap(&child, &usage) == 0 { reaped(inOrder: true) } else { stop() }
        }
        end()
    }

    /// Releases what the launch holds once PID 1 is gone: its descriptors,
    /// the cgroup (anything left in it is killed), the pooled namespace
    /// (back to the pool when PID 1 was reaped in order, else closed).
    /// Once; later calls do nothing.
    func end() {
        guard !ended else { return }
        ended = true
        csb_child_close(&child)
        if let networkNamespace {
            if reapedInOrder, let pool { pool.giveBack(networkNamespace) } else { close(networkNamespace) }
        }
        cgroup?.killAndRemove()
    }

    /// The sandbox will not run (or its supervisor lost track of it): PID 1
    /// is killed and reaped (`end` releases the rest; the pooled namespace
    /// is not given back).
    func stop() {
        if child.pid > 0, !ended, !isReaped { csb_child_kill_and_reap(&child) }
        reaped(inOrder: false)
    }
}
