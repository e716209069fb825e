import CSandbox
import Glibc
import SystemPackage

/// Runs blocking work (poll loops, the few milliseconds of clone and
/// setup) on a thread of its own, off Swift's cooperative pool.
enum DedicatedThread {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new detached thread named "sandbox" (in ps, perf
    /// and /proc/PID/task) and returns at once; the errno when no thread
    /// could be made (then `body` does not run).
    static func start(_ body: @escaping @Sendable () -> Void) -> Errno? {
        let argument = Unmanaged.passRetained(Work(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            csb_name_thread("sandbox")
            let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
            work.body()
            return nil
        }, argument)
        guard rc == 0 else {
            Unmanaged<Work>.fromOpaque(argument).release()
            return Errno(rawValue: rc)
        }
        pthread_detach(thread)
        return nil
    }
}
