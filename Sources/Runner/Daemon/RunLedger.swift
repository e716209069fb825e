#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sandbox

/// Where a run's end is written down, the same way for SyftBox and API
/// jobs: the history (with the full result record), the metrics, and the
/// end event of its live log.
struct RunLedger: Sendable {
    let history: HistoryStore
    let metrics: DaemonMetrics
    let liveLog: LiveLog?
    let logger: Logger

    /// The sandbox ran: its record.
    func ran(_ base: RunRecord, result: ResultRecord) {
        var run = base
        run.status = result.status.rawValue
        run.wallMs = result.wallMs
        run.exitCode = result.exitCode.map(Int.init)
        run.returnCode = result.returncode.map(Int.init)
        run.limitHit = result.limitHit.rawValue
        run.stdoutBytes = Int64(result.stdoutBytes)
        run.stderrBytes = Int64(result.stderrBytes)
        run.record = String(decoding: result.fileBytes, as: UTF8.self)
        insert(run)
        metrics.runFinished(status: run.status, wallMilliseconds: result.wallMs)
        liveLog?.finish(LiveLog.Ending(status: run.status, exitCode: run.exitCode, returnCode: run.returnCode,
                                       limitHit: run.limitHit))
    }

    /// The job did not reach the sandbox, or its sandbox could not be set
    /// up: `status` refused (or killed, for a job stopped while queued).
    func didNotRun(_ base: RunRecord, reason: String, status: String = "refused", setupFailed: Bool = false) {
        var run = base
        run.status = status
        run.returnCode = -1
        run.reason = reason
        if status == "killed" { run.limitHit = "cancelled" }
        insert(run)
        metrics.runFinished(status: status, wallMilliseconds: nil)
        if setupFailed { metrics.sandboxSetupFailed() }
        liveLog?.finish(LiveLog.Ending(status: status, returnCode: -1, limitHit: run.limitHit, reason: reason))
    }

    /// Ends the live log without a history entry (the run recorded itself already).
    func ended(status: String, reason: String?) {
        liveLog?.finish(LiveLog.Ending(status: status, reason: reason))
    }

    private func insert(_ run: RunRecord) {
        do {
            try history.insert(run)
        } catch {
            logger.error("cannot record the run in the history: \(error)", metadata: ["job": "\(run.job)"])
        }
    }
}
