import CSandbox
import Glibc

/// A sandbox whose PID 1 is being started, or waits, in its namespaces (see
/// `Sandbox.start`). Run it once, then await `ended` before anything that
/// needs the sandbox gone (a process exiting); released without a run, it
/// is killed and reaped, and its cgroup removed.
public final class StartedSandbox: Sendable {
    private let handoff = Handoff()
    /// The launch of the PID 1 the constructor cloned (early.c), until the
    /// sandbox's thread starts with it: at the plan sent ahead, the run, the
    /// release or a wait for the end, whichever comes first. The plan then
    /// goes from the caller's thread, without waking another; the thread's
    /// start (its stack, its clone: ~0.1 ms) comes after it, while PID 1
    /// builds the root.
    private let waiting: WaitingLaunch?

    init(network: NetworkPolicy, cgroups: CgroupSupport?, pool: NetworkNamespacePool?) {
        if let launch = SandboxLaunch.takeEarly(network: network, cgroups: cgroups, pool: pool) {
            handoff.started(pid: launch.child.pid)
            waiting = WaitingLaunch(launch)
            return
        }
        waiting = nil
        Self.startThread(handoff) { SandboxLaunch(network: network, cgroups: cgroups, pool: pool) }
    }

    /// The sandbox's thread: the launch `make` returns (PID 1 started, or
    /// why not), the plan sent ahead when one comes, then the run, or PID 1
    /// stopped when none will.
    private static func startThread(_ handoff: Handoff, heldToThisCPU held: UnsafeMutablePointer<csb_cpu_mask>? = nil,
                                    make: @escaping @Sendable () -> SandboxLaunch) {
        let failure = DedicatedThread.start(heldToThisCPU: held) {
            handoff.threadRuns(csb_thread_id())
            let launch = make()
            handoff.started(pid: launch.child.pid)
            var taken = handoff.take()
            while case let .ahead(configuration, prepared) = taken {
                launch.sendAhead(configuration, prepared: prepared)
                taken = handoff.take()
            }
            guard case let .run(supervisor, untilEnded, reply) = taken else {
                launch.stop()
                launch.end()
                handoff.markEnded()
                return
            }
            let outcome = supervisor.run(from: launch)
            if case .finished = outcome, !untilEnded {
                // The result first: the caller writes it out while the
                // cgroup goes.
                reply(outcome)
                launch.release()
            } else {
                launch.release()
                reply(outcome)
            }
            handoff.markEnded(threadLeft: false)
            // PID 1 may still be exiting (its namespaces' teardown), or wait
            // to be let go (`release`): let go and reaped here, after the
            // caller was told, and after a blocking caller's results
            // (`waitUntilEnded`). A caller whose process exits next lets it
            // go itself, and this thread ends without touching it: PID 1's
            // descriptors stay open, for the exit to close.
            var waitsForLetGo = false
            if case .finished = outcome { waitsForLetGo = true }
            guard case .finish = handoff.leave(statusFD: launch.child.status_fd, waitingForLetGo: waitsForLetGo)
            else { return }
            launch.finish()
            handoff.left()
        }
        if let failure {
            handoff.unavailable(SandboxError(.setupFailed, "cannot make the sandbox's thread", errno: failure,
                                             hint: "the runner is out of threads or memory"))
        }
    }

    /// Starts the sandbox's thread with the waiting launch, unless it was.
    private func startWaitingThread() {
        if let launch = waiting?.take() { start(launch) }
    }

    /// The sandbox's thread, with a launch made here. Without a thread,
    /// PID 1 is stopped here, and runs fail.
    private func start(_ launch: SandboxLaunch) {
        let handed = HandedLaunch(launch)
        Self.startThread(handoff, heldToThisCPU: &launch.heldCPU) { handed.launch }
        if handoff.isUnavailable {
            launch.stop()
            launch.end()
        }
    }

