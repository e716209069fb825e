#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging
import Sandbox
import SystemPackage

/// Everything `syft-sandbox-run <jobdir>` needs.
public struct OneShotOptions: Sendable {
    public var jobFolder: FilePath
    /// Where results go; nil: the job folder itself.
    public var resultsFolder: FilePath?
    public var network: NetworkPolicy
    /// Prepared network namespaces for `network` (the daemon's pool); nil:
    /// the sandbox makes its own.
    public var networkNamespaces: NetworkNamespacePool?
    /// Time, CPU, memory, processes, files and output caps.
    public var limits: ResourceLimits
    /// Size of the writable outputs folder (a tmpfs; the job gets ENOSPC past it).
    public var outputsBytes: UInt64
    /// Size of the job's private /tmp.
    public var tmpBytes: UInt64
    public var extraEnvironment: [(name: String, value: String)]
    public var seccomp: SeccompProgram
    /// A prepared root directory instead of the assembled one.
    public var rootfs: FilePath?
    public var skeleton: RootSkeleton
    public var identity: IdentityMapping
    public var jobID: String
    public var requester: String
    /// Daemon jobs: the data owner (SYFTBOX_EMAIL), the SyftBox view
    /// (mounted read-only at `syftboxFolder`, SYFTBOX_FOLDER).
    public var ownerEmail: String?
    public var syftboxFolder: String?
    /// Mounts added after the job folder's (the daemon's SyftBox view).
    public var extraMounts: [Mount]
    /// Write result.json into the results folder (syft-job's review
    /// folder has none: the daemon keeps the record in its history).
    public var writesRecord: Bool
    /// fsync returncode.txt and result.json before renaming them in.
    public var durable: Bool
    /// Names never collected from the outputs (the daemon: syft.pub.yaml).
    public var withheldOutputNames: [String]
    /// Also keep stdout.txt and stderr.txt here (the daemon's history of
    /// runs): hard links where it can, else copies.
    public var keepLogsIn: FilePath?
    /// A line added to stderr.txt when the job did not succeed (the daemon:
    /// why a python job without a network fails).
    public var noteOnFailure: String?
    /// Asked once the job ended, before anything is written into the
    /// results folder: false leaves it untouched (the daemon: the owner
    /// ended the job meanwhile, and what is there now is theirs).
    public var mayWriteResults: (@Sendable () -> Bool)?
    /// The process ends with this run, through `csb_exit_process` (the
    /// one-shot CLI): its exit helper is started while the sandbox starts
    /// (`csb_exit_prepare`), and what the run lets go of once its results
    /// are written (the job's outputs filesystem; the previous results'
    /// files it replaced) is freed after the process's exit, rather than
    /// on the way to its caller's wait; the sandbox's PID 1 is let go from
    /// the caller's thread, and left to whoever reaps the process's orphans,
    /// and the sandbox's thread ends once the job's group is gone
    /// (`StartedSandbox.runBlocking(processExits:)`,
    /// `waitUntilEnded(processExits:)`). False: as soon as
    /// the run is done, and PID 1 is reaped before `runBlocking` returns.
    public var processEndsWithRun: Bool
    /// Receives output chunks as they are written (live logs).
    public var sink: (@Sendable (OutputChannel, [UInt8]) -> Void)?
    /// Called once the sandbox is gone, before the results are collected
    /// (the daemon: the job's concurrency slot goes to the next job).
    public var sandboxEnded: (@Sendable () async -> Void)?

    public static let defaultOutputsBytes: UInt64 = 1 << 30
    public static let defaultTmpBytes: UInt64 = 512 << 20

    public init(jobFolder: FilePath, seccomp: SeccompProgram, skeleton: RootSkeleton) {
        self.jobFolder = jobFolder
        self.seccomp = seccomp
        self.skeleton = skeleton
        resultsFolder = nil
        network = .none
        networkNamespaces = nil
        limits = ResourceLimits(wallTime: .seconds(OneShotOptions.defaultTimeoutSeconds()))
        outputsBytes = Self.defaultOutputsBytes
        tmpBytes = Self.defaultTmpBytes
        extraEnvironment = []
        rootfs = nil
        identity = .automatic()
        jobID = UUID().uuidString.lowercased()
        requester = "local"
        ownerEmail = nil
        syftboxFolder = nil
        extraMounts = []
        writesRecord = true
        durable = false
        processEndsWithRun = false
        withheldOutputNames = []
        keepLogsIn = nil
        mayWriteResults = nil
        noteOnFailure = nil
        sink = nil
        sandboxEnded = nil
    }

