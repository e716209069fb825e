import Foundation
import Testing

/// The one-shot CLI contract: results files, bad input, artifacts.
@Suite struct CLIContractTests {
    @Test func exampleJobLeavesEveryResultFile() async throws {
        let results = NSTemporaryDirectory() + "syft-it-example-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: results) }
        let run = await TestSupport.cli(["--results", results, "--json", TestSupport.repository.path + "/examples/hello"])
        #expect(run.status == 0, "\(run.stderr)")
        for name in ["stdout.txt", "stderr.txt", "returncode.txt", "result.json", "outputs/report.json"] {
            #expect(FileManager.default.fileExists(atPath: results + "/" + name), "missing \(name)")
        }
        let stdout = try String(contentsOfFile: results + "/stdout.txt", encoding: .utf8)
        #expect(stdout.hasPrefix("hello from hello-example (job "))
        #expect(try String(contentsOfFile: results + "/stderr.txt", encoding: .utf8) == "a line on stderr\n")
        #expect(try String(contentsOfFile: results + "/returncode.txt", encoding: .utf8) == "0")
        let report = try String(contentsOfFile: results + "/outputs/report.json", encoding: .utf8)
        #expect(report.contains("\"user\": \"0\""))
        #expect(report.contains("\"host\": \"sandbox\""))
        // --json prints the same record as result.json.
        let printed = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        #expect(printed?["status"] as? String == "succeeded")
        for key in ["exit_code", "signal", "wall_ms", "cpu_user_ms", "cpu_sys_ms", "max_rss_kb", "stdout_bytes",
                    "stderr_bytes", "output_truncated", "limit_hit", "limits", "outputs", "job"] {
            #expect(printed?.keys.contains(key) == true, "no \(key) in the record")
        }
    }

