import Glibc
import Sandbox

/// The one-shot CLI's termination signals go to the job, not to the CLI:
/// a CI runner cancelling a step (SIGTERM) or a user's Ctrl-C lets the job
/// end its own way while the CLI still writes complete results. A second
/// SIGINT or SIGTERM kills the sandbox.
///
/// A handler, not a blocked mask and sigwait: the concurrency runtime's
/// threads set their own masks, so a blocked signal could still land on
/// one and take the default action. The handler runs on whichever thread
/// gets the signal (main.swift keeps them unblocked on the main thread)
/// and does one async-signal-safe write.
enum SignalForwarder {
    /// The signals forwarded, which the main thread always takes.
    static let terminationSignals = [SIGTERM, SIGINT, SIGHUP]

    /// The control's request pipe, as a plain descriptor: the handler
    /// touches no Swift object.
    nonisolated(unsafe) private static var requests: Int32 = -1
    nonisolated(unsafe) private static var received: Int32 = 0

    /// `control` must outlive the process's signal handling (the CLI keeps it).
    static func forward(to control: SandboxControl) {
        requests = control.requestDescriptor
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            SignalForwarder.received += 1
            var byte = UInt8(truncatingIfNeeded: SignalForwarder.received > 1 && signal != SIGHUP ? SIGKILL : signal)
            _ = write(SignalForwarder.requests, &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for signal in terminationSignals { sigaction(signal, &action, nil) }
    }
}
