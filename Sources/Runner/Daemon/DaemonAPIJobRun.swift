#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sandbox
import SystemPackage

/// One run of a job submitted with `POST /jobs`: its stored job folder in
/// the sandbox, its results in `runs/RUN/` of the state folder (stdout.txt,
/// stderr.txt, returncode.txt, result.json, outputs/), a history entry.
/// Inside, the code is at /job/code (the working directory), the uploaded
/// inputs at /job/input (`JOB_INPUT_DIR`), the outputs at /job/outputs
/// (`JOB_OUTPUT_DIR`, `SYFT_OUTPUT_DIR`).
struct DaemonAPIJobRun {
    let job: APIJob
    let runID: String
    let options: DaemonOptions
    let store: APIJobStore
    let history: HistoryStore
    let metrics: DaemonMetrics
    let liveLog: LiveLog?
    let logger: Logger
    let started = Date()

    private var ledger: RunLedger { RunLedger(history: history, metrics: metrics, liveLog: liveLog, logger: logger) }
    private var baseRecord: RunRecord {
        RunRecord(id: runID, jobID: job.id.rawValue, source: "api", job: "api/\(job.id.rawValue)",
                  submitter: options.layout.owner, name: job.name, status: "", startedAt: started, finishedAt: Date())
    }

    /// Runs the job; returns the history status of the run.
    func execute() async -> String {
        liveLog?.started(run: runID)
        logger.info("running", metadata: ["job": "api/\(job.id)", "run": "\(runID)"])
        do {
            let resolved = try job.spec.resolve(limits: options.limits, network: options.network)
            guard let results = history.folder(ofRun: runID) else { throw SandboxError(.invalidInput, "bad run id") }
            try FileSystem.makeDirectories(results, mode: 0o700)
            var run = OneShotOptions(jobFolder: store.jobFolder(of: job.id), seccomp: options.seccomp,
                                     skeleton: options.skeleton)
            run.resultsFolder = results
            run.jobID = runID
            run.requester = options.layout.owner
            run.ownerEmail = options.layout.owner
            run.network = resolved.network
            run.networkNamespaces = options.networkNamespaces.pool(for: run.network)
            run.identity = options.identity
            run.limits = resolved.limits
            run.extraEnvironment = [("JOB_ID", job.id.rawValue), ("JOB_INPUT_DIR", "/job/input"),
                                    ("JOB_OUTPUT_DIR", JobEnvironment.outputDirectory)] + resolved.environment
            if let liveLog { run.sink = { channel, bytes in liveLog.append(channel, bytes) } }
            let outcome = try await OneShotRunner.run(run, logger: logger)
            ledger.ran(baseRecord, result: outcome.record)
            logger.info("\(outcome.record.status.rawValue)", metadata: [
                "job": "api/\(job.id)", "exit_code": "\(outcome.record.exitCode.map(String.init) ?? "-")",
                "limit_hit": "\(outcome.record.limitHit.rawValue)", "wall_ms": "\(outcome.record.wallMs ?? 0)"])
            return outcome.record.status.rawValue
        } catch {
            let setup = (error as? SandboxError)?.code == .setupFailed
            let reason = "the sandbox could not \(setup ? "be set up" : "run the job"): \(error)"
            ledger.didNotRun(baseRecord, reason: reason, setupFailed: setup)
            logger.info("failed", metadata: ["job": "api/\(job.id)", "reason": "\(reason)"])
            return "refused"
        }
    }

    /// Stopped by the owner before its turn came.
    func stoppedWhileQueued() {
        ledger.didNotRun(baseRecord, reason: "stopped by the owner before it ran", status: "killed")
    }

    /// Found unfinished at a daemon start: the runner stopped or died while it was queued or running.
    func interrupted() {
        ledger.didNotRun(baseRecord, reason: "the runner restarted while the job was queued or running", status: "killed")
    }
}