    /// Returns once nothing of the sandbox's job is left: every process of
    /// it gone and its cgroup removed. PID 1 itself may still be exiting,
    /// its namespaces torn down by the kernel (no process of the job is in
    /// them, and nothing there needs waiting for); the sandbox's thread
    /// reaps it then and gives a pooled network namespace back. `run`
    /// returns at the job's end, before the cgroup's removal.
    public func ended() async {
        startWaitingThread()
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            handoff.whenEnded { continuation.resume() }
        }
    }

    deinit {
        handoff.abandon()
        handoff.letGo()
        startWaitingThread()
    }

    /// For a caller that will not run it after all (its own preparation
    /// failed): PID 1 is killed and reaped and its cgroup removed before
    /// this returns. After a run, it only waits for `ended`.
    public func discard() async {
        handoff.abandon()
        await ended()
    }

    /// The host pid of the sandbox's PID 1 once it was cloned (nil before,
    /// or when the clone failed).
    var initPID: Int32? { handoff.startedPID }

    /// The sandbox's thread's id once it started (it may have ended since).
    var threadID: Int32? { handoff.threadID }

    /// Runs the started sandbox with `configuration`, whose network policy
    /// must be the one it was started with (its `cgroups` and pool are those
    /// given to `start`). As `Sandbox.run` otherwise.
    public func run(_ configuration: SandboxConfiguration, output: OutputCapture,
                    control: SandboxControl? = nil) async throws -> SandboxResult {
        try await run(configuration, output: output, control: control, untilEnded: false)
    }

    /// `untilEnded`: returns once the sandbox is gone (`Sandbox.run`: one
    /// resumption of the calling task, not two).
    func run(_ configuration: SandboxConfiguration, output: OutputCapture, control: SandboxControl?,
             untilEnded: Bool) async throws -> SandboxResult {
        let supervisor = try Supervisor(configuration: configuration, output: output, control: control,
                                        prepared: handoff.preparedAhead(for: configuration))
        startWaitingThread()
        let outcome = await withTaskCancellationHandler {
            // Unsafe: the handoff resumes it exactly once; a checked
            // continuation's generic metadata costs a conformance scan of
            // the binary at every one-shot run.
            await withUnsafeContinuation { (continuation: UnsafeContinuation<RunOutcome, Never>) in
                handoff.give(supervisor, untilEnded: untilEnded) { continuation.resume(returning: $0) }
            }
        } onCancel: {
            supervisor.cancel()
        }
        return try outcome.result()
    }

    /// As `run`, blocking the calling thread until the job ended (the
    /// one-shot CLI's main thread: no task, and none of the concurrency
    /// runtime's threads, are needed). Not from a task: it would hold one
    /// of the cooperative pool's threads for the whole job.
    ///
    /// `whileRunning` runs once on the calling thread, as soon as the job
    /// runs, or the run ended if that came first (a run that failed to
    /// start included), and before this returns: for the caller's work that
    /// is not on the job's way to its start, which the sandbox's thread, on
    /// this thread's CPU until then, would otherwise wait for.
    ///
    /// After a run that ended, PID 1 (the job and its group gone) waits to
    /// exit until `waitUntilEnded` is called, or this started sandbox goes
    /// away: write the results in between.
    ///
    /// `processExits`: the calling process exits once it has written the
    /// results, after `waitUntilEnded(processExits: true)` (the one-shot
    /// CLI). The sandbox's thread then ends as soon as the job's group is
    /// gone, rather than waiting there to reap PID 1 after the let-go: the
    /// exit has one thread to end, not a second asleep, whose wake-up (on
    /// the other CPU, idle by then) the caller's wait would wait for. 3-5 %
    /// of a trivial job's launch, runs 20 ms apart.
    public func runBlocking(_ configuration: SandboxConfiguration, output: OutputCapture,
                            control: SandboxControl? = nil, processExits: Bool = false,
                            whileRunning: (() -> Void)? = nil) throws -> SandboxResult {
        let supervisor = try Supervisor(configuration: configuration, output: output, control: control,
                                        prepared: handoff.preparedAhead(for: configuration))
        let reply = Latch()
        let started = Latch()
        let steering = Steering()
        if whileRunning != nil { supervisor.jobStarted = { started.open() } }
        startWaitingThread()
        handoff.give(supervisor, untilEnded: false, holdingRelease: true, callerExits: processExits) { outcome in
            // This thread goes on to remove the job's cgroup: the caller
            // wakes on another CPU to write the results meanwhile.
            steering.steerAway()
            reply.open(with: outcome)
            started.open()
        }
        if let whileRunning {
            _ = started.wait()
            whileRunning()
        }
        guard let outcome = reply.wait() else { fatalError("the sandbox's thread ended the run without an outcome") }
        steering.comeBack()
        return try outcome.result()
    }

    /// Sends the run's configuration ahead of the run, while the caller
    /// prepares the rest (the output files): the sandbox's thread writes the
    /// id maps and hands PID 1 the plan, and PID 1 opens every mount's
    /// source, takes the sandbox's ids and makes the mounts up to the first
    /// idmapped bind (the rest needs the go-ahead's trees). The run's
    /// configuration must have the same mounts, ids, network and staging
    /// directory (the run fails otherwise: invalidInput). Before the run, at
    /// most once.
    ///
    /// Its plan and output pipes are made here, on the calling thread, and
    /// the run with the same configuration uses them.
    public func sendAhead(_ configuration: SandboxConfiguration) {
        guard let prepared = try? PreparedStart(configuration) else { return }
        guard let launch = waiting?.take() else {
            handoff.offerAhead(configuration, prepared: prepared)
            return
        }
        // Sent from here, then the thread starts with the launch.
        if handoff.recordAhead(configuration, prepared: prepared) {
            launch.sendAhead(configuration, prepared: prepared)
        }
        start(launch)
    }

    /// As `ended`, blocking the calling thread (see `runBlocking`); then
    /// lets a blocking run's PID 1 go.
    ///
    /// `processExits`: the calling process exits next (the one-shot CLI,
    /// through csb_exit_process, which closes the process's descriptors
    /// while the helper it hands its memory to still shares them). PID 1
    /// is then let go from this thread, and the sandbox's thread, which
    /// would otherwise wait for PID 1 on its pidfd and reap it, ends (if it
    /// has not: `runBlocking(processExits:)`) and touches none of PID 1's
    /// descriptors: polling one the exit closed, it saw POLLNVAL and fell
    /// back to killing PID 1 by its pid, and closed numbers no longer its
    /// own. PID 1 is left to whoever reaps the process's orphans. Nothing
    /// may use this started sandbox after.
    public func waitUntilEnded(processExits: Bool = false) {
        startWaitingThread()
        let ended = Latch()
        handoff.whenEnded { ended.open() }
        _ = ended.wait()
        if processExits { handoff.letGoBeforeExit() } else { handoff.letGo() }
    }

    /// As `discard`, blocking the calling thread (see `runBlocking`);
    /// `processExits` as for `waitUntilEnded`.
    public func discardBlocking(processExits: Bool = false) {
        handoff.abandon()
        waitUntilEnded(processExits: processExits)
    }
}

