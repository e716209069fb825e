#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArgumentParser
import Glibc
import Logging
import Runner
import Sandbox
import SystemPackage

extension NetworkPolicy: ExpressibleByArgument {}

/// The one-shot form: run one job folder and leave its results.
struct RunCommand: AsyncParsableCommand, ExecutableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one job folder (bash run.sh) in the sandbox.",
        discussion: """
        Writes stdout.txt, stderr.txt, returncode.txt, result.json and outputs/ into the results folder.
        Exit status: the job's own; 124 on timeout; 125 when the sandbox could not be set up or the \
        input is bad; 128+N when the job was killed by signal N.
        """)

    @Option(help: "Folder for the results (default: the job folder).")
    var results: String?

    @Option(help: "Wall-clock limit in seconds (default: $SYFT_DEFAULT_JOB_TIMEOUT_SECONDS, else 600).")
    var timeout: Double?

    @Option(help: "Network: none (default), loopback, or host.")
    var net: NetworkPolicy = .none

    @Option(help: "Memory of the whole job, e.g. 512M (default 2G; a cgroup, else RLIMIT_AS).")
    var memory: String?

    @Option(help: "Processes and threads of the whole job (default 512; a cgroup, else RLIMIT_NPROC).")
    var pids: UInt64?

    @Option(name: .customLong("cpu-time"), help: "CPU seconds of the whole job (its cgroup), else per process (default: none).")
    var cpuTime: UInt64?

    @Option(name: .customLong("max-output"), help: "Bytes kept of stdout and of stderr, each (default 10M); past it the job is stopped.")
    var maxOutput: String?

    @Option(name: .customLong("max-outputs"), help: "Size of the writable outputs folder (default 1G); past it writes fail with ENOSPC.")
    var maxOutputs: String?

    @Option(name: .customLong("tmp-size"), help: "Size of the job's private /tmp (default 512M).")
    var tmpSize: String?

    @Option(name: .customLong("open-files"), help: "Open files per process (default 1024).")
    var openFiles: UInt64?

    @Option(name: .customLong("file-size"), help: "Largest file the job may write (default 1G).")
    var fileSize: String?

    @Option(name: .customLong("env"), help: "Add KEY=VALUE to the job's environment (repeatable).")
    var environment: [String] = []

    @Option(help: "A seccomp profile in the OCI/Docker JSON format instead of the default.")
    var seccomp: String?

    @Option(help: "A prepared root directory instead of the assembled root.")
    var rootfs: String?

    @Option(help: "Host uid and gid the job's root maps to when run as root (default 100000).")
    var uid: UInt32?

    @Flag(help: "Print result.json's record on stdout.")
    var json = false

    @Argument(help: "The job folder (holds run.sh).")
    var jobdir: String

    /// The values parsed, as the fast path makes them too.
    var arguments: OneShotArguments {
        OneShotArguments(results: results, timeout: timeout, net: net, memory: memory, pids: pids, cpuTime: cpuTime,
                         maxOutput: maxOutput, maxOutputs: maxOutputs, tmpSize: tmpSize, openFiles: openFiles,
                         fileSize: fileSize, environment: environment, seccomp: seccomp, rootfs: rootfs, uid: uid,
                         json: json, jobdir: jobdir)
    }

    func validate() throws {
        if let problem = arguments.problem { throw ValidationError(problem) }
    }

    func run() async throws { try await execute() }

    /// Blocks the one task of this command line (the process does nothing
    /// else) for the job's run.
    func execute() async throws {
        let status = try arguments.execute()
        if status != 0 { throw ExitCode(status) }
    }
}

extension OneShotArguments {
    /// `sandbox`: one already starting with `net` (main.swift); nil: one
    /// is started here, on a thread of its own, while this one reads the
    /// options and opens the job and results folders. Blocks the calling
    /// thread until the results are written and the sandbox is gone.
    /// Returns the exit status (the CLI contract's), not thrown as an
    /// `ExitCode`: boxing it as an error looks its conformance up at run
    /// time, on the way from the job's end to the process's.
    func execute(sandbox started: StartedSandbox? = nil) throws -> Int32 {
        let logger = Logger(label: "syft-sandbox-run", factory: { CLILogHandler(label: $0) })
        let sandbox = started ?? Sandbox.start(network: net)
        let outcome: OneShotOutcome
        do {
            let parsing = ContinuousClock.now
            let options = try makeOptions()
            logger.debug("options ready", metadata: ["us": "\(OneShotRunner.microseconds(parsing.duration(to: .now)))"])
            let control = try SandboxControl()
            SignalForwarder.forward(to: control)
            outcome = try OneShotRunner.runBlocking(options, logger: logger, control: control, sandbox: sandbox)
        } catch {
            // Bad input found after the sandbox started: it is gone (PID 1
            // reaped, its cgroup removed) before the CLI exits.
            sandbox.discardBlocking(processExits: true)
            guard let error = error as? SandboxError else { throw error }
            logger.critical("\(error)")
            if json { printFailureJSON(error) }
            return ExitStatus.setupFailed
        }
        if json { try printJSON(outcome.record) }
        return outcome.exitStatus
    }

    func makeOptions() throws -> OneShotOptions {
        var options = OneShotOptions(jobFolder: FilePath(jobdir),
                                     seccomp: try BuiltinPolicies.seccompProgram(path: seccomp.map { FilePath($0) }),
                                     skeleton: BuiltinPolicies.skeleton)
        options.resultsFolder = results.map { FilePath($0) }
        if let timeout { options.limits.wallTime = .milliseconds(Int64((timeout * 1000).rounded(.up))) }
        options.network = net
        if let bytes = memory.flatMap(ByteSize.parse) { options.limits.memoryBytes = bytes }
        if let pids { options.limits.processes = pids }
        if let cpuTime { options.limits.cpuTime = .seconds(cpuTime) }
        if let openFiles { options.limits.openFiles = openFiles }
        if let bytes = fileSize.flatMap(ByteSize.parse) { options.limits.fileSizeBytes = bytes }
        if let bytes = maxOutput.flatMap(ByteSize.parse) { options.limits.outputBytes = bytes }
        if let bytes = maxOutputs.flatMap(ByteSize.parse) { options.outputsBytes = bytes }
        if let bytes = tmpSize.flatMap(ByteSize.parse) { options.tmpBytes = bytes }
        // Only when there are some: an array of the pairs, even an empty
        // one, instantiates its tuple type's metadata from its mangled name.
        if !environment.isEmpty {
            options.extraEnvironment = environment.map { entry in
                let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }
        }
        options.rootfs = rootfs.map { FilePath($0) }
        if let uid { options.identity = .automatic(rootMapsTo: uid) }
        if let user = getenv("USER") { options.requester = String(cString: user) }
        // The process ends with the run, through csb_exit_process (main.swift).
        options.processEndsWithRun = true
        return options
    }

    func printJSON(_ record: ResultRecord) throws {
        try FileDescriptor.standardOutput.writeAll(record.fileBytes)
    }

    func printFailureJSON(_ error: SandboxError) {
        struct Failure: Encodable {
            var status = "setup_failed"
            var error: String
            var code: String
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(Failure(error: error.description, code: error.code.rawValue)) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
