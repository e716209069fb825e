import Foundation
import Runner
import SystemPackage
import Testing

/// The daemon's own life around running jobs: stopped by SIGTERM or SIGINT
/// mid-job, killed with SIGKILL and restarted with --rerun-interrupted, a
/// rule's caps, and bad input among good jobs.
@Suite struct DaemonLifecycleTests {
    typealias Fixture = DaemonTests.Fixture

    static func marker() -> String { "\(Int.random(in: 100_000...999_999))" }

    @Test(arguments: [SIGTERM, SIGINT])
    func stoppingTheDaemonStopsItsJobsMarksThemAndExitsZero(signal: Int32) async throws {
        let box = try Fixture()
        let marker = Self.marker()
        try box.submit("job-stop", script: "echo started; exec sleep 60.\(marker)")
        try box.start()
        #expect(try await box.wait("job-stop", for: "pending"))
        try box.approve("job-stop")
        #expect(try await box.wait("job-stop", for: "running"))
        #expect(try await TestSupport.waitUntil { !TestSupport.processes(matching: "sleep\u{0}60.\(marker)").isEmpty })
        let stopped = ContinuousClock.now
        await box.stop(signal: signal)
        #expect(box.daemon?.terminationStatus == 0)
        #expect(stopped.duration(to: .now) < .seconds(10))
        #expect(TestSupport.processes(matching: "sleep\u{0}60.\(marker)").isEmpty, "the job outlived the daemon")
        #expect(box.state("job-stop").contains("status: failed"), "\(box.state("job-stop"))")
        #expect(box.state("job-stop").contains("the runner stopped while the job ran"), "\(box.state("job-stop"))")
    }

    @Test func aKilledDaemonsJobRunsAgainWithRerunInterruptedAndNothingHalfWrittenStays() async throws {
        let box = try Fixture()
        let marker = Self.marker()
        // Killed during its first run with the daemon; run to the end after
        // the restart. 10 s, so that a test starved for seconds on a loaded
        // machine still sees the first run (with 3 s, CI once saw none).
        try box.submit("job-again", script: "echo run; exec sleep 10.\(marker)")
        try box.start()
        #expect(try await box.wait("job-again", for: "pending"))
        try box.approve("job-again")
        #expect(try await box.wait("job-again", for: "running"))
        #expect(try await TestSupport.waitUntil { !TestSupport.processes(matching: "sleep\u{0}10.\(marker)").isEmpty })
        await box.stop(signal: SIGKILL)
        // The sandbox dies with the daemon (its PID 1 has PDEATHSIG).
        #expect(try await TestSupport.waitUntil { TestSupport.processes(matching: "sleep\u{0}10.\(marker)").isEmpty },
                "the sandbox outlived its daemon")
        let review = box.review("job-again")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: review.path).filter { $0.contains(".partial-") }
        #expect(!leftovers.isEmpty, "the killed run left no partial files: the sweep below proves nothing")
        try box.start(["--rerun-interrupted"])
        #expect(try await box.wait("job-again", for: "done", seconds: 40), "\(box.state("job-again"))")
        #expect(box.result("job-again", "stdout.txt") == "run\n")
        let after = try FileManager.default.contentsOfDirectory(atPath: review.path)
        #expect(after.filter { $0.contains(".partial-") || $0.contains(".tmp-") }.isEmpty, "\(after)")
        await box.stop()
    }

    @Test func aRulesTimeoutCapIsWhatTheJobGets() async throws {
        let box = try Fixture()
        let rules = box.root.appendingPathComponent("rules.yaml")
        try "rules:\n  - {name: quick, requesters: [\"*@example.com\"], max_timeout_seconds: 1}\n"
            .write(to: rules, atomically: true, encoding: .utf8)
        try box.submit("job-capped", script: "sleep 20")
        try box.start(["--approval-rules", rules.path, "--timeout", "60"])
        #expect(try await box.wait("job-capped", for: "failed"), "\(box.state("job-capped"))")
        // The run's own clock, as the daemon logs it (the daemon's start-up
        // and a loaded host's scheduling are not the point): the rule's 1 s
        // cap, not the job's 20 s sleep nor the daemon's 60 s timeout.
        var log = ""
        _ = try await TestSupport.waitUntil {
            log = (try? String(contentsOf: box.log, encoding: .utf8)) ?? ""
            return log.contains("failed job=")
        }
        let finished = log.split(separator: "\n").first { $0.contains("failed job=") && $0.contains("job-capped") } ?? ""
        let wallMS = finished.split(separator: " ").first { $0.hasPrefix("wall_ms=") }.flatMap { Int($0.dropFirst(8)) }
        #expect(finished.contains("limit_hit=timeout"), "\(log)")
        #expect(wallMS.map { $0 >= 1000 && $0 < 5000 } == true, "\(log)")
        #expect(box.state("job-capped").contains("return_code: -1"))
        #expect(box.result("job-capped", "stdout.txt")?.contains("--- PROCESS TIMED OUT ---") == true)
        await box.stop()
    }

    @Test func badSubmissionsAreRejectedAndTheDaemonGoesOn() async throws {
        let box = try Fixture()
        try box.start()
        // A malformed config.yaml.
        try box.submit("job-yaml", script: "echo hi")
        try "name: [unclosed\n".write(to: box.inbox.appendingPathComponent("job-yaml/config.yaml"),
                                      atomically: true, encoding: .utf8)
        // A symbolic link where a job folder belongs (to a folder outside the inbox).
        let elsewhere = box.root.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere.appendingPathComponent("code"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: box.inbox.appendingPathComponent("job-link"), withDestinationURL: elsewhere)
        // A huge run.sh.
        try box.submit("job-huge", script: "echo hi")
        try Data(count: 64 << 20).write(to: box.inbox.appendingPathComponent("job-huge/run.sh"))
        // And a good one after them.
        try box.submit("job-good", script: "echo good")
        #expect(try await box.wait("job-yaml", for: "rejected"), "\(box.state("job-yaml"))")
        #expect(box.state("job-yaml").contains("config.yaml"), "\(box.state("job-yaml"))")
        #expect(try await box.wait("job-huge", for: "rejected"), "\(box.state("job-huge"))")
        #expect(try await box.wait("job-link", for: "rejected"), "\(box.state("job-link"))")
        #expect(box.state("job-link").contains("symbolic link"), "\(box.state("job-link"))")
        #expect(try await box.wait("job-good", for: "pending"))
        try box.approve("job-good")
        #expect(try await box.wait("job-good", for: "done"))
        await box.stop()
        #expect(box.daemon?.terminationStatus == 0)
    }
}