/// The thread blocked in `runBlocking`, woken by the sandbox's thread at the
/// job's end away from that thread's CPU (csb_cpus_steer_away), and its
/// CPUs given back once it runs. Written by the sandbox's thread before it
/// opens the latch the blocked thread waits on, read after.
private final class Steering: @unchecked Sendable {
    private let waiter = csb_thread_id()
    private let saved = UnsafeMutablePointer<csb_cpu_mask>.allocate(capacity: 1)

    init() { saved.initialize(to: csb_cpu_mask()) }
    deinit { saved.deallocate() }

    /// The sandbox's thread, before it wakes the waiter. Best effort.
    func steerAway() { _ = csb_cpus_steer_away(waiter, saved) }

    /// The waiter, once woken. Best effort.
    func comeBack() { _ = csb_cpus_steered_back(saved) }
}

/// What a blocked thread waits for (`runBlocking`, `waitUntilEnded`):
/// opened once, from another thread, with the run's outcome or without.
private final class Latch: @unchecked Sendable {
    private let monitor = Monitor()
    private var isOpen = false
    private var outcome: RunOutcome?

    func open(with outcome: RunOutcome? = nil) {
        monitor.lock()
        self.outcome = outcome
        isOpen = true
        monitor.unlock()
        monitor.signal()
    }

