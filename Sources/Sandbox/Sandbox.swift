/// Runs programs inside a sandbox built on kernel namespaces.
///
/// ```swift
/// let result = try await Sandbox.run(configuration, output: OutputCapture(stdout: out, stderr: err))
/// ```
public enum Sandbox {
    /// Starts the sandbox, captures its output and waits for it to end.
    ///
    /// Returns when every process of the job is gone (PID 1 reaped them
    /// all and reported; their cgroup is removed) and both output pipes are
    /// drained. PID 1's own exit, the kernel tearing its namespaces down,
    /// may still be under way: the sandbox's thread reaps it, and gives a
    /// pooled network namespace back, after this returned. Cancelling
    /// the calling task kills the sandbox; the result then says `cancelled`.
    /// Throws `SandboxError` with code `.setupFailed` when the sandbox could
    /// not be set up (nothing of the job ran). `control` signals the job
    /// while it runs.
    public static func run(_ configuration: SandboxConfiguration, output: OutputCapture,
                           control: SandboxControl? = nil) async throws -> SandboxResult {
        let started = start(network: configuration.network, cgroups: configuration.cgroups,
                            networkNamespaces: configuration.networkNamespaces)
        return try await started.run(configuration, output: output, control: control, untilEnded: true)
    }

    /// Starts a sandbox's PID 1 in its namespaces now, on a thread of its
    /// own, before the job's configuration is ready: the clone and the
    /// init's start (about a millisecond) overlap whatever the caller does
    /// meanwhile (the one-shot CLI reads its options and opens the results
    /// folder). `run` hands it the configuration; a started sandbox that is
    /// never run is killed when it is released.
    ///
    /// `cgroups` nil: this process's detected support (found on the
    /// sandbox's thread, not the caller's).
    public static func start(network: NetworkPolicy, cgroups: CgroupSupport? = nil,
                             networkNamespaces: NetworkNamespacePool? = nil) -> StartedSandbox {
        StartedSandbox(network: network, cgroups: cgroups, pool: networkNamespaces)
    }
}