    /// `SYFT_DEFAULT_JOB_TIMEOUT_SECONDS`, else 600 (syft-job's default).
    public static func defaultTimeoutSeconds(environment: [String: String]? = nil) -> Int64 {
        let value = environment?["SYFT_DEFAULT_JOB_TIMEOUT_SECONDS"]
            ?? getenv("SYFT_DEFAULT_JOB_TIMEOUT_SECONDS").map { String(cString: $0) }
        if let value, let seconds = Int64(value), seconds > 0 { return seconds }
        return 600
    }
}

/// The outcome of a one-shot run: the record written to result.json and
/// the exit status the CLI returns.
public struct OneShotOutcome: Sendable {
    public var record: ResultRecord
    public var exitStatus: Int32
}

/// Runs one job folder in the sandbox and leaves stdout.txt, stderr.txt,
/// returncode.txt, outputs/ and result.json in the results folder.
///
/// Nothing is written half-way: output goes to temporary files that are
/// renamed into place at the end, outputs/ is replaced atomically, and
/// result.json, written last, marks a complete set. When the sandbox cannot
/// be set up, nothing is left behind and `SandboxError` is thrown.
///
/// Two forms of the same run (`OneShotRun` is what they share): `run`
/// awaits the sandbox (the daemon's jobs, each a task), `runBlocking`
/// waits for it on the calling thread (the one-shot CLI's main thread,
/// which has nothing else to do: no task, and none of the concurrency
/// runtime's threads to start, wake and end on the way).
public enum OneShotRunner {
    public static let timeoutMarker = "\n--- PROCESS TIMED OUT ---\n"

    /// `sandbox`: one started (`Sandbox.start`) with `options.network`
    /// while the options were being made; nil: one is started here.
    public static func run(_ options: OneShotOptions, logger: Logger, control: SandboxControl? = nil,
                           sandbox: StartedSandbox? = nil) async throws -> OneShotOutcome {
        let run = try OneShotRun(options, logger: logger)
        // Nothing of the run is left in the results folder unless committed.
        defer { run.abandon() }
        run.prepareCommit()
        let launched = sandbox ?? run.startSandbox()
        let result = try await launched.run(run.configuration, output: run.output, control: control)
        let finished = Date()
        if let sandboxEnded = options.sandboxEnded {
            // The daemon: the job's concurrency slot goes on once the sandbox is gone.
            await launched.ended()
            await sandboxEnded()
        }
        // Written while the kernel tears the sandbox down; nothing of the
        // sandbox outlives the run, whatever happens here.
        do {
            let outcome = try run.writeResults(result, finished: finished)
            await launched.ended()
            return outcome
        } catch {
            await launched.ended()
            throw error
        }
    }

    /// As `run`, blocking the calling thread until the results are written
    /// and the sandbox is gone. Not from a task (it would hold one of the
    /// cooperative pool's threads for the whole job); `options.sandboxEnded`
    /// must be nil (it is async; the daemon's).
    public static func runBlocking(_ options: OneShotOptions, logger: Logger, control: SandboxControl? = nil,
                                   sandbox: StartedSandbox? = nil) throws -> OneShotOutcome {
        precondition(options.sandboxEnded == nil, "runBlocking does not call sandboxEnded; use run")
        let run = try OneShotRun(options, logger: logger, ahead: sandbox)
        let launched = sandbox ?? run.startSandbox()
        defer { run.abandon() }
        let result = try launched.runBlocking(run.configuration, output: run.output, control: control,
                                              processExits: options.processEndsWithRun) {
            run.prepareCommit()
        }
        let finished = Date()
        defer { launched.waitUntilEnded(processExits: options.processEndsWithRun) }
        return try run.writeResults(result, finished: finished)
    }

    /// Where the job sees its writable outputs folder (and, with code/,
    /// at /job/code/outputs too: the syft-job convention).
    static let outputsTarget = "/job/outputs"

