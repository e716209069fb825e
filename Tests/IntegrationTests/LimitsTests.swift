import Foundation
import Testing

/// Every limit: trip it, check the exit status, `limit_hit`, and that
/// nothing is left (no process, no cgroup, nothing on the host's disk).
@Suite struct LimitsTests {
    /// The job groups this runner's cgroups hold now, by hierarchy.
    static func leftoverCgroups() -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return [] }
        var leftovers: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, ["memory", "pids"].contains(String(fields[1])) else { continue }
            let parent = "/sys/fs/cgroup/\(fields[1])\(fields[2] == "/" ? "" : fields[2])/syft-sandbox-run"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix("job-") {
                // job-PID-RANDOM: a group of a CLI that is gone is a leak.
                let pid = Int32(name.split(separator: "-")[1]) ?? 0
                if kill(pid, 0) != 0 { leftovers.append(parent + "/" + name) }
            }
        }
        return leftovers
    }

    static var cgroupsAvailable: Bool { FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") }

    @Test func memoryLimitEndsTheJobAsAnOOMKill() throws {
        let job = try JobFixture("python3 -c 'x = b\"x\" * (256 << 20); print(len(x))'")
        let run = job.run(["--memory", "64M"])
        let record = try #require(job.resultJSON())
        let limits = record["limits"] as? [String: Any]
        #expect(limits?["memory_bytes"] as? Int == 64 << 20)
        if (limits?["enforcement"] as? String)?.hasPrefix("cgroup") == true {
            #expect(run.status == 137, "\(run.stderr)")
            #expect(record["limit_hit"] as? String == "memory")
            #expect(record["oom_killed"] as? Bool == true)
            #expect(record["status"] as? String == "failed")
            #expect((record["memory_peak_bytes"] as? Int ?? 0) > 32 << 20)
        } else {
            // RLIMIT_AS: the allocation fails inside the job instead.
            #expect(run.status == 1)
            #expect(job.result("stderr.txt")?.contains("MemoryError") == true)
        }
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }

    @Test func aForkBombEndsWithinTheTimeoutAndLeavesNothing() throws {
        let job = try JobFixture("""
        sleep 2 & sleeper=$!
        bomb() { bomb | bomb & }
        bomb 2>/dev/null
        wait $sleeper
        exit 1
        """)
        let run = job.run(["--pids", "64", "--timeout", "30"])
        #expect(run.seconds < 20, "the fork bomb ran \(run.seconds) s")
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "pids", "\(record)")
        #expect((record["limits"] as? [String: Any])?["processes"] as? Int == 64)
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }

    @Test func cpuTimeLimitStopsASpinningJob() throws {
        let job = try JobFixture("while :; do :; done")
        let run = job.run(["--cpu-time", "1", "--timeout", "20"])
        #expect(run.status == 128 + SIGXCPU, "\(run.stderr)")
        #expect(run.seconds < 10)
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "cpu_time")
        #expect(record["status"] as? String == "killed")
        #expect((record["cpu_user_ms"] as? Int ?? 0) >= 900)
    }

    @Test func theOutputsFolderIsSizeBoundedAndNotOnTheHostDisk() throws {
        let job = try JobFixture("""
        if ! head -c 3M /dev/zero > /job/outputs/big 2>/dev/null; then echo outputs-full; fi
        stat -f -c %T /job/outputs
        echo small 2>/dev/null > /job/code/outputs/small.txt || echo full-here-too
        exit 3
        """)
        let run = job.run(["--max-outputs", "1M"])
        #expect(run.status == 3, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        #expect(stdout == "outputs-full\ntmpfs\nfull-here-too\n", "\(stdout)")
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "outputs_size")
        #expect((record["warnings"] as? [String] ?? []).contains { $0.contains("outputs folder filled up") })
        let size = (try? FileManager.default.attributesOfItem(atPath: job.results.path + "/outputs/big"))?[.size] as? Int
        #expect((size ?? 0) <= 1 << 20)
    }

    @Test func tmpIsSizeBounded() throws {
        let job = try JobFixture("head -c 3M /dev/zero > /tmp/big 2>/dev/null || echo tmp-full; stat -c %s /tmp/big")
        let run = job.run(["--tmp-size", "1M"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = (job.result("stdout.txt") ?? "").split(separator: "\n")
        #expect(lines.first == "tmp-full")
        #expect(Int(lines.last ?? "") ?? .max <= 1 << 20)
    }

    @Test func openFilesFileSizeAndCoreDumpsAreLimited() throws {
        let job = try JobFixture("""
        ulimit -n; ulimit -c
        (head -c 3M /dev/zero > /tmp/f) 2>/dev/null; echo "status=$?"
        stat -c %s /tmp/f
        """)
        let run = job.run(["--open-files", "32", "--file-size", "1M"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "32\n0\nstatus=\(128 + SIGXFSZ)\n\(1 << 20)\n")
    }

    @Test func aNormalRunRemovesItsCgroupAndReportsUsage() throws {
        let job = try JobFixture("head -c 20M /dev/zero | tail -c 1 >/dev/null; echo ok")
        let run = job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let record = try #require(job.resultJSON())
        let limits = try #require(record["limits"] as? [String: Any])
        #expect(limits["memory_bytes"] as? Int == 2 << 30)
        #expect(limits["processes"] as? Int == 512)
        #expect(limits["open_files"] as? Int == 1024)
        #expect(limits["outputs_bytes"] as? Int == 1 << 30)
        if Self.cgroupsAvailable {
            #expect((limits["enforcement"] as? String)?.hasPrefix("cgroup") == true, "\(record)")
            #expect((record["memory_peak_bytes"] as? Int ?? 0) > 0)
        }
        #expect(record["oom_killed"] as? Bool == false)
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }

    /// kill -9 of the runner mid-job: the sandbox dies with it (PID 1
    /// watches its parent), and the next run sweeps the cgroup it left.
    @Test func aRunnerKilledMidJobLeavesNoProcessAndItsCgroupIsSwept() async throws {
        let marker = "\(Int.random(in: 100_000...999_999))"
        let job = try JobFixture("exec sleep 30.\(marker)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.binary)
        process.arguments = ["--results", job.results.path, job.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var started = false
        for _ in 0..<100 where !started {
            try await Task.sleep(for: .milliseconds(50))
            started = !TestSupport.processes(matching: "sleep\u{0}30.\(marker)").isEmpty
        }
        #expect(started, "the job never started")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        var gone = false
        for _ in 0..<40 where !gone {
            try await Task.sleep(for: .milliseconds(50))
            gone = TestSupport.processes(matching: "sleep\u{0}30.\(marker)").isEmpty
        }
        #expect(gone, "the job outlived its runner")
        let next = try JobFixture("true")
        #expect(next.run().status == 0)
        #expect(Self.leftoverCgroups().isEmpty, "\(Self.leftoverCgroups())")
    }
}