    func wait() -> RunOutcome? {
        monitor.lock()
        defer { monitor.unlock() }
        while !isOpen { monitor.wait() }
        return outcome
    }
}

/// A run's end, as the supervisor hands it back. (Not a Result: a Result
/// of SandboxError is instantiated from its mangled name where it is
/// stored or destroyed, which scans the binary's protocol conformances for
/// SandboxError's Error conformance on every one-shot run.)
enum RunOutcome: Sendable {
    case finished(SandboxResult)
    case failed(SandboxError)

    /// The result, or the error thrown.
    func result() throws(SandboxError) -> SandboxResult {
        switch self {
        case let .finished(result): return result
        case let .failed(error): throw error
        }
    }
}

/// Hands the run's supervisor to the sandbox's thread, which waits for it
/// once PID 1 is started (or learns that no run will come).
private final class Handoff: @unchecked Sendable {
    typealias Reply = @Sendable (RunOutcome) -> Void
    private enum State {
        case waiting
        case given(Supervisor, untilEnded: Bool, Reply)
        case taken
        case abandoned
        /// No thread to start the sandbox on: a run fails with this.
        case unavailable(SandboxError)
    }

    /// What the sandbox's thread takes: a configuration to send ahead, or the run.
    enum Taken {
        case ahead(SandboxConfiguration, PreparedStart)
        case run(Supervisor, untilEnded: Bool, Reply)
    }

    private let monitor = Monitor()
    private var state = State.waiting
    /// What was offered ahead, for the run with the same configuration;
    /// `aheadPending` until the sandbox's thread took it.
    private var offered: (SandboxConfiguration, PreparedStart)?
    private var aheadPending = false
    private var pid: Int32 = 0
    private var thread: Int32 = 0
    private var isEnded = false
    /// A blocking run's PID 1 waits to be let go until its caller has
    /// written its results (`letGo`, from `waitUntilEnded` or the
    /// started sandbox's end).
    private var releaseHeld = false
    /// Where the sandbox's thread is once the run ended, for a caller whose
    /// process exits next (`letGoBeforeExit`), which sets `exiting`:
    /// `parked` in `leave`, or ended there, with PID 1's status descriptor
    /// left to the caller.
    private enum Leaving {
        case running
        case parked(statusFD: Int32)
        case finishing
        case left
    }
    private var leaving = Leaving.running
    private var exiting = false
    /// The caller said at the run that its process exits after it
    /// (`runBlocking(processExits:)`).
    private var callerExits = false
    private var endWaiters: [@Sendable () -> Void] = []

    /// The caller's side. A second run is refused.
    func give(_ supervisor: Supervisor, untilEnded: Bool, holdingRelease: Bool = false,
              callerExits: Bool = false, reply: @escaping Reply) {
        monitor.lock()
        guard case .waiting = state else {
            let current = state
            monitor.unlock()
            if case let .unavailable(error) = current { return reply(.failed(error)) }
            reply(.failed(SandboxError(.invalidInput, "this started sandbox was already run",
                                       hint: "start a sandbox (Sandbox.start) for each run")))
            return
        }
        state = .given(supervisor, untilEnded: untilEnded, reply)
        releaseHeld = holdingRelease
        self.callerExits = callerExits
        monitor.unlock()
        monitor.signal()
    }

    /// The sandbox's thread, once PID 1 was cloned (or not: `pid` <= 0).
    func started(pid: Int32) {
        monitor.lock()
        self.pid = pid
        monitor.unlock()
    }

    var startedPID: Int32? {
        monitor.lock()
        defer { monitor.unlock() }
        return pid > 0 ? pid : nil
    }

    /// The sandbox's thread, as it starts: its id (`csb_thread_id`).
    func threadRuns(_ id: Int32) {
        monitor.lock()
        thread = id
        monitor.unlock()
    }

