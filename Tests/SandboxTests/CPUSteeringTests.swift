import CSandbox
import Foundation
@testable import Sandbox
import Testing

/// csb_cpus_steer_away / csb_cpus_steered_back (cpus.c): the thread a
/// waker is about to wake is let run anywhere but on the waker's CPU, and
/// takes its own mask back once it runs.
@Suite struct CPUSteeringTests {
    /// The CPUs a thread may use, from its status's Cpus_allowed_list
    /// ("0-1", "0,2-3"). `tid` nil: the calling thread.
    static func allowed(_ tid: Int32? = nil) -> Set<Int> {
        let path = tid.map { "/proc/self/task/\($0)/status" } ?? "/proc/thread-self/status"
        let status = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
              let list = line.split(separator: "\t").last else { return [] }
        var cpus = Set<Int>()
        for range in list.split(separator: ",") {
            let bounds = range.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            if let first = bounds.first { cpus.formUnion(first...(bounds.last ?? first)) }
        }
        return cpus
    }

    /// What the two threads saw.
    struct Seen: Sendable {
        var original: Set<Int> = []
        var wakersCPUs: Set<Int> = []
        var held = false
        var steered: Set<Int> = []
        var restored: Set<Int> = []
    }

    /// A waiter on a thread of its own, and a waker held to one CPU (the
    /// sandbox's thread's way to start: DedicatedThread), so the CPU the
    /// steer sees is known.
    static func steerOnce() async -> Seen {
        await withCheckedContinuation { (continuation: CheckedContinuation<Seen, Never>) in
            let ready = DispatchSemaphore(value: 0)
            let wake = DispatchSemaphore(value: 0)
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var seen = Seen()
            nonisolated(unsafe) var waiter: Int32 = 0
            nonisolated(unsafe) var saved = csb_cpu_mask()
            nonisolated(unsafe) var wakersMask = csb_cpu_mask()
            Thread {
                waiter = csb_thread_id()
                seen.original = allowed()
                ready.signal()
                wake.wait()
                _ = csb_cpus_steered_back(&saved)
                seen.restored = allowed()
                done.signal()
            }.start()
            ready.wait()
            _ = DedicatedThread.start(heldToThisCPU: &wakersMask) {
                seen.wakersCPUs = allowed()
                _ = csb_cpus_steer_away(waiter, &saved)
                seen.held = saved.held
                seen.steered = allowed(waiter)
                wake.signal()
                done.wait()
                continuation.resume(returning: seen)
            }
        }
    }

    @Test func theWokenThreadAvoidsTheWakersCPUAndThenTakesItsMaskBack() async throws {
        try #require(Self.allowed().count >= 2, "needs two CPUs")
        let seen = await Self.steerOnce()
        try #require(seen.wakersCPUs.count == 1, "the waker was not held to one CPU: \(seen.wakersCPUs)")
        #expect(seen.held)
        #expect(seen.steered == seen.original.subtracting(seen.wakersCPUs))
        #expect(seen.restored == seen.original)
    }
}
