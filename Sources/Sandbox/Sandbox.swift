/// Runs programs inside a sandbox built on kernel namespaces.
///
/// ```swift
/// let result = try await Sandbox.run(configuration, output: OutputCapture(stdout: out, stderr: err))
/// ```
public enum Sandbox {
    /// Starts the sandbox, captures its output and waits for it to end.
    ///
    /// Returns when PID 1 of the sandbox has exited (and with it every
    /// process of the job) and both output pipes are drained. Cancelling
    /// the calling task kills the sandbox; the result then says `cancelled`.
    /// Throws `SandboxError` with code `.setupFailed` when the sandbox could
    /// not be set up (nothing of the job ran). `control` signals the job
    /// while it runs.
    public static func run(_ configuration: SandboxConfiguration, output: OutputCapture,
                           control: SandboxControl? = nil) async throws -> SandboxResult {
        let supervisor = try Supervisor(configuration: configuration, output: output, control: control)
        let outcome = await withTaskCancellationHandler {
            await DedicatedThread.run { supervisor.run() }
        } onCancel: {
            supervisor.cancel()
        }
        return try outcome.get()
    }
}
