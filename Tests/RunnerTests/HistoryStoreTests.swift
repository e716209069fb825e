import Foundation
import Runner
import SystemPackage
import Testing

@Suite struct HistoryStoreTests {
    func store() throws -> (HistoryStore, String) {
        let folder = NSTemporaryDirectory() + "syft-history-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return (try HistoryStore(stateDirectory: FilePath(folder)), folder)
    }

    func run(_ id: String, _ name: String, _ status: String, finishedDaysAgo days: Double = 0,
             submitter: String = "ds@x.org") -> RunRecord {
        let finished = Date(timeIntervalSinceNow: -days * 86_400)
        return RunRecord(id: id, job: "\(submitter)/v1/\(name)", submitter: submitter, name: name, status: status,
                         startedAt: finished.addingTimeInterval(-1), finishedAt: finished, wallMs: 1000,
                         returnCode: status == "succeeded" ? 0 : 1)
    }

    @Test func runsAreListedNewestFirstFilteredSearchedAndPaged() throws {
        let (history, folder) = try store()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try history.insert(run("1", "census-stats", "succeeded", finishedDaysAgo: 3))
        try history.insert(run("2", "census-plot", "failed", finishedDaysAgo: 2))
        try history.insert(run("3", "weather", "succeeded", finishedDaysAgo: 1, submitter: "bob@y.org"))
        #expect(try history.count() == 3)
        #expect(try history.runs().map(\.id) == ["3", "2", "1"])
        #expect(try history.runs(status: "succeeded").map(\.id) == ["3", "1"])
        #expect(try history.runs(query: "census").map(\.id) == ["2", "1"])
        #expect(try history.runs(query: "bob@").map(\.id) == ["3"])
        #expect(try history.runs(limit: 1, offset: 1).map(\.id) == ["2"])
        // Everything survives a reopen.
        let reopened = try #require(try HistoryStore(stateDirectory: FilePath(folder)).runs(status: "failed").first)
        #expect(reopened.id == "2" && reopened.name == "census-plot" && reopened.job == "ds@x.org/v1/census-plot")
        #expect(reopened.returnCode == 1 && reopened.wallMs == 1000 && reopened.submitter == "ds@x.org")
        #expect(abs(reopened.finishedAt.timeIntervalSinceNow + 2 * 86_400) < 60)
    }

    @Test func pruningRemovesOnlyOldRuns() throws {
        let (history, folder) = try store()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try history.insert(run("old", "a", "succeeded", finishedDaysAgo: 40))
        try history.insert(run("new", "b", "succeeded", finishedDaysAgo: 1))
        #expect(try history.prune(finishedBefore: Date(timeIntervalSinceNow: -30 * 86_400)) == 1)
        #expect(try history.runs().map(\.id) == ["new"])
    }

    @Test func aRunIdIsRecordedOnce() throws {
        let (history, folder) = try store()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try history.insert(run("same", "a", "succeeded"))
        #expect(throws: (any Error).self) { try history.insert(run("same", "a", "failed")) }
    }
}
