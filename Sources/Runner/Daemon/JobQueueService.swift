#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging
import Sandbox
import ServiceLifecycle
import SystemPackage

/// Everything `syft-sandbox-run daemon` needs.
public struct DaemonOptions: Sendable {
    public var layout: SyftBoxLayout
    public var stateDirectory: FilePath
    public var rules: ApprovalRules
    /// Sandboxes running at once. (A job whose sandbox has ended writes
    /// its history record and final state while the next one starts.)
    public var concurrency: Int
    /// A job found `running` with no sandbox runs again (else it fails).
    public var rerunInterrupted: Bool
    /// The safety-net rescan; inotify does the real work.
    public var rescanInterval: Duration
    /// How long a new inbox folder must stay unchanged before it is
    /// received (the sync engine writes files one by one).
    public var settleDelay: Duration
    /// Runs older than this are pruned from the history (nil: kept).
    public var keepHistory: Duration?
    /// Give every submitter read on their job's outputs, or its logs, once it
    /// ran (syft-job's `share_outputs_with_submitter`, `share_logs_…`); an
    /// approval rule can also say so for the jobs it approves.
    public var shareOutputs = false
    public var shareLogs = false
    /// The job's limits before an approval rule's caps.
    public var limits: ResourceLimits
    public var network: NetworkPolicy
    /// Network namespaces reused from job to job (see `NetworkNamespacePool`).
    public var networkNamespaces = NetworkNamespacePools()
    public var seccomp: SeccompProgram
    public var skeleton: RootSkeleton
    public var identity: IdentityMapping

    public init(layout: SyftBoxLayout, stateDirectory: FilePath, seccomp: SeccompProgram, skeleton: RootSkeleton) {
        self.layout = layout
        self.stateDirectory = stateDirectory
        self.seccomp = seccomp
        self.skeleton = skeleton
        rules = ApprovalRules()
        concurrency = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        rerunInterrupted = false
        keepHistory = nil
        rescanInterval = .seconds(30)
        settleDelay = .milliseconds(200)
        limits = ResourceLimits(wallTime: .seconds(OneShotOptions.defaultTimeoutSeconds()))
        network = .none
        identity = .automatic()
    }

    /// `SYFTBOX/OWNER/app_data/syft-sandbox-run`.
    public static func defaultStateDirectory(for layout: SyftBoxLayout) -> FilePath {
        layout.root.appending(layout.owner).appending("app_data").appending("syft-sandbox-run")
    }
}

/// A job waiting for a slot, or running: a SyftBox job or an API job.
enum QueuedRun: Hashable, Sendable {
    case syftBox(InboxJob)
    case api(JobID)

    var jobID: JobID {
        switch self {
        case let .syftBox(job): JobID.syftBox(job)
        case let .api(id): id
        }
    }
}

