import ArgumentParser
import Glibc
import Logging
import Runner
import Sandbox
import ServiceLifecycle
import SystemPackage

/// `syft-sandbox-run daemon --syftbox DIR --email OWNER`: the owner's job
/// queue, every job sandboxed. SIGTERM or SIGINT: stop taking jobs, stop
/// the running ones (their state says so), exit 0.
struct DaemonCommand: AsyncParsableCommand, ExecutableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run a SyftBox data owner's job queue, every job in the sandbox.",
        discussion: """
        Watches SYFTBOX/OWNER/app_data/job/inbox, receives and validates new jobs (state.yaml pending, \
        or rejected with the reason), approves them by --approval-rules, runs approved jobs and writes \
        stdout.txt, stderr.txt, returncode.txt and outputs/ into the review folder, as syft-job's runner does.
        """)

    @Option(help: "The SyftBox folder (holds the datasites).")
    var syftbox: String

    @Option(help: "The data owner's email (the datasite whose jobs run here).")
    var email: String

    @Option(name: .customLong("state-dir"), help: "The daemon's own folder (default: SYFTBOX/OWNER/app_data/syft-sandbox-run).")
    var stateDir: String?

    @Option(name: .customLong("approval-rules"), help: "Approval rules (YAML; default: the built-in policies/approval.yaml, which approves nothing).")
    var approvalRules: String?

    @Option(help: "Jobs running at once (default: the number of cores).")
    var concurrency: Int?

    @Flag(name: .customLong("rerun-interrupted"), help: "Run again the jobs a restart interrupted (default: mark them failed).")
    var rerunInterrupted = false

    @Flag(name: .customLong("share-outputs"), help: "Let each submitter read their job's outputs once it ran (as syft-job's share_outputs_with_submitter).")
    var shareOutputs = false

    @Flag(name: .customLong("share-logs"), help: "Let each submitter read their job's stdout, stderr and return code once it ran.")
    var shareLogs = false

    @Option(name: .customLong("keep-history"), help: "Days of run history to keep (default: all).")
    var keepHistory: Int?

    @Option(help: "Wall-clock limit per job in seconds (default: $SYFT_DEFAULT_JOB_TIMEOUT_SECONDS, else 600).")
    var timeout: Double?

    @Option(help: "Network of the jobs: none (default), loopback, or host.")
    var net: NetworkPolicy = .none

    @Option(help: "Memory of each job (default 2G).")
    var memory: String?

    @Option(help: "Host uid and gid the jobs' root maps to when run as root (default 100000).")
    var uid: UInt32?

    @Option(help: ArgumentHelp("Serve the HTTP API and the dashboard on HOST:PORT (or PORT, on loopback).",
                               valueName: "HOST:PORT"))
    var http: String?

    @Option(name: .customLong("max-upload"), help: "The largest job upload taken by POST /jobs (default 100M).")
    var maxUpload: String?

    func validate() throws {
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let keepHistory, keepHistory < 1 { throw ValidationError("--keep-history takes a positive number of days") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if let memory, ByteSize.parse(memory) ?? 0 == 0 { throw ValidationError("'\(memory)' is not a positive size") }
        if uid == 0 { throw ValidationError("--uid 0 would run jobs as the host's root") }
        if let http, APIServerOptions.parse(http) == nil {
            throw ValidationError("--http takes HOST:PORT, [IPV6]:PORT or PORT, not '\(http)'")
        }
        if let maxUpload, ByteSize.parse(maxUpload) ?? 0 == 0 { throw ValidationError("'\(maxUpload)' is not a positive size") }
    }

    func run() async throws { try await execute() }

    func execute() async throws {
        var logger = Logger(label: "syft-sandbox-run.daemon")
        logger.logLevel = getenv("SYFT_SANDBOX_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .info
        do {
            let root = try canonical(syftbox)
            let layout = try SyftBoxLayout(root: root, owner: email)
            var options = DaemonOptions(layout: layout,
                                        stateDirectory: stateDir.map { FilePath($0) } ?? DaemonOptions.defaultStateDirectory(for: layout),
                                        seccomp: try BuiltinPolicies.seccompProgram(), skeleton: BuiltinPolicies.skeleton)
            options.rules = try loadRules()
            if let concurrency { options.concurrency = concurrency }
            options.rerunInterrupted = rerunInterrupted
            options.shareOutputs = shareOutputs
            options.shareLogs = shareLogs
            options.keepHistory = keepHistory.map { .seconds(Int64($0) * 86_400) }
            if let timeout { options.limits.wallTime = .milliseconds(Int64((timeout * 1000).rounded(.up))) }
            if let bytes = memory.flatMap(ByteSize.parse) { options.limits.memoryBytes = bytes }
            options.network = net
            if let uid { options.identity = .automatic(rootMapsTo: uid) }
            var services: [any Service] = []
            if let http, let (host, port) = APIServerOptions.parse(http) {
                let service = JobQueueService(options: options, logger: logger, liveLogs: LiveLogs())
                var api = APIServerOptions(host: host, port: port)
                if let bytes = maxUpload.flatMap(ByteSize.parse) { api.maxUploadBytes = Int(clamping: bytes) }
                if !api.isLoopback {
                    logger.warning("""
                        the HTTP API listens beyond loopback: changes, logs and artifacts need the owner's token, \
                        the job list does not; put TLS in front of it
                        """)
                }
                services = [service, APIServer(service: service, options: api, version: SyftSandboxRun.version,
                                               logger: logger)]
            } else {
                services = [JobQueueService(options: options, logger: logger)]
            }
            let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                          gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch let error as SandboxError {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }

    private func loadRules() throws -> ApprovalRules {
        if let approvalRules {
            let path = try canonical(approvalRules)
            let bytes: [UInt8]
            do {
                let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
                defer { try? fd.close() }
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
                bytes = Array(buffer[..<count])
            } catch let error as Errno {
                throw SandboxError(.invalidApprovalRules, "cannot read the approval rules", path: path.string, errno: error)
            }
            return try ApprovalRules.parse(String(decoding: bytes, as: UTF8.self), source: path.string)
        }
        let text = String(decoding: BuiltinPolicies.file("policies/approval.yaml") ?? [], as: UTF8.self)
        return try ApprovalRules.parse(text, source: "built-in policies/approval.yaml")
    }

    private func canonical(_ path: String) throws -> FilePath {
        guard let resolved = realpath(path, nil) else {
            throw SandboxError(.invalidInput, "cannot resolve", path: path, errno: Errno(rawValue: errno))
        }
        defer { free(resolved) }
        return FilePath(String(cString: resolved))
    }
}