    static func sandboxConfiguration(_ options: OneShotOptions, job: JobFolder) throws -> SandboxConfiguration {
        let outputPoints = ["outputs"] + (job.hasCodeFolder ? ["code/outputs"] : [])
        var mounts: [Mount]
        if let rootfs = options.rootfs {
            mounts = RootFilesystem.prepared(try FileSystem.canonical(rootfs), tmpBytes: options.tmpBytes,
                                             mountPoints: ["job"])
        } else {
            mounts = try RootFilesystem.assembled(skeleton: options.skeleton, network: options.network,
                                                  tmpBytes: options.tmpBytes)
        }
        mounts.append(.bind(job.path, at: "/job", options: [.idmap], mountPoints: outputPoints))
        mounts.append(Mount(.exportedTmpfs(sizeBytes: options.outputsBytes, mode: 0o755), at: outputsTarget,
                            attributes: [.noSetuid, .noDevices]))
        if job.hasCodeFolder {
            mounts.append(Mount(.rebind(source: outputsTarget), at: "/job/code/outputs",
                                attributes: [.noSetuid, .noDevices]))
        }
        mounts += options.extraMounts
        let environment = JobEnvironment.build(
            jobID: options.jobID, jobName: job.name, requester: options.requester,
            ownerEmail: options.ownerEmail, syftboxFolder: options.syftboxFolder, extra: options.extraEnvironment)
        var configuration = SandboxConfiguration(
            mounts: mounts, executable: "/bin/bash", arguments: ["bash", "run.sh"], environment: environment,
            workingDirectory: "/job", identity: options.identity, network: options.network,
            seccomp: options.seccomp, limits: options.limits)
        configuration.networkNamespaces = options.networkNamespaces
        return configuration
    }

    static func makeRecord(_ options: OneShotOptions, job: JobFolder, result: SandboxResult,
                           outputs: ArtifactReport, warnings: [String], started: Date, finished: Date) -> ResultRecord {
        var exitCode: Int32?
        var signal: Int32?
        switch result.termination {
        case let .exited(code): exitCode = code
        case let .signaled(number): signal = number
        }
        let status: ResultRecord.Status
        switch result.limitHit {
        case .timeout: status = .timedOut
        case .none: status = exitCode == 0 ? .succeeded : .failed
        case .memory, .pids, .outputsSize: status = .failed
        case .output, .cpuTime, .cancelled: status = .killed
        }
        let returncode: Int32 = result.timedOut ? -1 : (exitCode ?? result.shellStatus)
        let limits = options.limits
        let record = ResultRecord.Limits(
            timeoutSeconds: limits.wallTime.map { Double(milliseconds($0)) / 1000 },
            cpuTimeSeconds: limits.cpuTime.map { Double(milliseconds($0)) / 1000 },
            memoryBytes: limits.memoryBytes, processes: limits.processes, enforcement: result.enforcement,
            cpuTimeEnforcement: limits.cpuTime == nil ? nil : result.cpuTimeEnforcement,
            openFiles: limits.openFiles, fileSizeBytes: limits.fileSizeBytes, outputBytes: limits.outputBytes,
            outputsBytes: options.outputsBytes, tmpBytes: options.tmpBytes)
        return ResultRecord(
            status: status, exitCode: exitCode, signal: signal, returncode: returncode,
            job: .init(id: options.jobID, name: job.name, type: job.config.type, folder: job.path.string),
            startedAt: started.iso8601UTC, finishedAt: finished.iso8601UTC,
            wallMs: milliseconds(result.wallTime), cpuUserMs: milliseconds(result.userCPUTime),
            cpuSysMs: milliseconds(result.systemCPUTime), maxRssKb: result.maxRSSKilobytes,
            memoryPeakBytes: result.memoryPeakBytes, oomKilled: result.oomKilled,
            stdoutBytes: result.stdoutBytes, stderrBytes: result.stderrBytes,
            outputTruncated: result.outputTruncated, limitHit: result.limitHit, limits: record,
            network: options.network, outputs: outputs, warnings: warnings, error: nil)
    }

    public static func microseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// The outputs filesystem as the runner sees it after the job.
enum OutputsVolume {
    /// True when the job used it all (ENOSPC for its next write): no block
    /// or no inode left.
    static func isFull(_ directory: FileDescriptor) -> Bool {
        var info = statvfs()
        guard fstatvfs(directory.rawValue, &info) == 0 else { return false }
        return info.f_bavail == 0 || (info.f_files > 0 && info.f_favail == 0)
    }
}
