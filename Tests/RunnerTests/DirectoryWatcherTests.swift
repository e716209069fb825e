import Foundation
import Runner
import SystemPackage
import Testing

@Suite struct DirectoryWatcherTests {
    /// Collects events until `predicate` holds or `timeout` passes (the
    /// bound is loose: a loaded machine delivers late, and it costs nothing
    /// when the events come).
    func wait(_ watcher: DirectoryWatcher, timeout: Duration = .seconds(30),
              until predicate: @escaping @Sendable ([DirectoryWatcher.Event]) -> Bool) async -> [DirectoryWatcher.Event] {
        await withTaskGroup(of: [DirectoryWatcher.Event]?.self) { group in
            group.addTask {
                var seen: [DirectoryWatcher.Event] = []
                for await event in watcher.events {
                    seen.append(event)
                    if predicate(seen) { return seen }
                }
                return seen
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            watcher.stop()
            return first ?? []
        }
    }

    func temporaryTree() throws -> String {
        let root = NSTemporaryDirectory() + "syft-watch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/inbox", withIntermediateDirectories: true)
        return root
    }

    @Test func newDirectoriesAreWatchedDownToTheDepth() async throws {
        let root = try temporaryTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let watcher = try DirectoryWatcher(roots: [FilePath(root + "/inbox")], maxDepth: 3)
        // ds/v1/job appear at once (as a sync engine would write them). Once
        // job/ is reported (so watched): folders deeper than the depth, with
        // a file, then run.sh, whose event comes after any of theirs would.
        let job = root + "/inbox/ds@x.org/v1/job-1"
        try FileManager.default.createDirectory(atPath: job, withIntermediateDirectories: true)
        let events = await wait(watcher) { seen in
            if seen.last == .changed(directory: FilePath(job), name: nil) {
                try? FileManager.default.createDirectory(atPath: job + "/code/deep", withIntermediateDirectories: true)
                try? "x".write(toFile: job + "/code/deep/f", atomically: false, encoding: .utf8)
                try? "echo hi\n".write(toFile: job + "/run.sh", atomically: false, encoding: .utf8)
            }
            return seen.contains(.changed(directory: FilePath(job), name: "run.sh"))
        }
        #expect(events.contains(.changed(directory: FilePath(job), name: "run.sh")), "\(events)")
        // job/code (depth 4) itself is not watched: no event comes from within it.
        #expect(!events.contains { if case let .changed(directory, _) = $0 { directory.string.hasPrefix(job + "/code") } else { false } },
                "\(events)")
    }

    /// (How fast is the daemon benchmark's business: under a loaded test
    /// run, the consumer's scheduling dominates any bound set here.)
    @Test func aStateFileWriteInAJobFolderIsReported() async throws {
        let root = try temporaryTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/inbox/ds/v1/job", withIntermediateDirectories: true)
        let watcher = try DirectoryWatcher(roots: [FilePath(root + "/inbox")], maxDepth: 3)
        try await Task.sleep(for: .milliseconds(50))
        try "status: approved\n".write(toFile: root + "/inbox/ds/v1/job/state.yaml", atomically: true, encoding: .utf8)
        let events = await wait(watcher) { seen in
            seen.contains { if case let .changed(_, name) = $0 { name == "state.yaml" } else { false } }
        }
        #expect(events.contains { if case let .changed(directory, name) = $0 {
            directory.string == root + "/inbox/ds/v1/job" && name == "state.yaml"
        } else { false } }, "\(events)")
    }

    @Test func symlinkedDirectoriesAreNotFollowed() async throws {
        let root = try temporaryTree()
        let outside = NSTemporaryDirectory() + "syft-watch-outside-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: outside)
        }
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/inbox/link", withDestinationPath: outside)
        let watcher = try DirectoryWatcher(roots: [FilePath(root + "/inbox")], maxDepth: 3)
        #expect(watcher.watchCount == 1, "the symlinked folder was watched")
        try "x".write(toFile: outside + "/f", atomically: false, encoding: .utf8)
        try "y".write(toFile: root + "/inbox/marker", atomically: false, encoding: .utf8)
        let events = await wait(watcher) { seen in
            seen.contains { if case let .changed(_, name) = $0 { name == "marker" } else { false } }
        }
        #expect(!events.contains { if case let .changed(directory, _) = $0 { directory.string == outside } else { false } })
    }
}
