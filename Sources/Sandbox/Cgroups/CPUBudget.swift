import Glibc

/// The CPU time limit of a whole job, enforced through its cgroup's CPU
/// counter (v2 `cpu.stat` usage_usec, v1 `cpuacct.usage`): the user and
/// system time of every process and thread the job ever ran.
///
/// No fixed-interval polling: the job cannot spend CPU faster than one
/// second per second per CPU it may run on, so after reading the counter
/// the budget cannot run out before `left / CPUs` has passed; that is when
/// the counter is read next. Below `minimumWait` the counters themselves
/// are not precise (they advance with the scheduler tick), so checks are
/// never closer than that: a job overshoots its budget by at most
/// `minimumWait` × CPUs.
struct CPUBudget {
    let limit: Duration
    let cgroup: JobCgroup
    /// CPUs the job may run on at once. The online CPUs: an upper bound
    /// (the job could widen its own affinity to its whole cpuset), so a
    /// check is never planned late.
    let cpus: Int

    static let minimumWait: Duration = .milliseconds(10)

    static var onlineCPUs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    init?(limit: Duration, cgroup: JobCgroup, cpus: Int = CPUBudget.onlineCPUs) {
        guard cgroup.accountsCPU, limit > .zero else { return nil }
        self.limit = limit
        self.cgroup = cgroup
        self.cpus = max(1, cpus)
    }

    enum Verdict: Equatable {
        /// The job has used its budget: end it.
        case spent
        /// The earliest moment it could have.
        case checkAgain(at: ContinuousClock.Instant)
        /// The counter could not be read (the group is gone): RLIMIT_CPU,
        /// still set per process, is all that is left.
        case unreadable
    }

    /// Reads the counter at `now` and says what to do.
    func check(at now: ContinuousClock.Instant) -> Verdict {
        guard let used = cgroup.cpuTotal() else { return .unreadable }
        return Self.verdict(used: used, limit: limit, cpus: cpus, now: now)
    }

    static func verdict(used: Duration, limit: Duration, cpus: Int,
                        now: ContinuousClock.Instant) -> Verdict {
        if used >= limit { return .spent }
        return .checkAgain(at: now + wait(left: limit - used, cpus: cpus))
    }

    /// How long `left` of CPU time lasts at the very least on `cpus` CPUs.
    static func wait(left: Duration, cpus: Int) -> Duration {
        max(left / max(1, cpus), minimumWait)
    }
}