    /// The sandbox's thread's id once it started (it may have ended since).
    var threadID: Int32? {
        monitor.lock()
        defer { monitor.unlock() }
        return thread > 0 ? thread : nil
    }

    /// The sandbox's thread: PID 1 is reaped and everything released, or
    /// the run's job is gone and only PID 1 is left (`threadLeft` false:
    /// the thread goes on to `leave`).
    func markEnded(threadLeft: Bool = true) {
        monitor.lock()
        isEnded = true
        if threadLeft { leaving = .left }
        let waiting = endWaiters
        endWaiters = []
        monitor.unlock()
        for waiter in waiting { waiter() }
    }

    /// The sandbox's thread, once the run ended (`markEnded(threadLeft:
    /// false)`), before it lets PID 1 go and reaps it (`finish`); PID 1's
    /// `statusFD` is what lets it go. Returns once it may: after a run
    /// that ended (`waitingForLetGo`), once the caller let PID 1 go, at
    /// once unless a blocking caller holds it. PID 1's exit, in which the
    /// kernel tears its namespaces down (~0.5 ms of CPU, RCU grace
    /// periods), then stays out of the way of the caller's writing of the
    /// results on a machine of two CPUs: let go as soon as the group was
    /// removed, it took 4 % of a trivial job's launch, back to back (30
    /// blocks of 20 runs).
    ///
    /// `.endThread` when the caller's process exits next, said at the run
    /// (`callerExits`: at once, after a run that ended) or since
    /// (`letGoBeforeExit`): PID 1 is the caller's to let go, and the thread
    /// ends without touching it.
    func leave(statusFD: Int32, waitingForLetGo: Bool) -> Departure {
        monitor.lock()
        defer { monitor.unlock() }
        leaving = .parked(statusFD: statusFD)
        monitor.broadcast()
        if callerExits, waitingForLetGo { return .endThread }
        while !exiting, waitingForLetGo, releaseHeld { monitor.wait() }
        if exiting { return .endThread }
        leaving = .finishing
        return .finish
    }

    /// What the sandbox's thread does after `leave`: let PID 1 go and reap
    /// it (`SandboxLaunch.finish`), or end.
    enum Departure {
        case finish
        case endThread
    }

    /// The sandbox's thread, after `finish`: nothing of the launch is open.
    func left() {
        monitor.lock()
        leaving = .left
        monitor.unlock()
        monitor.broadcast()
    }

    /// The caller's side: PID 1 may go (see `leave`).
    func letGo() {
        monitor.lock()
        let held = releaseHeld
        releaseHeld = false
        monitor.unlock()
        if held { monitor.broadcast() }
    }

    /// The caller's side, once ended, when its process exits next (see
    /// `StartedSandbox.waitUntilEnded(processExits:)`): lets PID 1 go from
    /// here once the sandbox's thread reached `leave` (it is on its way:
    /// `markEnded` came first), where it then ends; when that thread was
    /// already past it (a failed run: it waits for no let-go), waits until
    /// it is done with the launch.
    func letGoBeforeExit() {
        monitor.lock()
        defer { monitor.unlock() }
        guard !exiting else { return }
        exiting = true
        while true {
            switch leaving {
            case .running, .finishing:
                monitor.wait()
            case let .parked(statusFD):
                // What csb_release_init does: PID 1 sees the hang-up. A
                // thread still in `leave` wakes, and ends.
                if statusFD >= 0 { _ = shutdown(statusFD, Int32(SHUT_WR)) }
                monitor.broadcast()
                return
            case .left:
                return
            }
        }
    }

    /// Calls `body` once the sandbox has ended (at once if it has).
    func whenEnded(_ body: @escaping @Sendable () -> Void) {
        monitor.lock()
        if isEnded {
            monitor.unlock()
            body()
            return
        }
        endWaiters.append(body)
        monitor.unlock()
    }

