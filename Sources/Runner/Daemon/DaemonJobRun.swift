#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sandbox
import SystemPackage

/// One approved job, run by the daemon: `running`, a private snapshot that
/// must match the fingerprint taken at receipt, the sandbox with the
/// SyftBox view, results where syft-job's runner puts them (stdout.txt,
/// stderr.txt, returncode.txt, outputs/ in the review folder), then `done`
/// or `failed`. The inbox is never written.
struct DaemonJobRun {
    let job: InboxJob
    let options: DaemonOptions
    let receipts: ReceiptStore
    let history: HistoryStore
    let workFolder: WorkFolder
    let states: JobStateCache
    let metrics: DaemonMetrics
    /// Followers of the job's output (the HTTP API), when there are any to have.
    let liveLog: LiveLog?
    let logger: Logger
    /// Called before the run writes the job's final state itself.
    let finishing: @Sendable () async -> Void
    /// Called once the sandbox is gone (its slot can go to the next job).
    let sandboxEnded: @Sendable () async -> Void
    let started = Date()
    let runID = UUID().uuidString.lowercased()

    private var layout: SyftBoxLayout { options.layout }
    private var stateFile: FilePath { layout.stateFile(of: job) }
    private var ledger: RunLedger { RunLedger(history: history, metrics: metrics, liveLog: liveLog, logger: logger) }
    private var baseRecord: RunRecord {
        RunRecord(id: runID, jobID: JobID.syftBox(job).rawValue, source: "syftbox", job: job.relativePath.string,
                  submitter: job.submitter, name: job.name, status: "", startedAt: started, finishedAt: Date())
    }

    func execute() async {
        // The owner may have changed their mind since it was queued.
        guard let state = currentState(), state.isApproved else {
            ledger.ended(status: "withdrawn", reason: "the job was no longer approved when its turn came")
            return
        }
        liveLog?.started(run: runID)
        let work = workFolder.run(runID)
        defer { try? ArtifactCollector.removeTree(work) }
        do {
            try write(state.markRunning())
            ResultsFolder.sweepLeftovers(in: layout.reviewFolder(of: job))
            try ReviewPermissions.hideOutputs(of: job, in: layout) // before any output reaches review/, as syft-job
            logger.info("running", metadata: ["job": "\(job)", "run": "\(runID)"])
            let receipt = try receiptOrLate()
            guard let fingerprint = SubmissionFingerprint(hex: receipt.fingerprint) else {
                return await fail("the receipt's fingerprint is unreadable; receive the job again")
            }
            try FileSystem.makeDirectories(work, mode: 0o700)
            let snapshot: SubmissionSnapshot
            switch try SubmissionSnapshot.create(from: layout.inboxFolder(of: job), into: work.appending("job"),
                                                 expecting: fingerprint) {
            case let .refused(reason): return await fail(reason)
            case let .created(copy): snapshot = copy
            }
            let runOptions = try runOptions(snapshot: snapshot, receipt: receipt, runID: runID)
            let outcome = try await OneShotRunner.run(runOptions, logger: logger)
            try ReviewPermissions.hideOutputs(of: job, in: layout) // again: a client write may have lost it; outputs/ replaced
            ledger.ran(baseRecord, result: outcome.record)
            let finishedState = currentState() ?? state
            if finishedState.status != .running {
                // Someone else ended it meanwhile (the owner cancelled): theirs stands.
                return
            }
            if Task.isCancelled || outcome.record.limitHit == .cancelled {
                return await fail("the runner stopped while the job ran", ran: true)
            }
            await finishing()
            var final = outcome.record.status == .timedOut
                ? finishedState.markTimedOut() : finishedState.markFinished(returnCode: Int(outcome.record.returncode ?? -1))
            if final.status == .failed, let note = runOptions.noteOnFailure { final.reviewReason = note }
            try write(final)
            share(receipt)
            logger.info("\(final.status)", metadata: ["job": "\(job)", "return_code": "\(final.returnCode ?? -1)",
                                                      "limit_hit": "\(outcome.record.limitHit.rawValue)",
                                                      "wall_ms": "\(outcome.record.wallMs ?? 0)"])
        } catch let error as SandboxError where error.code == .setupFailed {
            await fail("the sandbox could not be set up: \(error)", setupFailed: true)
        } catch {
            await fail("the sandbox could not run the job: \(error)")
        }
    }

