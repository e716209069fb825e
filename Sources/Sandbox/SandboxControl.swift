import CSandbox
import Glibc
import SystemPackage

/// Signals a sandbox while `Sandbox.run` waits for it, from any thread.
///
/// A signal sent before the sandbox has started is delivered once it has:
/// requests queue in a pipe the supervisor's poll loop reads. SIGTERM,
/// SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 reach the job through the
/// sandbox's PID 1; SIGKILL ends the whole sandbox.
public final class SandboxControl: Sendable {
    let readEnd: Int32
    private let writeEnd: Int32

    public init() throws(SandboxError) {
        var ends: [Int32] = [-1, -1]
        let rc = csb_pipe(&ends, O_CLOEXEC | O_NONBLOCK)
        guard rc == 0 else {
            throw SandboxError(.setupFailed, "create the sandbox control pipe", errno: Errno(rawValue: rc))
        }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    /// The request pipe's write end, for a signal handler: one byte, the
    /// signal's number, written with write(2), is a request like `send`.
    public var requestDescriptor: Int32 { writeEnd }

    /// Asks for `signal` to be sent; one write(2), safe from any thread.
    public func send(_ signal: Int32) {
        var byte = UInt8(truncatingIfNeeded: signal)
        _ = write(writeEnd, &byte, 1)
    }

    /// The signals queued since the last call (supervisor side).
    func drain() -> [Int32] {
        var bytes = [UInt8](repeating: 0, count: 64)
        var signals: [Int32] = []
        while true {
            let n = read(readEnd, &bytes, bytes.count)
            if n <= 0 { return signals }
            signals += bytes[..<n].map { Int32($0) }
        }
    }
}