    /// The sandbox's thread could not be made: every run fails with
    /// `error`, and there is nothing to wait for.
    func unavailable(_ error: SandboxError) {
        monitor.lock()
        state = .unavailable(error)
        monitor.unlock()
        markEnded()
    }

    /// No run will come (the started sandbox was released).
    func abandon() {
        monitor.lock()
        if case .waiting = state { state = .abandoned }
        monitor.unlock()
        monitor.signal()
    }

    /// True when runs fail for want of the sandbox's thread.
    var isUnavailable: Bool {
        monitor.lock()
        defer { monitor.unlock() }
        if case .unavailable = state { return true }
        return false
    }

    /// The caller's side, sending the plan ahead itself (the launch is not
    /// the thread's yet): the run with the same configuration takes its
    /// pipes. False when the plan must not go (abandoned, or sent already).
    func recordAhead(_ configuration: SandboxConfiguration, prepared: PreparedStart) -> Bool {
        monitor.lock()
        defer { monitor.unlock() }
        guard case .waiting = state, offered == nil else { return false }
        offered = (configuration, prepared)
        return true
    }

    /// The caller's side: the configuration to send ahead, once, before the run.
    func offerAhead(_ configuration: SandboxConfiguration, prepared: PreparedStart) {
        monitor.lock()
        guard case .waiting = state, offered == nil else { return monitor.unlock() }
        offered = (configuration, prepared)
        aheadPending = true
        monitor.unlock()
        monitor.signal()
    }

    /// The caller's side: the plan and pipes made ahead, when `configuration`
    /// makes the same plan as the one offered (else the run makes its own;
    /// the sandbox's thread checks that its mounts are those PID 1 used).
    func preparedAhead(for configuration: SandboxConfiguration) -> PreparedStart? {
        monitor.lock()
        defer { monitor.unlock() }
        guard let (sent, prepared) = offered, SpawnPlan.same(configuration, sent) else { return nil }
        return prepared
    }

    /// The sandbox's thread: blocks until a configuration to send ahead, a
    /// run or the abandonment (nil).
    func take() -> Taken? {
        monitor.lock()
        defer { monitor.unlock() }
        while true {
            if aheadPending, let (configuration, prepared) = offered {
                aheadPending = false
                return .ahead(configuration, prepared)
            }
            switch state {
            case .waiting:
                monitor.wait()
            case let .given(supervisor, untilEnded, reply):
                state = .taken
                return .run(supervisor, untilEnded: untilEnded, reply)
            case .taken, .abandoned, .unavailable:
                return nil
            }
        }
    }
}

/// A launch made on the caller's thread (`SandboxLaunch.takeEarly`),
/// until the sandbox's thread takes it over.
private final class WaitingLaunch: @unchecked Sendable {
    private let monitor = Monitor()
    private var launch: SandboxLaunch?

    init(_ launch: SandboxLaunch) { self.launch = launch }

    /// The launch to whoever asks first; nil afterwards.
    func take() -> SandboxLaunch? {
        monitor.lock()
        defer { monitor.unlock() }
        let taken = launch
        launch = nil
        return taken
    }
}

/// A launch handed to the sandbox's thread, which is its only user from then on.
private final class HandedLaunch: @unchecked Sendable {
    let launch: SandboxLaunch
    init(_ launch: SandboxLaunch) { self.launch = launch }
}

/// A mutex and its condition variable, for the threads here that block
/// (the caller's on a `Latch`, the sandbox's on the `Handoff`).
private final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// With the lock held: releases it until signalled, then holds it again.
    func wait() { pthread_cond_wait(condition, mutex) }
    /// After the change is made under the lock and the lock released: a
    /// waiter woken with the lock still held would block on it at once and
    /// need a second wake-up (perf trace of the CLI: ~0.5 ms on the way to
    /// the results, the signalling thread losing its CPU in between).
    func signal() { pthread_cond_signal(condition) }
    /// As `signal`, waking every waiter: for the changes both the sandbox's
    /// thread and an exiting caller may wait for (`Handoff.leave`).
    func broadcast() { pthread_cond_broadcast(condition) }
}
