@testable import Sandbox
import CSandbox
import Glibc
import Testing

/// When the supervisor checks a job's CPU budget, how it reads the
/// counters, and how it tells a SIGXCPU death without them.
@Suite struct CPUBudgetTests {
    @Test func theNextCheckIsWhenTheBudgetCouldRunOutAtTheEarliest() {
        let now = ContinuousClock.now
        // 1 s left on 2 CPUs: not before half a second.
        #expect(CPUBudget.verdict(used: .seconds(9), limit: .seconds(10), cpus: 2, now: now)
            == .checkAgain(at: now + .milliseconds(500)))
        #expect(CPUBudget.verdict(used: .zero, limit: .seconds(60), cpus: 1, now: now)
            == .checkAgain(at: now + .seconds(60)))
        // Never closer than the counters' precision.
        #expect(CPUBudget.verdict(used: .milliseconds(999), limit: .seconds(1), cpus: 8, now: now)
            == .checkAgain(at: now + CPUBudget.minimumWait))
        #expect(CPUBudget.wait(left: .seconds(1), cpus: 0) == .seconds(1))
    }

    @Test func aBudgetReachedOrPassedIsSpent() {
        let now = ContinuousClock.now
        #expect(CPUBudget.verdict(used: .seconds(1), limit: .seconds(1), cpus: 2, now: now) == .spent)
        #expect(CPUBudget.verdict(used: .milliseconds(1400), limit: .seconds(1), cpus: 2, now: now) == .spent)
    }

    @Test func v1TimeIsTheExactTotalSplitLikeCpuacctStat() {
        // 1.5 s in all; cpuacct.stat says 3:1 user:system (ticks).
        let split = JobCgroup.splitV1(totalNanoseconds: 1_500_000_000, statUser: 75, statSystem: 25,
                                      usageUser: 1_000_000_000, usageSystem: 0)
        #expect(split.user == .milliseconds(1125))
        #expect(split.system == .milliseconds(375))
        #expect(split.total == .milliseconds(1500))
        // No tick in cpuacct.stat yet: the raw samples' ratio.
        let samples = JobCgroup.splitV1(totalNanoseconds: 8_000_000, statUser: 0, statSystem: 0,
                                        usageUser: 4_000_000, usageSystem: 4_000_000)
        #expect(samples.user == .milliseconds(4) && samples.system == .milliseconds(4))
        // Nothing to split by: user time.
        let none = JobCgroup.splitV1(totalNanoseconds: 3_000_000, statUser: nil, statSystem: nil,
                                     usageUser: nil, usageSystem: nil)
        #expect(none.user == .milliseconds(3) && none.system == .zero)
    }

    @Test func theGroupsTotalIsSplitLikePID1sReport() {
        // The group counted 1.2 s; PID 1's report says 3:1 user:system.
        let (user, system) = Supervisor.split(.milliseconds(1200), like: (.milliseconds(300), .milliseconds(100)))
        #expect(user == .milliseconds(900) && system == .milliseconds(300))
        // A report with nothing in it (too short for a tick): user time.
        let (allUser, none) = Supervisor.split(.microseconds(700), like: (.zero, .zero))
        #expect(allUser == .microseconds(700) && none == .zero)
    }

    @Test func rlimitSecondsRoundUpAndTheBackstopIsWellPastTheBudget() {
        #expect(Supervisor.rlimitSeconds(.seconds(1)) == 1)
        #expect(Supervisor.rlimitSeconds(.milliseconds(1500)) == 2)
        #expect(Supervisor.rlimitSeconds(.milliseconds(1)) == 1)
        #expect(Supervisor.backstopSeconds(.seconds(1)) == 2)
        #expect(Supervisor.backstopSeconds(.seconds(10)) == 13)
        #expect(Supervisor.backstopSeconds(.seconds(600)) == 750)
    }

    /// The rlimits sent with the cgroup placement: RLIMIT_AS and
    /// RLIMIT_NPROC only without a group; RLIMIT_CPU the limit itself, or
    /// the backstop behind a group's budget.
    @Test func theRlimitsThatDependOnTheCgroup() {
        func placed(_ limits: ResourceLimits, inCgroup: Bool, budgeted: Bool = false) -> [String] {
            Supervisor.placedRlimits(limits, inCgroup: inCgroup, cgroupEnforcesCPU: budgeted)
                .map { "\($0.resource):\($0.soft)/\($0.hard)" }
        }
        let limits = ResourceLimits(cpuTime: .seconds(10), memoryBytes: 1 << 20, processes: 5)
        let (cpu, memory, processes) = (CSB_RLIMIT_CPU.rawValue, CSB_RLIMIT_AS.rawValue, CSB_RLIMIT_NPROC.rawValue)
        #expect(placed(limits, inCgroup: false) == ["\(memory):1048576/1048576", "\(processes):5/5", "\(cpu):10/11"])
        #expect(placed(limits, inCgroup: true) == ["\(cpu):10/11"])
        #expect(placed(limits, inCgroup: true, budgeted: true) == ["\(cpu):13/14"])
        #expect(placed(ResourceLimits(cpuTime: nil, memoryBytes: nil, processes: nil), inCgroup: false).isEmpty)
    }

    @Test func sigxcpuIsTheCPULimitOnlyWhenTheCPUWasSpent() {
        // The main process died of it.
        #expect(Supervisor.diedOfCPURlimit(.signaled(SIGXCPU), sandboxCPU: .milliseconds(1000), rlimitSeconds: 1))
        // A shell passed a child's death on, and the sandbox did spend the limit.
        #expect(Supervisor.diedOfCPURlimit(.exited(128 + SIGXCPU), sandboxCPU: .milliseconds(1010), rlimitSeconds: 1))
        // Ticks and runtime drift apart under load.
        #expect(Supervisor.diedOfCPURlimit(.exited(128 + SIGXCPU), sandboxCPU: .milliseconds(920), rlimitSeconds: 1))
        // `exit 152` of a job that spent nothing like it.
        #expect(!Supervisor.diedOfCPURlimit(.exited(128 + SIGXCPU), sandboxCPU: .milliseconds(20), rlimitSeconds: 1))
        #expect(!Supervisor.diedOfCPURlimit(.exited(1), sandboxCPU: .seconds(5), rlimitSeconds: 1))
        #expect(!Supervisor.diedOfCPURlimit(.signaled(SIGKILL), sandboxCPU: .seconds(5), rlimitSeconds: 1))
    }
}
