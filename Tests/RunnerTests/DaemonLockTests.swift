import Foundation
import Runner
import Sandbox
import SystemPackage
import Testing

@Suite struct DaemonLockTests {
    @Test func aSecondHolderIsRefusedWithThePidUntilTheFirstLetsGo() async throws {
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
        // Free once no process holds the lock's open file: a child that
        // another test forks meanwhile holds a copy until its exec (the
        // descriptor is close-on-exec), so it is polled for, briefly.
        var again: DaemonLock?
        for _ in 0..<100 where again == nil {
            again = try? DaemonLock(path)
            if again == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(again != nil, "the lock stayed held after its holder let go")
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
