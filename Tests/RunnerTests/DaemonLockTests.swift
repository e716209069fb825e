import Foundation
import Runner
import Sandbox
import SystemPackage
import Testing

@Suite struct DaemonLockTests {
    @Test func aSecondHolderIsRefusedWithThePidUntilTheFirstLetsGo() throws {
        let path = FilePath(NSTemporaryDirectory() + "syft-lock-\(UUID().uuidString)")
        defer { unlink(path.string) }
        var first: DaemonLock? = try DaemonLock(path)
        do {
            _ = try DaemonLock(path)
            Issue.record("a second lock was granted")
        } catch {
            #expect(error.code == .alreadyRunning)
            #expect(error.description.contains("pid \(getpid())"), "\(error)")
        }
        _ = first
        first = nil
        #expect(throws: Never.self) { _ = try DaemonLock(path) }
    }

    /// A lock held by a process that was killed is free at once.
    @Test func aKilledHolderLeavesNoStaleLock() async throws {
        let path = NSTemporaryDirectory() + "syft-lock-\(UUID().uuidString)"
        defer { unlink(path) }
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
                            + "print('held', flush=True)\ntime.sleep(30)", path]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        var held = false
        for _ in 0..<100 where !held {
            try await Task.sleep(for: .milliseconds(20))
            held = (try? DaemonLock(FilePath(path))) == nil
        }
        #expect(held, "the other process never held the lock")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(throws: Never.self) { _ = try DaemonLock(FilePath(path)) }
    }
}