    @Test func resultsDefaultToTheJobFolder() async throws {
        let job = try JobFixture("echo hi; echo out > outputs/o.txt")
        let run = await TestSupport.cli([job.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try String(contentsOfFile: job.path + "/stdout.txt", encoding: .utf8) == "hi\n")
        #expect(try String(contentsOfFile: job.path + "/outputs/o.txt", encoding: .utf8) == "out\n")
        // A second run replaces the first run's outputs.
        let again = await TestSupport.cli([job.path])
        #expect(again.status == 0)
    }

    @Test func badInputExits125WithOneLineAndWritesNothing() async throws {
        let missing = await TestSupport.cli(["/nonexistent/job-\(UUID().uuidString)"])
        #expect(missing.status == 125)
        #expect(missing.stderr.contains("job folder not found"))
        #expect(missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")

        let noScript = try JobFixture("true")
        try FileManager.default.removeItem(atPath: noScript.path + "/run.sh")
        let run = await noScript.run()
        #expect(run.status == 125)
        #expect(run.stderr.contains("no run.sh"))
        #expect(!FileManager.default.fileExists(atPath: noScript.results.path + "/result.json"))

        let symlinked = try JobFixture("true")
        try FileManager.default.removeItem(atPath: symlinked.path + "/run.sh")
        try FileManager.default.createSymbolicLink(atPath: symlinked.path + "/run.sh", withDestinationPath: "/etc/passwd")
        #expect(await symlinked.run().status == 125)

        let usage = await TestSupport.cli(["--timeout", "-3", noScript.path])
        #expect(usage.status == 125)
    }

    @Test func unwritableResultsFolderExits125AndLeavesNothing() async throws {
        let job = try JobFixture("echo hi")
        let file = job.results.path + "-is-a-file"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = await TestSupport.cli(["--results", file, job.path])
        #expect(run.status == 125)
        #expect(run.stderr.contains("results"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: job.path).sorted() == ["code", "run.sh"])
    }

    @Test func setupFailureExits125AndLeavesNothing() async throws {
        let job = try JobFixture("echo hi")
        let run = await job.run(["--rootfs", "/nonexistent-rootfs"])
        #expect(run.status == 125)
        let empty = try JobFixture("true")
        let rootless = await empty.run(["--rootfs", empty.path + "/code"]) // no /bin/bash in there
        #expect(rootless.status == 125)
        #expect(rootless.stderr.contains("execve"), "\(rootless.stderr)")
        // One line: what failed, on which path, the errno's name.
        let lines = rootless.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(rootless.stderr)")
        #expect(rootless.stderr.contains("/bin/bash") && rootless.stderr.contains("ENOENT"), "\(rootless.stderr)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: empty.results.path)) ?? [] == [])
    }

    @Test func malformedConfigIsAWarningAndDefaultsApply() async throws {
        let job = try JobFixture("echo $SYFT_JOB_NAME", config: "name: [unclosed\n  : : :")
        let run = await job.run()
        #expect(run.status == 0)
        #expect(run.stderr.contains("warning"))
        #expect(job.result("stdout.txt") == "job\n")
    }

    @Test func hostileOutputsAreCollectedSafely() async throws {
        let job = try JobFixture("""
        cd /job/outputs
        ln -s /etc/shadow shadow-link
        ln -s ../../../../../../etc/passwd escape-link
        mkfifo a-fifo
        echo fine > "$(printf 'name-\\xff\\xfe-bytes')"
        mkdir -p deep/er && echo nested > deep/er/file.txt
        echo suid > suid && chmod 4755 suid
        """)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr) \(job.result("stderr.txt") ?? "")")
        let outputs = job.results.path + "/outputs"
        let names = try FileManager.default.contentsOfDirectory(atPath: outputs)
        #expect(!names.contains("shadow-link"))
        #expect(!names.contains("escape-link"))
        #expect(!names.contains("a-fifo"))
        #expect(try String(contentsOfFile: outputs + "/deep/er/file.txt", encoding: .utf8) == "nested\n")
        // The non-UTF-8 name arrives byte for byte.
        let raw = Array("name-".utf8) + [0xff, 0xfe] + Array("-bytes".utf8)
        let fd = raw.withUnsafeBufferPointer { bytes -> Int32 in
            let path = Array((outputs + "/").utf8) + Array(bytes) + [0]
            return path.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_RDONLY) }
        }
        #expect(fd >= 0, "the non-UTF-8 name was not preserved")
        if fd >= 0 { close(fd) }
        var info = stat()
        #expect(stat(outputs + "/suid", &info) == 0)
        #expect(info.st_mode & S_ISUID == 0, "the setuid bit survived collection")
        #expect(info.st_uid == getuid(), "collected files must belong to the invoking user")
    }

    /// The CLI ends through csb_exit_process: a helper sharing its memory
    /// outlives it only until the kernel says it exited. The helper's
    /// command line is the CLI's (the same memory), so one still there
    /// seconds later, waiting out its 10 s bound, is found by the job's path.
    @Test func theExitLeavesNoProcessBehind() async throws {
        let job = try JobFixture("echo hi")
        for _ in 0..<3 {
            let run = await job.run(["--json"])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.hasPrefix("{") && run.stdout.hasSuffix("}\n"), "\(run.stdout)")
        }
        let gone = try await TestSupport.waitUntil(5) { TestSupport.processes(matching: job.path).isEmpty }
        #expect(gone, "still there: \(TestSupport.processes(matching: job.path))")
    }

    /// A rerun replaces the previous run's results; it frees them (its
    /// exit helper holds them, unlinked) only once it has exited, and then
    /// no process holds anything of the results folder.
    @Test func aRerunFreesWhatItReplacedOnceItHasExited() async throws {
        let job = try JobFixture("head -c 1M /dev/zero; echo done >&2")
        let first = await job.run([])
        #expect(first.status == 0, "\(first.stderr)")
        var before = stat()
        #expect(stat(job.results.path + "/stdout.txt", &before) == 0 && before.st_size == 1 << 20)
        let second = await job.run([])
        #expect(second.status == 0, "\(second.stderr)")
        var after = stat()
        #expect(stat(job.results.path + "/stdout.txt", &after) == 0 && after.st_ino != before.st_ino)
        let released = try await TestSupport.waitUntil(5) { TestSupport.descriptors(under: job.results.path).isEmpty }
        #expect(released, "still held: \(TestSupport.descriptors(under: job.results.path))")
        let names = try FileManager.default.contentsOfDirectory(atPath: job.results.path).sorted()
        #expect(names == ["outputs", "result.json", "returncode.txt", "stderr.txt", "stdout.txt"], "\(names)")
    }

    /// The one-shot form runs on the main thread, and its sandbox's
    /// supervision on one more: no task, so none of the concurrency
    /// runtime's threads (each one more to start and to end on the two
    /// CPUs that PID 1's setup needs).
    @Test func aOneShotRunHasTwoThreads() async throws {
        let job = try JobFixture("echo ready; sleep 30")
        let process = try await TestSupport.startCLI(job, ["--timeout", "60"])
        defer { if process.isRunning { process.terminate() } }
        let tasks = "/proc/\(process.processIdentifier)/task"
        let threads = try FileManager.default.contentsOfDirectory(atPath: tasks).map { id in
            (try? String(contentsOfFile: "\(tasks)/\(id)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        }
        #expect(threads.sorted() == ["sandbox", "syft-sandbox-ru"], "threads: \(threads)")
        kill(process.processIdentifier, SIGTERM) // forwarded to the job, which ends; the results are written
        await TestSupport.waitForExit(process)
        #expect(process.terminationStatus == 128 + SIGTERM)
    }

    /// The exit's helper (csb_exit_prepare) starts while the job runs, off
    /// the way from the job's end to the caller's wait: a child of the CLI
    /// with every signal blocked, ended once the CLI ended.
    @Test func theExitHelperWaitsAlongsideTheJobAndEndsWithTheCLI() async throws {
        func status(_ pid: Int32) -> [String: String] {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return fields
        }
        let job = try JobFixture("echo ready; sleep 30")
        let process = try await TestSupport.startCLI(job, ["--timeout", "60"])
        defer { if process.isRunning { process.terminate() } }
        let cli = process.processIdentifier
        func helpers() -> [Int32] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
                .filter { status($0)["PPid"] == "\(cli)" && status($0)["Name"] == "syft-exit" }
        }
        // Started on the CLI's main thread once the job runs, as the job prints.
        #expect(try await TestSupport.waitUntil(5) { helpers().count == 1 }, "the CLI's helpers: \(helpers())")
        let helper = try #require(helpers().first)
        let blocked = UInt64(status(helper)["SigBlk"] ?? "", radix: 16) ?? 0
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGPIPE] {
            #expect(blocked & (1 << UInt64(signal - 1)) != 0, "signal \(signal) reaches the helper: \(status(helper))")
        }
        kill(cli, SIGTERM)
        await TestSupport.waitForExit(process)
        #expect(process.terminationStatus == 128 + SIGTERM)
        // Gone, or a zombie its new parent has not reaped yet.
        let ended = try await TestSupport.waitUntil(5) { ["Z (zombie)", nil].contains(status(helper)["State"]) }
        #expect(ended, "\(status(helper))")
    }
}
