import Glibc

/// Runs blocking work (poll loops, the few milliseconds of clone and
/// setup) on a thread of its own, off Swift's cooperative pool.
enum DedicatedThread {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let work = Work { continuation.resume(returning: body()) }
            let argument = Unmanaged.passRetained(work).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
                work.body()
                return nil
            }, argument)
            if rc == 0 {
                pthread_detach(thread)
            } else {
                // No thread to be had: run here rather than fail.
                Unmanaged<Work>.fromOpaque(argument).takeRetainedValue().body()
            }
        }
    }
}