    private func runOptions(snapshot: SubmissionSnapshot, receipt: Receipt, runID: String) throws -> OneShotOptions {
        let metadata = try? SubmissionMetadata.parse(
            FileSystem.readRegularFile(snapshot.folder.appending("config.yaml"), limit: 4 << 20))
        var run = OneShotOptions(jobFolder: snapshot.folder, seccomp: options.seccomp, skeleton: options.skeleton)
        run.resultsFolder = layout.reviewFolder(of: job)
        run.jobID = runID
        run.requester = job.submitter
        run.ownerEmail = layout.owner
        run.network = options.network
        run.networkNamespaces = options.networkNamespaces.pool(for: run.network)
        run.identity = options.identity
        run.limits = options.limits
        if let cap = receipt.maxTimeoutSeconds, let current = run.limits.wallTime, .seconds(cap) < current {
            run.limits.wallTime = .seconds(cap)
        }
        if let cap = receipt.maxMemoryBytes { run.limits.memoryBytes = min(run.limits.memoryBytes ?? cap, cap) }
        let view = SyftBoxView.mounts(root: layout.root, owner: layout.owner, datasets: metadata?.datasets)
        for note in view.notes { logger.info("\(note)", metadata: ["job": "\(job)"]) }
        run.extraMounts = view.mounts
        run.syftboxFolder = SyftBoxView.target
        if metadata?.type == "python", options.network == .none {
            run.noteOnFailure = Self.pythonWithoutNetwork
        }
        run.writesRecord = false
        run.durable = true
        run.keepLogsIn = history.folder(ofRun: runID)
        // The owner may end the job while it runs (cancel, or a deposited
        // result): then the review folder is theirs and is left as it is.
        let stateFile = self.stateFile, version = job.protocolVersion, states = self.states
        // A job that shares its results appends rules to the submitter's
        // review/DS/syft.pub.yaml after its run: it keeps its slot until it
        // has, so the next job's outputs rule comes after them, in run order,
        // as syft-job's runner writes them.
        let sharing = sharing(receipt)
        run.sandboxEnded = sharing.outputs || sharing.logs ? nil : sandboxEnded
        run.mayWriteResults = { (try? states.read(from: stateFile, protocolVersion: version))??.status == .running }
        if let liveLog { run.sink = { channel, bytes in liveLog.append(channel, bytes) } }
        // The owner's permission files decide who reads the outputs: a job
        // that writes one must not decide it (syft-job copies it, and leaks).
        run.withheldOutputNames = ["syft.pub.yaml"]
        return run
    }

    /// Why a python job failed here, most likely: syft-job's run.sh for a
    /// python job makes a virtualenv and installs its dependencies with uv
    /// from a package index, and the job has no network.
    static let pythonWithoutNetwork = """
        this python job ran without a network (the runner's --net none): its run.sh installs packages \
        with uv from a package index, which it cannot reach; ask the owner to run it with the packages \
        preinstalled, or with a network
        """

    /// After a run, as syft-job's runner: the submitter may read the outputs
    /// or the logs when the daemon or the approving rule says so.
    private func share(_ receipt: Receipt) {
        let (outputs, logs) = sharing(receipt)
        guard outputs || logs else { return }
        do {
            let files = try ReviewPermissions.share(job, in: layout, outputs: outputs, logs: logs)
            logger.info("shared with the submitter", metadata: ["job": "\(job)", "outputs": "\(outputs)",
                                                                "logs": "\(logs)", "files": "\(files.count)"])
        } catch {
            logger.error("cannot share the results with the submitter: \(error)", metadata: ["job": "\(job)"])
        }
    }

    /// Whether the submitter gets the outputs and the logs: the daemon's
    /// flags or the approving rule's.
    private func sharing(_ receipt: Receipt) -> (outputs: Bool, logs: Bool) {
        (options.shareOutputs || receipt.shareOutputs, options.shareLogs || receipt.shareLogs)
    }

    /// The receipt; a job approved that this daemon never received (its
    /// state folder was wiped) is fingerprinted now, and the log says so.
    private func receiptOrLate() throws -> Receipt {
        if let receipt = receipts.read(job) { return receipt }
        let fingerprint = try Submission.fingerprint(of: layout.inboxFolder(of: job))
        logger.warning("no receipt: fingerprinting the submission now", metadata: ["job": "\(job)"])
        let receipt = Receipt(fingerprint: fingerprint.hex, receivedAt: JobTimestamp.now().text, rule: nil,
                              maxTimeoutSeconds: nil, maxMemoryBytes: nil, shareOutputs: false, shareLogs: false)
        try receipts.write(receipt, for: job)
        return receipt
    }

    private func currentState() -> JobState? {
        try? states.read(from: stateFile, protocolVersion: job.protocolVersion)
    }

    private func write(_ state: JobState) throws {
        try state.write(to: stateFile)
    }

    /// Fails the job with `reason`. `ran`: the sandbox ran and the history
    /// has its record already; else the history gets a refusal.
    private func fail(_ reason: String, ran: Bool = false, setupFailed: Bool = false) async {
        await finishing()
        let state = currentState() ?? JobState(protocolVersion: job.protocolVersion)
        do {
            try write(state.markFailed(reason: reason))
            logger.info("failed", metadata: ["job": "\(job)", "reason": "\(reason)"])
        } catch {
            logger.error("cannot write the failed state: \(error)", metadata: ["job": "\(job)"])
        }
        guard !ran else { return }
        ledger.didNotRun(baseRecord, reason: reason, setupFailed: setupFailed)
    }
}
