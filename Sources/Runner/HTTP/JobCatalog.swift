#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Sandbox
import SystemPackage

/// Every job the API can name, SyftBox or API, found by its id (or a run's
/// id, or a SyftBox job's path or name), and what the API shows of it.
struct JobCatalog: Sendable {
    let service: JobQueueService
    let history: HistoryStore
    let layout: SyftBoxLayout
    let liveLogs: LiveLogs
    let receipts: ReceiptStore
    let apiStore: APIJobStore

    enum Entry: Sendable {
        case syftBox(InboxJob)
        case api(APIJobStatus)
    }

    struct Found: Sendable {
        var id: JobID
        var entry: Entry
    }

    static let logReadLimit = 64 << 20

    /// The job `text` names: a job id, a run id (its job), or for SyftBox
    /// jobs `DS/v1/JOB` or a name that only one job has.
    func find(_ text: String) async throws -> Found {
        if RunID.isValid(text) {
            guard let run = try await history.run(id: text), let id = JobID(rawValue: run.jobID) else {
                throw SandboxError(.jobNotFound, "no such run", path: text)
            }
            return try await find(id)
        }
        if let id = JobID(rawValue: text) { return try await find(id) }
        do {
            let job = try JobReview.find(text, in: layout)
            return Found(id: JobID.syftBox(job), entry: .syftBox(job))
        } catch let error as SandboxError where error.code == .jobNotFound {
            throw SandboxError(.jobNotFound, error.message, path: text) // the CLI's hint is not the API's
        }
    }

    func find(_ id: JobID) async throws -> Found {
        if let status = await service.apiJob(id) { return Found(id: id, entry: .api(status)) }
        if let job = try layout.scanInbox().jobs.first(where: { JobID.syftBox($0) == id }) {
            return Found(id: id, entry: .syftBox(job))
        }
        throw SandboxError(.jobNotFound, "no such job", path: id.rawValue)
    }

    /// Every job: the SyftBox inbox's and the API's, newest first.
    func list(status: String?, source: String?) async throws -> [JobJSON] {
        var jobs: [JobJSON] = []
        if source == nil || source == "syftbox" {
            for job in try layout.scanInbox().jobs {
                jobs.append(try await view(Found(id: JobID.syftBox(job), entry: .syftBox(job)), detail: false))
            }
        }
        if source == nil || source == "api" {
            for status in await service.allAPIJobs() {
                jobs.append(try await view(Found(id: status.job.id, entry: .api(status)), detail: false))
            }
        }
        // `status` may name several, comma-separated (`pending,approved,running`).
        if let status, !status.isEmpty {
            let wanted = Set(status.split(separator: ",").map { String($0).trimmingCharacters(in: " ") })
            jobs.removeAll { !wanted.contains($0.status) }
        }
        return jobs.sorted { ($0.createdAt ?? "") > ($1.createdAt ?? "") }
    }

