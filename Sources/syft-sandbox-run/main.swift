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
    // The list early.c's constructor reads too (csb_reserved_first_argument).
    guard let first = arguments.first, !csb_reserved_first_argument(first) else { return nil }
    return OneShotArguments.fastParse(arguments)
}

/// The command line (not the one-shot form), run to its exit status.
func main(_ arguments: [String]) async -> Int32 {
    do {
        var command = try SyftSandboxRun.parseAsRoot(arguments)
        if let executable = command as? ExecutableCommand {
            try await executable.execute()
        } else {
            try command.run()
        }
        return 0
    } catch {
        return exitStatus(for: error)
    }
}

/// The one-shot form, already parsed, whose sandbox is already starting,
/// run to its exit status on the calling thread.
func runOneShot(_ command: OneShotArguments, sandbox: StartedSandbox) -> Int32 {
    do {
        return try command.execute(sandbox: sandbox)
    } catch {
        return exitStatus(for: error)
    }
}

/// The exit status for what a command threw.
func exitStatus(for error: any Error) -> Int32 {
    if let exit = error as? ExitCode { return exit.rawValue }
    // Help and --version are clean exits; every other parse error is bad input.
    if SyftSandboxRun.exitCode(for: error) == .success {
        SyftSandboxRun.exit(withError: error)
    }
    writeStandardError(SyftSandboxRun.fullMessage(for: error) + "\n")
    return ExitStatus.setupFailed
}

/// This thread takes the termination signals (SignalForwarder, the daemon's
/// graceful shutdown), even when the caller started the process with them
/// blocked (a runtime's worker thread spawning it, say).
func takeTerminationSignals() {
    var termination = sigset_t()
    sigemptyset(&termination)
    for signal in SignalForwarder.terminationSignals { sigaddset(&termination, signal) }
    pthread_sigmask(SIG_UNBLOCK, &termination, nil)
}

// Not an async main: its dispatch_main() ends the main thread with
// pthread_exit(), and unwinding that thread in this static executable first
// sorts every frame description of the binary (~30 ms of a one-shot run).
// Every path ends the process with csb_exit_process (the caller's wait
// returns before the kernel has freed the process's memory).
let arguments = commandLineArguments()
if let oneShot = oneShotCommand(arguments) {
    // The one-shot form runs on this thread, and its sandbox on one of its
    // own: its PID 1 goes into its namespaces from here on, while the rest
    // of the run (options, folders) is prepared. No task: the concurrency
    // runtime's threads would be two more to start, to hand the run to and
    // back, and to end at the exit, on the two CPUs of a CI machine that
    // PID 1's setup needs. Its one logger is made with its handler
    // (RunCommand): the global bootstrap instantiates swift-log's generic
    // boxes, ~0.1 ms of CPU a run.
    let sandbox = Sandbox.start(network: oneShot.net)
    takeTerminationSignals()
    csb_exit_process(runOneShot(oneShot, sandbox: sandbox))
}
runOtherCommand(arguments)

/// Every other command: the daemon's libraries log through swift-log's
/// global factory, and the work runs on the concurrency runtime's threads;
/// this thread only waits. A function of its own, never inlined: in the
/// top-level code the optimizer hoisted the task's metadata (TaskPriority?)
/// to the start of the program, where every one-shot run paid for it.
@inline(never)
func runOtherCommand(_ arguments: [String]) -> Never {
    LoggingSystem.bootstrap { label in CLILogHandler(label: label) }
    Task.detached { [arguments] in
        csb_exit_process(await main(arguments))
    }
    takeTerminationSignals()
    while true { pause() }
}

/// The arguments after the program's name, straight from argv: not
/// through CommandLine.arguments (its one-time initializer, a mapped copy
/// of every argument, then the copy without the first), which an
/// order-alternated A/B put at about 2 % of a trivial one-shot run.
func commandLineArguments() -> [String] {
    let count = Int(CommandLine.argc)
    var arguments: [String] = []
    arguments.reserveCapacity(max(count - 1, 0))
    var index = 1
    while index < count {
        if let argument = CommandLine.unsafeArgv[index] { arguments.append(String(cString: argument)) }
        index += 1
    }
    return arguments
}
