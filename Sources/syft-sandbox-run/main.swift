import ArgumentParser
import CSandbox
import Glibc
import Logging
import Sandbox

/// `syft-sandbox-run <jobdir>` runs one job; subcommands come later
/// (`daemon`, `jobs`). Exit statuses follow the CLI contract: the job's own,
/// 124 on timeout, 125 when the sandbox could not be set up or the input is
/// bad (a usage error included), 128+N when the job was killed by signal N.
struct SyftSandboxRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syft-sandbox-run",
        abstract: "Run untrusted job folders in a Linux namespace sandbox.",
        version: SyftSandboxRun.version,
        subcommands: [RunCommand.self, DaemonCommand.self, JobsCommand.self],
        defaultSubcommand: RunCommand.self)

    static let version = "0.1.0"

    /// First arguments that are not a one-shot run's: subcommands, help, version.
    /// (An array: a Set's generic instantiation costs a conformance scan at launch.)
    static let reservedFirstArguments: [String] = [
        "run", "daemon", "jobs", "help", "-h", "--help", "--version", "--generate-completion-script",
        "--experimental-dump-help",
    ]
}

/// A subcommand main() runs. (Calling `run()` on the parsed command picks
/// ArgumentParser's synchronous default, which only prints help.)
protocol ExecutableCommand {
    func execute() async throws
}

enum ExitStatus {
    static let setupFailed: Int32 = 125
}

/// The one-shot form (`syft-sandbox-run [options] <jobdir>`, the CI path,
/// where start-up time counts) is read by `OneShotArguments.fastParse`;
/// anything else, and any line it is not sure of, goes through
/// ArgumentParser (its help, subcommands and error messages).
func oneShotCommand(_ arguments: [String]) -> OneShotArguments? {
    guard let first = arguments.first, !SyftSandboxRun.reservedFirstArguments.contains(first) else { return nil }
    return OneShotArguments.fastParse(arguments)
}

/// The command line, run to its exit status. `oneShot`: the one-shot form,
/// already parsed, whose sandbox is `sandbox`, already starting.
func main(_ arguments: [String], oneShot: OneShotArguments?, sandbox: StartedSandbox?) async -> Int32 {
    do {
        if let command = oneShot {
            try await command.execute(sandbox: sandbox)
        } else {
            var command = try SyftSandboxRun.parseAsRoot(arguments)
            if let executable = command as? ExecutableCommand {
                try await executable.execute()
            } else {
                try command.run()
            }
        }
        return 0
    } catch let exit as ExitCode {
        return exit.rawValue
    } catch {
        // Help and --version are clean exits; every other parse error is bad input.
        let code = SyftSandboxRun.exitCode(for: error)
        if code == .success {
            SyftSandboxRun.exit(withError: error)
        }
        writeStandardError(SyftSandboxRun.fullMessage(for: error) + "\n")
        return ExitStatus.setupFailed
    }
}

// Not an async main: its dispatch_main() ends the main thread with
// pthread_exit(), and unwinding that thread in this static executable first
// sorts every frame description of the binary (~30 ms of a one-shot run).
// The work runs on the concurrency runtime's threads and ends the process
// (csb_exit_process: the caller's wait returns before the kernel has freed
// the process's memory); this thread only waits.
let arguments = Array(CommandLine.arguments.dropFirst())
// A one-shot run's PID 1 goes into its namespaces from here on, on a thread
// of its own, while the rest of the run (options, folders) is prepared.
let oneShot = oneShotCommand(arguments)
let sandbox = oneShot.map { Sandbox.start(network: $0.net) }
// The one-shot form makes its one logger with its handler (RunCommand):
// the global bootstrap instantiates swift-log's generic boxes, ~0.1 ms of
// CPU a run, which the two CPUs of a CI machine share with PID 1's setup.
// Every other command bootstraps it (the daemon's libraries log through it).
if oneShot == nil { LoggingSystem.bootstrap { label in CLILogHandler(label: label) } }
Task.detached { [arguments, oneShot, sandbox] in
    let status = await main(arguments, oneShot: oneShot, sandbox: sandbox)
    csb_exit_process(status)
}
// This thread takes the termination signals (SignalForwarder, the daemon's
// graceful shutdown), even when the caller started the process with them
// blocked (a runtime's worker thread spawning it, say).
var termination = sigset_t()
sigemptyset(&termination)
for signal in SignalForwarder.terminationSignals { sigaddset(&termination, signal) }
pthread_sigmask(SIG_UNBLOCK, &termination, nil)
while true { pause() }
