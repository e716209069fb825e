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
    /// could be made (then `body` does not run). `heldToThisCPU`: the thread
    /// runs on the calling thread's CPU only, and `body` lets it go
    /// (`csb_thread_release_cpu` with the mask written there).
    static func start(heldToThisCPU held: UnsafeMutablePointer<csb_cpu_mask>? = nil,
                      _ body: @escaping @Sendable () -> Void) -> Errno? {
        let argument = Unmanaged.passRetained(Work(body)).toOpaque()
        let entry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { raw in
            csb_name_thread("sandbox")
            let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
            work.body()
            return nil
        }
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        let rc: Int32
        if let held, csb_thread_attr_on_this_cpu(&attributes, held) == 0 {
            rc = pthread_create(&thread, &attributes, entry, argument)
            pthread_attr_destroy(&attributes)
        } else {
            rc = pthread_create(&thread, nil, entry, argument)
        }
        guard rc == 0 else {
            Unmanaged<Work>.fromOpaque(argument).release()
            return Errno(rawValue: rc)
        }
        pthread_detach(thread)
        return nil
    }
}
