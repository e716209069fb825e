import Foundation
import Testing

/// Every limit: trip it, check the exit status, `limit_hit`, and that
/// nothing is left (no process, no cgroup, nothing on the host's disk).
///
/// Each job starts `sleep 999.MARKER &` (or carries the marker in its own
/// command line) so a process that outlived it can be found on the host;
/// `TestSupport.expectNothingLeft` also looks for the run's cgroup in every
/// hierarchy the runner uses (memory, pids, freezer, cpuacct; or v2).
@Suite struct LimitsTests {
    static var cgroupsAvailable: Bool { FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") }

    static func enforcement(_ record: [String: Any]) -> String? {
        (record["limits"] as? [String: Any])?["enforcement"] as? String
    }

    // MARK: - Memory and processes

    @Test func memoryLimitEndsTheJobAsAnOOMKill() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        python3 -c 'x = b"x" * (256 << 20); print(len(x))'
        """)
        let run = await job.run(["--memory", "64M"])
        let record = try #require(job.resultJSON())
        let limits = record["limits"] as? [String: Any]
        #expect(limits?["memory_bytes"] as? Int == 64 << 20)
        if Self.enforcement(record)?.hasPrefix("cgroup") == true {
            #expect(run.status == 137, "\(run.stderr)")
            #expect(record["limit_hit"] as? String == "memory")
            #expect(record["oom_killed"] as? Bool == true)
            #expect(record["status"] as? String == "failed")
            // It tried (more than half the limit), and the host never gave
            // it more than the limit: the group's peak stays under it.
            let peak = record["memory_peak_bytes"] as? Int ?? 0
            #expect(peak > 32 << 20, "peak \(peak)")
            #expect(peak <= (64 << 20) + (1 << 20), "the job used \(peak) bytes with a 64 MiB limit")
        } else {
            // RLIMIT_AS: the allocation fails inside the job instead.
            #expect(run.status == 1)
            #expect(job.result("stderr.txt")?.contains("MemoryError") == true)
        }
        TestSupport.expectNothingLeft(run, marker: marker)
    }

    @Test func aForkBombEndsWithinTheTimeoutAndLeavesNothing() async throws {
        let marker = TestSupport.marker()
        // Every process of the bomb is a fork of `bash -c '… # MARKER'`:
        // they all carry the marker in their command line.
        let job = try JobFixture("""
        sleep 999.\(marker) &
        sleep 2 & sleeper=$!
        bash -c 'bomb() { bomb | bomb & }; bomb # \(marker)' 2>/dev/null
        wait $sleeper
        exit 1
        """)
        let run = await job.run(["--pids", "64", "--timeout", "30"])
        #expect(run.seconds < 20, "the fork bomb ran \(run.seconds) s")
        #expect(run.status == 1, "\(run.stderr)")
        let record = try #require(job.resultJSON())
        #expect(record["exit_code"] as? Int == 1)
        #expect((record["limits"] as? [String: Any])?["processes"] as? Int == 64)
        if Self.enforcement(record)?.hasPrefix("cgroup") == true {
            #expect(record["limit_hit"] as? String == "pids", "\(record)")
            #expect(record["status"] as? String == "failed")
        }
        TestSupport.expectNothingLeft(run, marker: marker)
    }

    // MARK: - CPU time

    @Test func cpuTimeLimitStopsASpinningJob() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        while :; do :; done
        """)
        let run = await job.run(["--cpu-time", "1", "--timeout", "20"])
        // The cgroup's counter: the supervisor kills the sandbox at the
        // budget. RLIMIT_CPU only: the spinning shell dies of SIGXCPU.
        #expect(run.status == (CgroupProbe.accountsCPU ? 137 : 128 + SIGXCPU), "\(run.stderr)")
        // Well before the 20 s timeout, on a loaded host too: the budget, not the clock, stopped it.
        #expect(run.seconds < 15, "ran \(run.seconds) s")
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "cpu_time")
        #expect(record["status"] as? String == "killed")
        #expect((record["limits"] as? [String: Any])?["cpu_time_seconds"] as? Double == 1)
        // The group counts the runtime; RLIMIT_CPU alone fires on tick
        // samples, which drift from the runtime rusage reports under load.
        let cpu = (record["cpu_user_ms"] as? Int ?? 0) + (record["cpu_sys_ms"] as? Int ?? 0)
        #expect(cpu >= (CgroupProbe.accountsCPU ? 1000 : 700) && cpu < 2500, "cpu \(cpu) ms")
        TestSupport.expectNothingLeft(run, marker: marker)
    }

    /// bash run.sh → python spins: the child, not the job's main process,
    /// uses the budget. The whole sandbox ends at the budget; the shell
    /// never gets to go on.
    @Test(.enabled(if: CgroupProbe.accountsCPU, "needs a cgroup that accounts CPU time"))
    func cpuTimeLimitStopsTheJobWhenAChildSpins() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        python3 -c 'while True: pass'
        echo "the shell went on after its child"
        exit 0
        """)
        let run = await job.run(["--cpu-time", "1", "--timeout", "20"])
        #expect(run.status == 137, "\(run.stderr)")
        #expect(run.seconds < 15, "ran \(run.seconds) s for 1 s of CPU")
        #expect(job.result("stdout.txt") == "")
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "cpu_time", "\(record)")
        #expect(record["status"] as? String == "killed")
        // Counted by the group: the python process, killed at teardown and
        // never reaped by the job's own processes, is in the total.
        let cpu = (record["cpu_user_ms"] as? Int ?? 0) + (record["cpu_sys_ms"] as? Int ?? 0)
        #expect(cpu >= 1000 && cpu < 1500, "cpu \(cpu) ms")
        TestSupport.expectNothingLeft(run, marker: marker)
    }

    /// Two children of 0.7 s of CPU each: no process reaches 1 s (RLIMIT_CPU
    /// would let them finish), the job does. The same job with a 2 s budget
    /// finishes, and reports the 1.4 s it used.
    @Test(.enabled(if: CgroupProbe.accountsCPU, "needs a cgroup that accounts CPU time"))
    func cpuTimeIsCountedForTheWholeJob() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        spin() {
            python3 -c 'import time
        start = time.process_time()
        while time.process_time() - start < 0.7: pass'
            echo "child $1 done"
        }
        spin 1 & first=$!; spin 2 & second=$!
        wait $first $second
        echo "all done"
        """)
        let limited = await job.run(["--cpu-time", "1", "--timeout", "20"])
        #expect(limited.status == 137, "\(limited.stderr)")
        #expect(limited.seconds < 15, "ran \(limited.seconds) s")
        #expect(job.result("stdout.txt")?.contains("all done") == false)
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "cpu_time", "\(record)")
        let cpu = (record["cpu_user_ms"] as? Int ?? 0) + (record["cpu_sys_ms"] as? Int ?? 0)
        #expect(cpu >= 1000 && cpu < 1400, "cpu \(cpu) ms")
        TestSupport.expectNothingLeft(limited, marker: marker)

        let roomy = await job.run(["--cpu-time", "2", "--timeout", "20"])
        #expect(roomy.status == 0, "\(roomy.stderr)")
        #expect(job.result("stdout.txt")?.hasSuffix("all done\n") == true)
        let full = try #require(job.resultJSON())
        #expect(full["limit_hit"] as? String == "none")
        let used = (full["cpu_user_ms"] as? Int ?? 0) + (full["cpu_sys_ms"] as? Int ?? 0)
        #expect(used >= 1400 && used < 2000, "the job used \(used) ms of CPU")
        TestSupport.expectNothingLeft(roomy, marker: marker)
    }

    // MARK: - Filesystems

    @Test func theOutputsFolderIsSizeBoundedAndNotOnTheHostDisk() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        if ! head -c 3M /dev/zero > /job/outputs/big 2>/tmp/err; then echo outputs-full; fi
        grep -c 'No space left on device' /tmp/err
        stat -f -c %T /job/outputs
        echo small 2>/dev/null > /job/code/outputs/small.txt || echo full-here-too
        exit 3
        """)
        let run = await job.run(["--max-outputs", "1M"])
        #expect(run.status == 3, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        #expect(stdout == "outputs-full\n1\ntmpfs\nfull-here-too\n", "\(stdout)")
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "outputs_size")
        #expect(record["exit_code"] as? Int == 3)
        #expect((record["warnings"] as? [String] ?? []).contains { $0.contains("outputs folder filled up") })
        let size = (try? FileManager.default.attributesOfItem(atPath: job.results.path + "/outputs/big"))?[.size] as? Int
        #expect((size ?? 0) <= 1 << 20)
        // What reached the host's disk: at most the 1 MiB that fit, plus logs.
        let disk = TestSupport.diskUsage(job.results.path)
        #expect(disk <= (1 << 20) + (64 << 10), "the results take \(disk) bytes")
        TestSupport.expectNothingLeft(run, marker: marker)
    }

    @Test func tmpIsSizeBounded() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        head -c 3M /dev/zero > /tmp/big || echo tmp-full
        stat -f -c %T /tmp
        stat -c %s /tmp/big
        """)
        let run = await job.run(["--tmp-size", "1M"])
        // The job sees ENOSPC and goes on; a full /tmp is not a limit that
        // ends the job, so limit_hit stays none.
        #expect(run.status == 0, "\(run.stderr)")
        let lines = (job.result("stdout.txt") ?? "").split(separator: "\n")
        #expect(lines.first == "tmp-full")
        #expect(lines.dropFirst().first == "tmpfs")
        #expect(Int(lines.last ?? "") ?? .max <= 1 << 20)
        #expect(job.result("stderr.txt")?.contains("No space left on device") == true)
        let record = try #require(job.resultJSON())
        #expect(record["limit_hit"] as? String == "none")
        #expect(record["status"] as? String == "succeeded")
        #expect(TestSupport.diskUsage(job.results.path) <= 64 << 10)
        TestSupport.expectNothingLeft(run, marker: marker)
    }

    // MARK: - Per-process rlimits

    /// More files than --open-files: the open fails with EMFILE at exactly
    /// the limit (descriptors are handed out lowest first), and the job
    /// says so. With the limit raised the same job gets further.
    @Test func openFilesAreLimited() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        echo "soft=$(ulimit -Sn) hard=$(ulimit -Hn)"
        ulimit -n 100000 2>/dev/null && echo raised || echo cannot-raise
        python3 -c 'import errno, os, sys
        fds = []
        try:
            while True:
                fds.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as e:
            print("highest=%d error=%s" % (max(fds), errno.errorcode[e.errno]))
            sys.exit(e.errno)'
        """)
        let run = await job.run(["--open-files", "32"])
        #expect(run.status == EMFILE, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "soft=32 hard=32\ncannot-raise\nhighest=31 error=EMFILE\n")
        let record = try #require(job.resultJSON())
        #expect(record["exit_code"] as? Int == Int(EMFILE))
        #expect(record["limit_hit"] as? String == "none")
        #expect((record["limits"] as? [String: Any])?["open_files"] as? Int == 32)
        TestSupport.expectNothingLeft(run, marker: marker)

        let roomy = await job.run(["--open-files", "64"])
        #expect(roomy.status == EMFILE)
        #expect(job.result("stdout.txt") == "soft=64 hard=64\ncannot-raise\nhighest=63 error=EMFILE\n")
        TestSupport.expectNothingLeft(roomy, marker: marker)
    }

    @Test func fileSizeIsLimited() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        (head -c 3M /dev/zero > /tmp/f) 2>/dev/null; echo "status=$?"
        stat -c %s /tmp/f
        """)
        let run = await job.run(["--file-size", "1M"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "status=\(128 + SIGXFSZ)\n\(1 << 20)\n")
        #expect(job.resultJSON()?["limit_hit"] as? String == "none")
        TestSupport.expectNothingLeft(run, marker: marker)
    }

    /// Processes that crash with SIGSEGV and SIGABRT in every folder the
    /// job can write leave no core, the kernel says it wrote none (no
    /// WCOREDUMP), and the job cannot raise RLIMIT_CORE from 0. On a host
    /// whose core_pattern writes a file, the same crash outside the sandbox
    /// with the limit raised does leave one: the check can fail.
    @Test func coreDumpsAreOff() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("""
        sleep 999.\(marker) &
        echo "core soft=$(ulimit -Sc) hard=$(ulimit -Hc)"
        ulimit -c unlimited 2>/dev/null && echo raised || echo cannot-raise
        for dir in /tmp /job/outputs /job/code/outputs; do
            cd "$dir" && python3 -c 'import os, signal, sys
        for sig in (signal.SIGSEGV, signal.SIGABRT):
            pid = os.fork()
            if pid == 0:
                signal.signal(sig, signal.SIG_DFL)
                os.kill(os.getpid(), sig)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            print(os.getcwd(), os.WTERMSIG(status), os.WCOREDUMP(status))'
        done
        cd /
        find /tmp /job -name 'core*' 2>/dev/null
        sh -c 'kill -SEGV $$'
        """)
        let run = await job.run()
        // The job's last command crashed: its status is the shell's.
        #expect(run.status == 128 + SIGSEGV, "\(run.stderr)")
        let expected = ["core soft=0 hard=0", "cannot-raise"] + ["/tmp", "/job/outputs", "/job/code/outputs"].flatMap {
            ["\($0) \(SIGSEGV) False", "\($0) \(SIGABRT) False"]
        }
        #expect(job.result("stdout.txt") == expected.joined(separator: "\n") + "\n")
        #expect(job.result("stderr.txt")?.contains("core dumped") == false)
        let record = try #require(job.resultJSON())
        #expect(record["signal"] as? Int == nil)
        #expect(record["exit_code"] as? Int == 128 + Int(SIGSEGV))
        #expect(record["limit_hit"] as? String == "none")
        let collected = (try? FileManager.default.subpathsOfDirectory(atPath: job.results.path)) ?? []
        #expect(!collected.contains { ($0 as NSString).lastPathComponent.hasPrefix("core") }, "\(collected)")
        TestSupport.expectNothingLeft(run, marker: marker)

        // The control: where core_pattern names a plain file, a crash with
        // a raised limit writes it in the crashing process's folder.
        let pattern = (try? String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8)) ?? "|"
        if pattern.hasPrefix("core") {
            let folder = NSTemporaryDirectory() + "syft-core-\(marker)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            await TestSupport.run(["/bin/bash", "-c", "ulimit -c unlimited; cd '\(folder)' && sh -c 'kill -SEGV $$'"])
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            #expect(names.contains { $0.hasPrefix("core") }, "the control crash left no core: \(names)")
        }
    }

    // MARK: - Bookkeeping

    @Test func aNormalRunRemovesItsCgroupAndReportsUsage() async throws {
        let marker = TestSupport.marker()
        let job = try JobFixture("sleep 999.\(marker) & head -c 20M /dev/zero | tail -c 1 >/dev/null; echo ok")
        let run = await job.run()
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
        #expect(record["limit_hit"] as? String == "none")
        TestSupport.expectNothingLeft(run, marker: marker)
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
        let started = try await TestSupport.waitUntil {
            !TestSupport.processes(matching: "sleep\u{0}30.\(marker)").isEmpty
        }
        #expect(started, "the job never started")
        kill(process.processIdentifier, SIGKILL)
        await TestSupport.waitForExit(process)
        // PID 1 watches its parent: the job ends at once, well before its 30 s.
        let gone = try await TestSupport.waitUntil(10) {
            TestSupport.processes(matching: "sleep\u{0}30.\(marker)").isEmpty
        }
        #expect(gone, "the job outlived its runner")
        let next = try JobFixture("true")
        let nextRun = await next.run()
        #expect(nextRun.status == 0)
        // The killed runner's groups, in every hierarchy, were swept.
        let swept = CgroupProbe.jobGroups { $0 == process.processIdentifier }
        #expect(swept.isEmpty, "\(swept)")
        TestSupport.expectNothingLeft(nextRun, marker: nil)
    }
}