    /// What the API shows of a job; `detail` adds its runs, artifacts and last result.
    func view(_ found: Found, detail: Bool) async throws -> JobJSON {
        let runs = detail ? try await history.runs(ofJob: found.id) : []
        let last: RunRecord? = detail ? runs.first : nil
        let live = liveLogs.log(of: found.id)
        var job: JobJSON
        switch found.entry {
        case let .syftBox(inbox):
            let state = try? service.states.state(of: inbox, in: layout)
            let metadata = try? SubmissionMetadata.parse(
                FileSystem.readRegularFile(layout.inboxFolder(of: inbox).appending("config.yaml"), limit: 4 << 20))
            let status = state?.status.rawValue ?? "received"
            job = JobJSON(
                id: found.id.rawValue, source: "syftbox", name: inbox.name, submitter: inbox.submitter,
                path: inbox.relativePath.string, status: status,
                createdAt: state?.receivedAt?.text ?? metadata?.submittedAt?.text,
                startedAt: last?.startedAt, finishedAt: last?.finishedAt, exitCode: last?.exitCode,
                returnCode: state?.returnCode, limitHit: last?.limitHit,
                error: status == "rejected" || status == "failed" ? state?.reviewReason : nil, spec: nil,
                config: metadata.map(SubmissionConfigJSON.init), state: state.map(StateJSON.init),
                fingerprint: receipts.read(inbox)?.fingerprint, artifacts: [], runs: [], result: nil,
                actions: Self.actions(syftBox: status), live: live != nil && live?.ending == nil, currentRun: nil)
            if detail { job.artifacts = OutputsAccess.list(layout.reviewFolder(of: inbox).appending("outputs")) }
        case let .api(status):
            let shown = status.phase == .finished ? (status.lastStatus ?? "finished") : status.phase.rawValue
            job = JobJSON(
                id: found.id.rawValue, source: "api", name: status.job.name, submitter: layout.owner, path: nil,
                status: shown, createdAt: status.job.createdAt.iso8601UTC, startedAt: last?.startedAt,
                finishedAt: last?.finishedAt, exitCode: last?.exitCode, returnCode: last?.returnCode,
                limitHit: last?.limitHit, error: last?.reason, spec: status.job.spec, config: nil, state: nil,
                fingerprint: nil, artifacts: [], runs: [], result: nil,
                actions: status.phase == .finished ? ["restart"] : ["stop"], live: live != nil && live?.ending == nil,
                currentRun: nil)
            if detail, let run = status.lastRunID, let folder = history.folder(ofRun: run) {
                job.artifacts = OutputsAccess.list(folder.appending("outputs"))
            }
        }
        // A run going on now: its own start, no end yet (the last finished
        // run stays in `runs` and `result`).
        if let live, live.ending == nil, let run = live.runID {
            job.currentRun = run
            job.startedAt = live.startedAt
            job.finishedAt = nil
            job.exitCode = nil
            job.limitHit = nil
            if case .api = found.entry { job.returnCode = nil }
        }
        if detail {
            job.runs = runs.map { RunJSON($0) }
            if let last, let full = try await history.run(id: last.id) { job.result = RunJSON(full, withResult: true).result }
        }
        return job
    }

    static func actions(syftBox status: String) -> [String] {
        switch status {
        case "pending": ["approve", "reject"]
        case "approved": ["reject", "stop"]
        case "running": ["stop"]
        case "done", "failed": ["restart"]
        default: []
        }
    }

    /// Where the job's current outputs are (the last run's).
    func outputsFolder(_ found: Found) -> FilePath? {
        switch found.entry {
        case let .syftBox(job): layout.reviewFolder(of: job).appending("outputs")
        case let .api(status): status.lastRunID.flatMap(history.folder(ofRun:))?.appending("outputs")
        }
    }

    /// The folder holding the last run's stdout.txt and stderr.txt.
    func logsFolder(_ found: Found) -> FilePath? {
        switch found.entry {
        case let .syftBox(job): layout.reviewFolder(of: job)
        case let .api(status): status.lastRunID.flatMap(history.folder(ofRun:))
        }
    }

    /// The job's logs now: the live ones while it runs, else the last run's files.
    func logs(_ found: Found) -> (stdout: [UInt8], stderr: [UInt8]) {
        if let live = liveLogs.log(of: found.id), live.runID != nil {
            let snapshot = live.snapshot()
            return (snapshot.stdout, snapshot.stderr)
        }
        return Self.readLogs(in: logsFolder(found))
    }

    static func readLogs(in folder: FilePath?) -> (stdout: [UInt8], stderr: [UInt8]) {
        guard let folder else { return ([], []) }
        let stdout = (try? FileSystem.readRegularFile(folder.appending("stdout.txt"), limit: logReadLimit)) ?? []
        let stderr = (try? FileSystem.readRegularFile(folder.appending("stderr.txt"), limit: logReadLimit)) ?? []
        return (stdout, stderr)
    }
}
