import Glibc
import Sandbox
import SystemPackage

extension SandboxError.Code {
    /// No job has this id, path or name.
    public static let jobNotFound = Self(rawValue: "job_not_found")
    /// The job is not in a state that allows this (approving a running job, …).
    public static let jobStateConflict = Self(rawValue: "job_state_conflict")
}

/// The owner's review of SyftBox jobs, shared by `syft-sandbox-run jobs`
/// and the HTTP API: each writes state.yaml exactly as the syft-job client
/// does for the same action, keeping every other field.
public enum JobReview {
    /// The job named `id`: its path below inbox/ (`DS/v1/JOB`, `DS/JOB`),
    /// its API id (`JobID`) or, when that is unambiguous, its name alone.
    public static func find(_ id: String, in layout: SyftBoxLayout) throws -> InboxJob {
        let jobs = try layout.scanInbox().jobs
        if let exact = jobs.first(where: { $0.relativePath.string == id }) { return exact }
        if let key = JobID(rawValue: id), let match = jobs.first(where: { JobID.syftBox($0) == key }) { return match }
        let named = jobs.filter { $0.name == id }
        guard named.count == 1 else {
            throw SandboxError(.jobNotFound, named.isEmpty ? "no such job" : "several jobs have this name", path: id,
                               hint: named.isEmpty ? "see 'jobs list'" : "name it by its path: "
                                   + named.map(\.relativePath.string).joined(separator: ", "))
        }
        return named[0]
    }

    public static func state(of job: InboxJob, in layout: SyftBoxLayout) throws -> JobState? {
        try JobState.read(from: layout.stateFile(of: job), protocolVersion: job.protocolVersion)
    }

    /// A pending job approved by the owner (the client's `approve()`).
    @discardableResult
    public static func approve(_ job: InboxJob, in layout: SyftBoxLayout, reason: String? = nil) throws -> JobState {
        let state = try expect(job, in: layout, [.pending], "only a pending job can be approved")
        let approved = state.markApproved(by: layout.owner, method: .manual, reason: reason)
        try approved.write(to: layout.stateFile(of: job))
        return approved
    }

    /// A pending or approved job rejected (the client's `reject()`).
    @discardableResult
    public static func reject(_ job: InboxJob, in layout: SyftBoxLayout, reason: String) throws -> JobState {
        let state = try expect(job, in: layout, [.pending, .approved], "only a pending or approved job can be rejected",
                               hint: "a running job is stopped with 'jobs cancel'")
        let rejected = state.markRejected(reason: reason, by: layout.owner)
        try rejected.write(to: layout.stateFile(of: job))
        return rejected
    }

    /// A running job stopped, or an approved one withdrawn: failed,
    /// "cancelled by the owner". The daemon sees the change and kills the
    /// job's sandbox.
    @discardableResult
    public static func cancel(_ job: InboxJob, in layout: SyftBoxLayout) throws -> JobState {
        let state = try expect(job, in: layout, [.running, .approved], "only a running or approved job can be cancelled")
        let cancelled = state.markFailed(reason: "cancelled by the owner")
        try cancelled.write(to: layout.stateFile(of: job))
        return cancelled
    }

    /// A done or failed job run again (the client's `rerun()`): its logs,
    /// return code and outputs removed from the review folder, then
    /// `approved` with `completed_at` and `return_code` cleared.
    @discardableResult
    public static func rerun(_ job: InboxJob, in layout: SyftBoxLayout) throws -> JobState {
        var state = try expect(job, in: layout, [.done, .failed], "only a done or failed job can be run again")
        let review = layout.reviewFolder(of: job)
        for name in ["stdout.txt", "stderr.txt", "returncode.txt"] {
            let path = review.appending(name)
            if unlink(path.string) != 0, errno != ENOENT {
                throw SandboxError(.io, "cannot remove the last run's log", path: path.string, errno: Errno(rawValue: errno))
            }
        }
        try ArtifactCollector.removeTree(review.appending("outputs"))
        state.status = .approved
        state.completedAt = nil
        state.returnCode = nil
        try state.write(to: layout.stateFile(of: job))
        return state
    }

    private static func expect(_ job: InboxJob, in layout: SyftBoxLayout, _ allowed: [JobState.Status], _ message: String,
                               hint: String? = nil) throws -> JobState {
        let state = try state(of: job, in: layout)
        guard let state, allowed.contains(state.status) else {
            throw SandboxError(.jobStateConflict, "\(message) (it is \(state?.status.rawValue ?? "received"))",
                               path: job.relativePath.string, hint: hint)
        }
        return state
    }
}
