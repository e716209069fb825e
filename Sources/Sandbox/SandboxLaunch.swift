import CSandbox
import Glibc

/// The part of a sandbox's start that needs none of its configuration, made
/// on the sandbox's own thread: a network namespace from the pool, the job's
/// cgroup, and PID 1 cloned into its namespaces, where it waits for the
/// go-ahead (`csb_spawn_finish`). The limits are written later, with the
/// configuration, before the go-ahead.
///
/// The order keeps the clone early. cgroup v2 places PID 1 at the clone
/// (CLONE_INTO_CGROUP), so where /sys/fs/cgroup is a unified hierarchy the
/// group is found and made first. Elsewhere PID 1 is cloned first and the
/// cgroups found and made while its init starts: on v1 it joins them itself
/// at the go-ahead; a v2 group found there after all (a hybrid layout with
/// the controllers on its v2 side) gets a PID 1 cloned again, into it.
///
/// It owns what it made until `end` (after `stop` when the sandbox will not
/// run): PID 1's descriptors, the cgroup, the pooled namespace.
final class SandboxLaunch {
    let network: NetworkPolicy
    /// How long the start took: the clone and the init's exec included, not
    /// the process's first look for its cgroups (a once-per-process cost).
    let duration: Duration
    var child = csb_child()
    let cgroup: JobCgroup?
    /// Why there is no cgroup, when there is none (rlimits stand in).
    let cgroupNote: String?
    /// The pooled namespace PID 1 joined; nil: a namespace of its own (or the host's).
    let networkNamespace: Int32?
    /// Why PID 1 could not be started; nil when it waits.
    let failure: SandboxError?
    /// Where the cgroup came from (nil: not looked for, the clone failed first).
    let support: CgroupSupport?
    private let pool: NetworkNamespacePool?
    private var ended = false
    private var isReaped = false
    private var reapedInOrder = false

    /// `cgroups` nil: this process's detected support.
    init(network: NetworkPolicy, cgroups given: CgroupSupport?, pool offered: NetworkNamespacePool?) {
        let began = ContinuousClock.now
        self.network = network
        // A pooled network namespace goes back only once PID 1 was reaped.
        pool = offered.flatMap { $0.policy == network ? $0 : nil }
        networkNamespace = pool?.lease()
        var cgroup: JobCgroup?
        var note: String?
        func makeCgroup(_ support: CgroupSupport) {
            if case let .unavailable(reason) = support {
                note = reason
                return
            }
            let name = "job-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 16))"
            do {
                cgroup = try JobCgroup(support: support, name: name)
            } catch {
                note = error.description
            }
        }
        var support = given
        var detecting = Duration.zero
        /// The process's detected support when none was given (timed: a
        /// once-per-process cost, not the launch's own).
        func find() -> CgroupSupport {
            if let support { return support }
            let start = ContinuousClock.now
            let detected = CgroupSupport.detected
            detecting += start.duration(to: .now)
            support = detected
            return detected
        }
        let cgroupFirst = if case .v2 = given { true } else { given == nil && CgroupSupport.unifiedHierarchyMounted }
        if cgroupFirst, case .v2 = find() { makeCgroup(find()) }
        var failure = Self.clone(network: network, networkNamespace: networkNamespace, into: cgroup, &child)
        if failure == nil, cgroup == nil, note == nil {
            makeCgroup(find())
            if let placed = cgroup, placed.cloneDirectory != nil {
                // v2 after all: PID 1 is outside the group, and only a clone
                // places a process in one cheaply. Again, into it.
                csb_child_kill_and_reap(&child)
                csb_child_close(&child)
                failure = Self.clone(network: network, networkNamespace: networkNamespace, into: placed, &child)
            }
        }
        self.support = support
        self.failure = failure
        self.cgroup = cgroup
        cgroupNote = note
        duration = began.duration(to: .now) - detecting
    }

    /// Clones PID 1 (v2: into `cgroup`); nil, or why it failed.
    private static func clone(network: NetworkPolicy, networkNamespace: Int32?, into cgroup: JobCgroup?,
                              _ child: inout csb_child) -> SandboxError? {
        var start = csb_start_config(network: cNetwork(network), netns_fd: networkNamespace ?? -1,
                                     cgroup_fd: cgroup?.cloneDirectory ?? -1)
        var error = csb_error()
        return csb_spawn_start(&start, &child, &error) == 0 ? nil : Supervisor.setupError(error)
    }

    static func cNetwork(_ policy: NetworkPolicy) -> UInt32 {
        switch policy {
        case .none: UInt32(CSB_NET_NONE.rawValue)
        case .loopback: UInt32(CSB_NET_LOOPBACK.rawValue)
        case .host: UInt32(CSB_NET_HOST.rawValue)
        }
    }

    /// PID 1 was reaped: by the run (`inOrder`: its namespace may go back
    /// to the pool) or by `stop`.
    func reaped(inOrder: Bool) {
        isReaped = true
        reapedInOrder = inOrder
    }

    /// After the run: waits for PID 1's end (when the run returned at its
    /// report, it is exiting: the kernel tears its namespaces down) and
    /// reaps it, then releases the rest (`end`). A PID 1 still there after
    /// five seconds is killed.
    func finish() {
        if !isReaped, child.pid > 0, child.pidfd >= 0 {
            var fd = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
            var ready: Int32
            repeat { ready = poll(&fd, 1, 5_000) } while ready < 0 && errno == EINTR
            var usage = csb_usage()
            if ready == 1, csb_reap(&child, &usage) == 0 { reaped(inOrder: true) } else { stop() }
        }
        end(namespaceReusable: reapedInOrder)
    }

    /// Releases what the launch holds once PID 1 is gone: its descriptors,
    /// the cgroup (anything left in it is killed), the pooled namespace
    /// (back to the pool when `namespaceReusable`: PID 1 was reaped in order).
    /// Once; later calls do nothing.
    func end(namespaceReusable: Bool) {
        guard !ended else { return }
        ended = true
        csb_child_close(&child)
        if let networkNamespace {
            if namespaceReusable, let pool { pool.giveBack(networkNamespace) } else { close(networkNamespace) }
        }
        cgroup?.killAndRemove()
    }

    /// The sandbox will not run (or its supervisor lost track of it): PID 1
    /// is killed and reaped (`end` releases the rest).
    func stop() {
        if child.pid > 0, !ended, !isReaped { csb_child_kill_and_reap(&child) }
        reaped(inOrder: false)
    }
}
