import Foundation
import Runner
import SystemPackage
import Testing

@Suite struct DirectoryWatcherTests {
    /// Collects events until `predicate` holds or `timeout` passes.
    func wait(_ watcher: DirectoryWatcher, timeout: Duration = .seconds(3),
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
        // ds/v1/job appear at once (as a sync engine would write them), then a file in job/.
        try FileManager.default.createDirectory(atPath: root + "/inbox/ds@x.org/v1/job-1", withIntermediateDirectories: true)
        try await Task.sleep(for: .milliseconds(100))
        try "echo hi\n".write(toFile: root + "/inbox/ds@x.org/v1/job-1/run.sh", atomically: false, encoding: .utf8)
        // Deeper than the depth: not watched, not reported.
        try FileManager.default.createDirectory(atPath: root + "/inbox/ds@x.org/v1/job-1/code/deep",
                                                withIntermediateDirectories: true)
        try "x".write(toFile: root + "/inbox/ds@x.org/v1/job-1/code/deep/f", atomically: false, encoding: .utf8)
        let events = await wait(watcher) { seen in
            seen.contains(.changed(directory: FilePath(root + "/inbox/ds@x.org/v1/job-1"), name: "run.sh"))
        }
        #expect(events.contains(.changed(directory: FilePath(root + "/inbox/ds@x.org/v1/job-1"), name: "run.sh")),
                "\(events)")
        #expect(!events.contains { if case let .changed(directory, _) = $0 { directory.string.hasSuffix("/code/deep") } else { false } })
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
