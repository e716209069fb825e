import Foundation
@testable import Runner
import Sandbox
import Testing

@Suite struct LiveLogTests {
    /// Waits until `count` followers park (up to 30 s: the tasks start
    /// late on a loaded machine).
    static func waitFor(_ count: Int, in log: LiveLog) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while log.waitingFollowers < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Everything a follower reads, from position 0 to the end.
    static func follow(_ log: LiveLog) async -> ([UInt8], LiveLog.Ending) {
        var bytes: [UInt8] = []
        var position = 0
        while true {
            let (chunks, ending) = log.read(from: position)
            for chunk in chunks { bytes += [chunk.channel == .stdout ? 0x6F : 0x65] + chunk.bytes }
            position += chunks.count
            if let ending { return (bytes, ending) }
            if chunks.isEmpty { await log.waitForChunk(at: position) }
        }
    }

    @Test func aLateFollowerGetsEverythingInOrderThenTheEnd() async {
        let log = LiveLog(jobID: .random())
        log.append(.stdout, Array("one\n".utf8))
        log.append(.stderr, Array("two\n".utf8))
        let early = Task { await Self.follow(log) }
        try? await Task.sleep(for: .milliseconds(20))
        log.append(.stdout, Array("three\n".utf8))
        log.finish(LiveLog.Ending(status: "succeeded", exitCode: 0, returnCode: 0, limitHit: "none"))
        // Appending after the end changes nothing.
        log.append(.stdout, Array("late\n".utf8))
        let late = await Self.follow(log)
        let expected = Array("oone\netwo\nothree\n".utf8)
        #expect(late.0 == expected)
        #expect(late.1.status == "succeeded")
        #expect(await early.value.0 == expected)
    }

    @Test func followersWaitWithoutPollingAndWakeOnEachChunk() async throws {
        let log = LiveLog(jobID: .random())
        let followers = (0..<100).map { _ in Task { await Self.follow(log) } }
        // All of them park, none spins.
        try await Self.waitFor(100, in: log)
        #expect(log.waitingFollowers == 100)
        var expected: [UInt8] = []
        for index in 0..<50 {
            let chunk = Array("line \(index)\n".utf8)
            log.append(index % 3 == 0 ? .stderr : .stdout, chunk)
            expected += [index % 3 == 0 ? 0x65 : 0x6F] + chunk
        }
        log.finish(LiveLog.Ending(status: "failed", exitCode: 1))
        for follower in followers {
            let (bytes, ending) = await follower.value
            #expect(bytes == expected)
            #expect(ending.exitCode == 1)
        }
        #expect(log.waitingFollowers == 0)
    }

    @Test func aCancelledFollowerStopsWaiting() async throws {
        let log = LiveLog(jobID: .random())
        let waiter = Task { await log.waitForChunk(at: 0) }
        try await Self.waitFor(1, in: log)
        waiter.cancel()
        await waiter.value
        #expect(log.waitingFollowers == 0)
    }

    @Test func aSnapshotSplitsTheStreams() {
        let log = LiveLog(jobID: .random())
        log.append(.stdout, Array("a".utf8))
        log.append(.stderr, Array("b".utf8))
        log.append(.stdout, Array("c".utf8))
        let snapshot = log.snapshot()
        #expect(snapshot.stdout == Array("ac".utf8) && snapshot.stderr == Array("b".utf8) && snapshot.chunks == 3)
    }

    @Test func theRegistryKeepsOneLogPerJobAndForgetsEndedOnes() async throws {
        let logs = LiveLogs(retention: .milliseconds(10))
        let job = JobID.random()
        let first = logs.open(job)
        #expect(logs.log(of: job) === first)
        let second = logs.open(job)
        #expect(logs.log(of: job) === second)
        second.finish(LiveLog.Ending(status: "succeeded"))
        try await Task.sleep(for: .milliseconds(30))
        _ = logs.open(JobID.random()) // sweeps ended logs past their retention
        #expect(logs.log(of: job) == nil)
    }

    @Test func utf8SplitAcrossChunksIsDecodedWhole() {
        var decoder = UTF8Carry()
        let text = Array("héllo ✓ 🎉".utf8)
        var decoded = ""
        for index in text.indices { decoded += decoder.decode(text[index...index], final: index == text.count - 1) }
        #expect(decoded == "héllo ✓ 🎉")
        var invalid = UTF8Carry()
        #expect(invalid.decode([0x61, 0xFF, 0x62][...], final: true) == "a\u{FFFD}b")
    }
}
