import CSandbox
import Glibc

/// Runs blocking work (poll loops, the few milliseconds of clone and
/// setup) on a thread of its own, off Swift's cooperative pool.
enum DedicatedThread {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new detached thread named "sandbox" (in ps, perf
    /// and /proc/PID/task) and returns at once (no thread to be had: runs
    /// it here first).
    static func start(_ body: @escaping @Sendable () -> Void) {
        let argument = Unmanaged.passRetained(Work(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            csb_name_thread("sandbox")
            let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
            work.body()
            return nil
        }, argument)
        if rc == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<Work>.fromOpaque(argument).takeRetainedValue().body()
        }
    }

    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            start { continuation.resume(returning: body()) }
        }
    }
}
