#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CSandbox
import Logging
import Sandbox

/// One run of `OneShotRunner`, around the sandbox's own run: the job
/// folder opened, the sandbox's configuration made, the results folder
/// opened and the partial logs created (`init`), the commit prepared while
/// the job runs (`prepareCommit`); then, once the job ended, its results
/// written (`writeResults`). Until they are committed, `abandon` removes
/// the partial logs and the prepared files, and nothing of the run is left
/// in the results folder.
final class OneShotRun {
    let options: OneShotOptions
    let job: JobFolder
    let results: ResultsFolder
    let files: ResultsFolder.PartialLogs
    /// The commit's files (`prepareCommit`): handed once to `commit` or
    /// `discard` (`takePrepared`); the replaced files they hold are
    /// released at deinit.
    private var prepared: ResultsFolder.PreparedCommit?
    private var preparedTaken = false
    let configuration: SandboxConfiguration
    private let logger: Logger
    private let started: Date
    private let clock: ContinuousClock.Instant
    private var committed = false

    /// `ahead`: the started sandbox that will run it, which gets the
    /// configuration as soon as it is made (`StartedSandbox.sendAhead`):
    /// its PID 1 builds the root while the results folder is prepared.
    init(_ options: OneShotOptions, logger: Logger, ahead: StartedSandbox? = nil) throws {
        self.options = options
        self.logger = logger
        job = try JobFolder.open(options.jobFolder)
        for warning in job.warnings { logger.warning("\(warning)") }
        configuration = try OneShotRunner.sandboxConfiguration(options, job: job)
        ahead?.sendAhead(configuration)
        results = try ResultsFolder(options.resultsFolder ?? job.path, runID: options.jobID)
        files = try results.createPartialLogs()
        started = Date()
        clock = ContinuousClock.now
        logger.debug("starting the sandbox", metadata: ["job": "\(job.path)", "id": "\(options.jobID)"])
    }

    /// What the commit needs, made while the job runs (`whileRunning`:
    /// off the sandbox's way to the job's start): the results' temporary
    /// files and the replaced ones held (`ResultsFolder.prepareCommit`),
    /// and the exit's helper for a process that ends with the run. Failing,
    /// the commit writes the files the usual way.
    func prepareCommit() {
        guard prepared == nil, !preparedTaken, !committed else { return }
        prepared = try? results.prepareCommit(writesRecord: options.writesRecord)
        // Best effort: without it, the exit starts its helper itself.
        if options.processEndsWithRun { _ = csb_exit_prepare() }
    }

    /// Where the sandbox writes the job's output: the partial logs.
    var output: OutputCapture {
        OutputCapture(stdout: files.stdout.rawValue, stderr: files.stderr.rawValue, sink: options.sink)
    }

    /// A sandbox for this run, when the caller did not start one.
    func startSandbox() -> StartedSandbox {
        Sandbox.start(network: configuration.network, cgroups: configuration.cgroups,
                      networkNamespaces: configuration.networkNamespaces)
    }

    /// The prepared commit, now the caller's; the replaced files it holds
    /// are released (`OneShotOptions.processEndsWithRun`) when the
    /// caller is done with it.
    private func takePrepared() -> ResultsFolder.PreparedCommit? {
        guard !preparedTaken else { return nil }
        preparedTaken = true
        return prepared
    }

    /// Closes the replaced files' descriptors (see `PreparedCommit`).
    deinit {
        if let prepared { ResultsFolder.releaseReplaced(prepared, afterExit: options.processEndsWithRun) }
    }

    /// Removes the partial logs, unless the results were committed (or
    /// already given up).
    func abandon() {
        guard !committed else { return }
        committed = true
        results.discard(files, prepared: takePrepared())
    }

    /// The job's results, into the results folder; `finished`: when the
    /// job ended. Written while the kernel still tears the sandbox down.
    func writeResults(_ ran: SandboxResult, finished: Date) throws -> OneShotOutcome {
        var result = ran
        if result.timedOut {
            for fd in [files.stdout, files.stderr] { _ = try? fd.writeAll(Array(OneShotRunner.timeoutMarker.utf8)) }
        }
        if let note = options.noteOnFailure, !result.succeeded {
            _ = try? files.stderr.writeAll(Array("\n[syft-sandbox-run: \(note)]\n".utf8))
        }
        var warnings = job.warnings
        if result.idmapFallbacks > 0 {
            warnings.append("the job folder could not be idmapped; files only the invoking user may read are unreadable inside")
        }
        if let note = result.cgroupNote {
            warnings.append("no cgroup for the job (\(note)); memory and processes are limited per process with rlimits")
        }
        guard let outputs = result.exported.first(where: { $0.target == OneShotRunner.outputsTarget }) else {
            throw SandboxError(.setupFailed, "the sandbox did not hand back its outputs folder")
        }
        // Closed once collected: the last reference to the outputs
        // filesystem (the daemon would otherwise keep one per job). The
        // one-shot CLI leaves its teardown (unmounting a tmpfs of up to
        // --max-outputs) to after its exit: `processEndsWithRun`.
        defer {
            for exported in result.exported {
                if options.processEndsWithRun {
                    exported.release { csb_exit_close_later($0.rawValue) == 0 }
                } else {
                    exported.close()
                }
            }
        }
        if OutputsVolume.isFull(outputs.descriptor) {
            warnings.append("the outputs folder filled up (\(ByteSize.describe(options.outputsBytes))); the job got ENOSPC")
            if result.limitHit == .none, !result.succeeded { result.limitHit = .outputsSize }
        }
        let ran = ContinuousClock.now
        if let mayWrite = options.mayWriteResults, !mayWrite() {
            // The results folder is someone else's now (the owner deposited a
            // result while the job ran): only the history gets the logs.
            warnings.append("the results were not written: the job's review folder changed hands while it ran")
            let record = OneShotRunner.makeRecord(options, job: job, result: result, outputs: ArtifactReport(),
                                                  warnings: warnings, started: started, finished: finished)
            committed = true
            results.discard(files, prepared: takePrepared(), keepingLogsIn: options.keepLogsIn)
            return OneShotOutcome(record: record, exitStatus: result.shellStatus)
        }
        let report = try results.collectOutputs(from: outputs.descriptor, withholding: options.withheldOutputNames,
                                                freesAfterExit: options.processEndsWithRun)
        let collected = ContinuousClock.now
        let record = OneShotRunner.makeRecord(options, job: job, result: result, outputs: report, warnings: warnings,
                                              started: started, finished: finished)
        try results.commit(files, prepared: takePrepared(), returncode: record.returncode ?? -1,
                           record: options.writesRecord ? record : nil, durable: options.durable,
                           keepingLogsIn: options.keepLogsIn)
        committed = true
        logger.debug("timings", metadata: [
            "sandbox_us": "\(OneShotRunner.microseconds(clock.duration(to: ran)))",
            "setup_us": "\(OneShotRunner.microseconds(result.setupTime))",
            "teardown_us": "\(OneShotRunner.microseconds(result.teardownTime))",
            "collect_us": "\(OneShotRunner.microseconds(ran.duration(to: collected)))",
            "commit_us": "\(OneShotRunner.microseconds(collected.duration(to: .now)))",
            "early_clone": "\(result.startedEarly)",
        ])
        return OneShotOutcome(record: record, exitStatus: result.shellStatus)
    }
}
