#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sandbox

/// Where the queue stands (`GET /api/status`, the metrics).
public struct QueueSnapshot: Sendable, Hashable {
    public var waiting: Int
    public var running: Int
    public var stopping: Bool
}

/// An API job as the queue knows it.
public struct APIJobStatus: Sendable {
    public enum Phase: String, Sendable {
        case queued, running, finished
    }

    public var job: APIJob
    public var phase: Phase
    /// The history status of its last run (nil before the first ends).
    public var lastStatus: String?
    public var lastRunID: String?
}

/// What the HTTP API asks of the queue: where it stands, and the jobs
/// submitted through the API (queued, stopped, run again in the same
/// slots as SyftBox jobs).
extension JobQueueService {

    /// Returns once the state folder is ready (immediately after that).
    public func waitUntilReady() async {
        guard ready != nil else { return }
        await withCheckedContinuation { ready?.append($0) }
    }

    public func snapshot() -> QueueSnapshot {
        QueueSnapshot(waiting: waiting.count, running: running.count, stopping: stopping)
    }

    /// The history, once the service runs.
    public var historyStore: HistoryStore? { history }
    public var apiJobStore: APIJobStore? { apiStore }

    public func apiJob(_ id: JobID) -> APIJobStatus? { apiJobs[id] }

    public func allAPIJobs() -> [APIJobStatus] {
        apiJobs.values.sorted { $0.job.createdAt > $1.job.createdAt }
    }

    /// Queues a job just stored by `POST /jobs`.
    public func submit(_ job: APIJob) throws {
        guard !stopping else { throw SandboxError(.daemonStopping, "the runner is stopping") }
        apiJobs[job.id] = APIJobStatus(job: job, phase: .queued)
        enqueueAPIJob(job.id)
        logger.info("submitted through the API", metadata: ["job": "api/\(job.id)", "name": "\(job.name)"])
    }

    /// Stops an API job: a running one's sandbox is killed, a queued one never runs.
    public func stopAPIJob(_ id: JobID) throws {
        guard let status = apiJobs[id] else { throw SandboxError(.jobNotFound, "no such job", path: id.rawValue) }
        switch status.phase {
        case .running:
            running[.api(id)]?.cancel()
        case .queued:
            waiting.removeAll { $0.run == .api(id) }
            apiJobs[id]?.phase = .finished
            apiJobs[id]?.lastStatus = "killed"
            if let run = newAPIRun(status.job, liveLog: liveLogs?.log(of: id)) {
                apiJobs[id]?.lastRunID = run.runID
                run.stoppedWhileQueued()
            }
            metrics.queue(running: running.count, waiting: waiting.count)
        case .finished:
            throw SandboxError(.jobStateConflict, "the job is not queued or running (it is \(status.lastStatus ?? "finished"))",
                               path: id.rawValue)
        }
    }

    /// Runs a finished API job again, as a new run.
    public func restartAPIJob(_ id: JobID) throws {
        guard !stopping else { throw SandboxError(.daemonStopping, "the runner is stopping") }
        guard let status = apiJobs[id] else { throw SandboxError(.jobNotFound, "no such job", path: id.rawValue) }
        guard status.phase == .finished else {
            throw SandboxError(.jobStateConflict, "the job is \(status.phase.rawValue); stop it first", path: id.rawValue)
        }
        apiJobs[id]?.phase = .queued
        enqueueAPIJob(id)
        logger.info("queued again through the API", metadata: ["job": "api/\(id)"])
    }

    private func enqueueAPIJob(_ id: JobID) {
        liveLogs?.open(id)
        waiting.append((.api(id), JobTimestamp.now().microsecondsSinceEpoch ?? 0))
        startJobs()
    }

    /// A new run of `job` (nil before the state folder is ready).
    private func newAPIRun(_ job: APIJob, liveLog: LiveLog?) -> DaemonAPIJobRun? {
        guard let history, let apiStore else { return nil }
        return DaemonAPIJobRun(job: job, runID: UUID().uuidString.lowercased(), options: options, store: apiStore,
                               history: history, metrics: metrics, liveLog: liveLog, logger: logger)
    }

    func executeAPIJob(_ id: JobID) async {
        guard let status = apiJobs[id], let run = newAPIRun(status.job, liveLog: liveLogs?.log(of: id)) else { return }
        apiJobs[id]?.phase = .running
        apiJobs[id]?.lastRunID = run.runID
        let result = await run.execute()
        apiJobs[id]?.phase = .finished
        apiJobs[id]?.lastStatus = result
        running[.api(id)] = nil
        startJobs()
    }

    /// API jobs stored before a restart: finished ones are listed, ones
    /// that never finished a run are recorded as interrupted.
    func recoverAPIJobs(history: HistoryStore) async {
        guard let apiStore else { return }
        for job in apiStore.loadAll() {
            let last = try? await history.runs(ofJob: job.id, limit: 1).first
            var status = APIJobStatus(job: job, phase: .finished, lastStatus: last?.status, lastRunID: last?.id)
            if last == nil, let run = newAPIRun(job, liveLog: nil) {
                run.interrupted()
                status.lastStatus = "killed"
                status.lastRunID = run.runID
            }
            apiJobs[job.id] = status
        }
    }
}

extension SandboxError.Code {
    /// The daemon is shutting down and takes no new work.
    public static let daemonStopping = Self(rawValue: "daemon_stopping")
}