/// The owner's job queue: receives inbox folders, applies the approval
/// rules, runs approved jobs in the sandbox and writes their results where
/// syft-job's own runner does; runs the jobs submitted through the HTTP
/// API in the same slots. One log line per transition.
///
/// Wake-ups come from inotify (a state.yaml the client writes, a folder the
/// sync engine creates) and from a rescan every `rescanInterval`; each
/// wake-up rescans the inbox, so nothing depends on seeing every event.
public actor JobQueueService: Service {
    let options: DaemonOptions
    let logger: Logger
    private let receipts: ReceiptStore
    public nonisolated let metrics: DaemonMetrics
    /// Live output for followers; nil when nobody can follow (no HTTP API):
    /// the capture then splices straight to the files.
    public nonisolated let liveLogs: LiveLogs?
    var history: HistoryStore?
    var apiStore: APIJobStore?
    var apiJobs: [JobID: APIJobStatus] = [:]
    private var workFolder: WorkFolder?
    private var layout: SyftBoxLayout { options.layout }
    /// Inbox folders seen without a state, and how they looked.
    private var settling: [InboxJob: CompletenessSignature] = [:]
    /// Inbox entries already reported as not being jobs (one log line each).
    private var reportedSkips: Set<String> = []
    /// Jobs with events not yet looked at.
    private var dirty: Set<InboxJob> = []
    /// state.yaml files as last parsed: most looks find them unchanged
    /// (the queue's, its runs', and the HTTP API's).
    nonisolated let states = JobStateCache()
    /// Approved jobs waiting for a slot (API jobs: since their submission), and the running ones.
    var waiting: [(run: QueuedRun, approvedAt: Int64)] = []
    var running: [QueuedRun: Task<Void, Never>] = [:]
    /// Running jobs whose run is writing its own final state: a terminal
    /// state seen now is theirs, not an owner's cancel.
    private var finishing: Set<InboxJob> = []
    /// Running jobs whose sandbox has ended (their last writes remain): they
    /// no longer take one of the `concurrency` slots.
    private var pastSandbox: Set<QueuedRun> = []
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    var stopping = false
    /// Set once the state folder is ready (the lock taken, the history open).
    var ready: [CheckedContinuation<Void, Never>]? = []

    public init(options: DaemonOptions, logger: Logger, liveLogs: LiveLogs? = nil,
                metrics: DaemonMetrics = DaemonMetrics()) {
        self.options = options
        self.logger = logger
        self.liveLogs = liveLogs
        self.metrics = metrics
        receipts = ReceiptStore(stateDirectory: options.stateDirectory)
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public nonisolated var configuration: DaemonOptions { options }

    public func run() async throws {
        try FileSystem.makeDirectories(options.stateDirectory, mode: 0o700)
        let lock = try DaemonLock(options.stateDirectory.appending("daemon.lock"))
        defer { withExtendedLifetime(lock) {} }
        try FileSystem.makeDirectories(layout.inbox)
        try FileSystem.makeDirectories(layout.review)
        let history = try HistoryStore(stateDirectory: options.stateDirectory)
        self.history = history
        apiStore = try APIJobStore(stateDirectory: options.stateDirectory)
        let work = try WorkFolder(stateDirectory: options.stateDirectory)
        workFolder = work
        defer { work.remove() }
        pruneHistory()
        recoverInterrupted()
        await recoverAPIJobs(history: history)
        for waiter in ready ?? [] { waiter.resume() }
        ready = nil
        let watcher = try DirectoryWatcher(roots: [layout.inbox, layout.review], maxDepth: 3)
        logger.info("watching", metadata: ["inbox": "\(layout.inbox)", "concurrency": "\(options.concurrency)"])
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in watcher.events { await self.handle(event) }
                }
                group.addTask {
                    var sincePrune = Duration.zero
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.options.rescanInterval)
                        self.wake.yield()
                        sincePrune += self.options.rescanInterval
                        if sincePrune >= .seconds(3600) {
                            sincePrune = .zero
                            await self.pruneHistory()
                        }
                    }
                }
                group.addTask { await self.scanOnWakeUps() }
                self.wake.yield()
                await withTaskCancellationHandler {
                    await group.next()
                } onCancel: {
                    watcher.stop()
                }
                group.cancelAll()
            }
        }
        watcher.stop()
        await stopRunningJobs()
        logger.info("stopped")
    }

    // MARK: Scanning

    private func scanOnWakeUps() async {
        for await _ in wakeUps {
            if Task.isCancelled { return }
            scan()
        }
    }

    /// A change under inbox/ or review/: only the job it concerns is looked
    /// at again (the daemon's own state writes cause events too: a full
    /// scan for each would be quadratic). A lost event means a full scan.
    private func handle(_ event: DirectoryWatcher.Event) {
        switch event {
        case .overflow:
            scan()
        case let .changed(directory, name):
            let path = name.flatMap { FilePath.Component($0) }.map { directory.appending($0) } ?? directory
            guard let job = layout.job(containing: path) else { return }
            // In review/, only the state matters (the owner's approvals and
            // cancels); the daemon's own logs and outputs land there too.
            if directory.starts(with: layout.review), directory == layout.reviewFolder(of: job),
               let name, name != "state.yaml" {
                return
            }
            // A burst of events for one job is looked at once.
            guard dirty.insert(job).inserted, dirty.count == 1 else { return }
            Task { self.examineDirty() }
        }
    }

    private func examineDirty() {
        let jobs = dirty
        dirty.removeAll()
        for job in jobs { examine(job) }
        startJobs()
    }

    /// Looks at every inbox job once: receives the new ones, queues the
    /// approved ones, starts what the slots allow.
    func scan() {
        let found: InboxScan
        do {
            found = try layout.scanInbox()
        } catch {
            logger.error("cannot scan the inbox: \(error)")
            return
        }
        for job in found.jobs { examine(job) }
        for refused in found.refused { rejectUnusable(refused.job, because: refused.reason) }
        for skipped in found.skipped where reportedSkips.insert(skipped.path).inserted {
            logger.warning("not a job, left alone", metadata: ["path": "\(skipped.path)", "reason": "\(skipped.reason)"])
        }
        startJobs()
    }

    /// A job that cannot be received as one: rejected with the reason, once.
    private func rejectUnusable(_ job: InboxJob, because reason: String) {
        guard (try? states.state(of: job, in: layout)) ?? nil == nil
        else { return }
        receive(job, check: .rejected(reason: reason))
    }

    /// One job: received when new and settled, queued when approved, its
    /// sandbox stopped when the owner ended it.
    private func examine(_ job: InboxJob) {
        let state: JobState?
        do {
            state = try states.state(of: job, in: layout)
        } catch {
            logger.warning("unreadable state.yaml, left alone: \(error)", metadata: ["job": "\(job)"])
            return
        }
        guard let state else {
            if FileSystem.lstatKind(layout.inboxFolder(of: job)) == S_IFLNK {
                settling[job] = nil
                rejectUnusable(job, because: "the job folder is a symbolic link; submit a folder")
                return
            }
            settling[job] = receiveIfSettled(job)
            if settling[job] != nil {
                // Look again once it had time to settle.
                let delay = options.settleDelay
                Task {
                    try? await Task.sleep(for: delay)
                    self.examineAndStart(job)
                }
            }
            return
        }
        settling[job] = nil
        if state.isApproved, running[.syftBox(job)] == nil, !waiting.contains(where: { $0.run == .syftBox(job) }) {
            waiting.append((.syftBox(job), state.approvedAt?.microsecondsSinceEpoch ?? 0))
            liveLogs?.open(JobID.syftBox(job))
        }
        // The owner ended a job this daemon runs (`jobs cancel`, or the
        // client): stop its sandbox; its state stays as they wrote it.
        if state.isTerminal, let task = running[.syftBox(job)], !finishing.contains(job) {
            logger.info("cancelled by the owner", metadata: ["job": "\(job)", "status": "\(state.status)"])
            task.cancel()
        }
    }

    private func examineAndStart(_ job: InboxJob) {
        examine(job)
        startJobs()
    }

    // MARK: Receiving

    /// Receives `job` once it has stayed the same for one settle delay;
    /// returns its signature while it has not.
    private func receiveIfSettled(_ job: InboxJob) -> CompletenessSignature? {
        do {
            let folder = try layout.openInboxFolder(of: job)
            defer { try? folder.close() }
            let seen = try Submission.completenessSignature(of: folder)
            guard seen.hasRequiredEntries, settling[job] == seen else { return seen }
            receive(job, check: try Submission.check(folder))
            return nil
        } catch let error as SandboxError where error.code == .submissionUnstable {
            return CompletenessSignature?.none // changing while read: the next wake-up looks again
        } catch {
            logger.warning("cannot examine the inbox folder: \(error)", metadata: ["job": "\(job)"])
            return nil
        }
    }

    private func receive(_ job: InboxJob, check: SubmissionCheck) {
        let owner = layout.owner
        do {
            try FileSystem.makeDirectories(layout.reviewFolder(of: job))
            let received = JobState(protocolVersion: job.protocolVersion)
            switch check {
            case let .rejected(reason):
                try received.markRejected(reason: reason, by: owner).write(to: layout.stateFile(of: job))
                metrics.submissionReceived("rejected")
                logger.info("rejected", metadata: ["job": "\(job)", "reason": "\(reason)"])
            case let .valid(submission):
                let candidate = ApprovalRules.Candidate(
                    requester: job.submitter, type: submission.metadata.type, headers: submission.metadata.headers,
                    fingerprint: submission.fingerprint.hex)
                let rule = options.rules.approvingRule(for: candidate)
                let now = JobTimestamp.now()
                // The receipt first: an approved state never exists without it.
                try receipts.write(Receipt(fingerprint: submission.fingerprint.hex, receivedAt: now.text, rule: rule?.name,
                                           maxTimeoutSeconds: rule?.maxTimeoutSeconds, maxMemoryBytes: rule?.maxMemoryBytes,
                                           shareOutputs: rule?.shareOutputs ?? false, shareLogs: rule?.shareLogs ?? false),
                                   for: job)
                var state = received.markPending(at: now)
                if let rule {
                    state = state.markApproved(by: owner, method: .auto, reason: "approved by rule '\(rule.name)'", at: now)
                }
                try state.write(to: layout.stateFile(of: job))
                metrics.submissionReceived(rule == nil ? "pending" : "approved")
                logger.info(rule == nil ? "received, pending review" : "received and approved",
                            metadata: ["job": "\(job)", "sha256": "\(submission.fingerprint.hex)",
                                       "rule": "\(rule?.name ?? "-")"])
            }
        } catch {
            logger.error("cannot record the receipt: \(error)", metadata: ["job": "\(job)"])
        }
    }

    // MARK: Running

    func startJobs() {
        waiting.sort { $0.approvedAt < $1.approvedAt }
        while !stopping, running.count - pastSandbox.count < options.concurrency, !waiting.isEmpty {
            let next = waiting.removeFirst().run
            switch next {
            case let .syftBox(job): running[next] = Task { await self.execute(job) }
            case let .api(id): running[next] = Task { await self.executeAPIJob(id) }
            }
        }
        metrics.queue(running: running.count, waiting: waiting.count)
    }

    /// --keep-history: drops runs that finished longer ago (at start, then hourly).
    private func pruneHistory() {
        guard let keep = options.keepHistory, let history else { return }
        let cutoff = Date(timeIntervalSinceNow: -Double(keep.components.seconds))
        do {
            let removed = try history.prune(finishedBefore: cutoff)
            if removed > 0 { logger.info("pruned the history", metadata: ["runs": "\(removed)"]) }
        } catch {
            logger.error("cannot prune the history: \(error)")
        }
    }

    private func execute(_ job: InboxJob) async {
        guard let history, let workFolder else { return }
        let run = DaemonJobRun(job: job, options: options, receipts: receipts, history: history, workFolder: workFolder,
                               states: states, metrics: metrics, liveLog: liveLogs?.log(of: JobID.syftBox(job)), logger: logger,
                               finishing: { await self.markFinishing(job) },
                               sandboxEnded: { await self.markSandboxEnded(.syftBox(job)) })
        await run.execute()
        running[.syftBox(job)] = nil
        pastSandbox.remove(.syftBox(job))
        finishing.remove(job)
        startJobs()
    }

    private func markFinishing(_ job: InboxJob) {
        finishing.insert(job)
    }

    /// The run's sandbox is gone: its slot goes to the next job.
    private func markSandboxEnded(_ run: QueuedRun) {
        pastSandbox.insert(run)
        startJobs()
    }

    /// Jobs left `running` by a daemon that died: failed with the reason,
    /// or queued again with --rerun-interrupted.
    private func recoverInterrupted() {
        guard let found = try? layout.scanInbox() else { return }
        for job in found.jobs {
            let file = layout.stateFile(of: job)
            guard let state = try? states.read(from: file, protocolVersion: job.protocolVersion),
                  state.status == .running else { continue }
            let swept = ResultsFolder.sweepLeftovers(in: layout.reviewFolder(of: job))
            if !swept.isEmpty {
                logger.info("removed what the interrupted run left half-written", metadata: [
                    "job": "\(job)", "files": "\(swept.joined(separator: " "))"])
            }
            do {
                if options.rerunInterrupted {
                    var again = state
                    again.status = .approved
                    try again.write(to: file)
                    logger.info("interrupted by a restart, runs again", metadata: ["job": "\(job)"])
                } else {
                    try state.markFailed(reason: "the runner restarted while the job ran; it was not run to the end")
                        .write(to: file)
                    logger.info("interrupted by a restart, failed", metadata: ["job": "\(job)"])
                }
            } catch {
                logger.error("cannot recover the job's state: \(error)", metadata: ["job": "\(job)"])
            }
        }
    }

    /// On shutdown: stop taking jobs, stop the running ones (their state
    /// says so), wait for them.
    private func stopRunningJobs() async {
        stopping = true
        for (run, _) in waiting { liveLogs?.log(of: run.jobID)?.finish(LiveLog.Ending(status: "withdrawn", reason: "the runner stopped")) }
        waiting.removeAll()
        let tasks = Array(running.values)
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
