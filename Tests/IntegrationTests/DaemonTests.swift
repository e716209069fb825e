import Foundation
import Runner
import SystemPackage
import Testing

/// The daemon against a SyftBox folder laid out as syft-job lays it out:
/// receipt, review, approval (manual and by rule), runs, tampering, restarts.
@Suite struct DaemonTests {
    final class Fixture {
        let root: URL
        let owner = "do@example.com"
        let submitter = "ds@example.com"
        var daemon: Process?
        var log: URL { root.appendingPathComponent("daemon.log") }

        init() throws {
            root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("syft-daemon-\(UUID().uuidString)")
            let site = root.appendingPathComponent(owner)
            for folder in ["app_data/job/inbox", "public", "private/syft_datasets/v1/census", "private/syft_datasets/v1/other"] {
                try FileManager.default.createDirectory(at: site.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            try "public\n".write(to: site.appendingPathComponent("public/readme.txt"), atomically: true, encoding: .utf8)
            try "census,1\n".write(to: site.appendingPathComponent("private/syft_datasets/v1/census/data.csv"),
                                   atomically: true, encoding: .utf8)
            try "other,2\n".write(to: site.appendingPathComponent("private/syft_datasets/v1/other/data.csv"),
                                  atomically: true, encoding: .utf8)
        }

        deinit {
            // A test that ended early; the usual end is `await stop()`.
            if let daemon, daemon.isRunning {
                kill(daemon.processIdentifier, SIGTERM)
                daemon.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: root)
        }

        var inbox: URL { root.appendingPathComponent("\(owner)/app_data/job/inbox/\(submitter)/v1") }
        func review(_ job: String) -> URL { root.appendingPathComponent("\(owner)/app_data/job/review/\(submitter)/v1/\(job)") }

        /// A submission as syft-job's submit_bash_job writes it.
        func submit(_ job: String, script: String, datasets: [String] = [], extraFile: Bool = false) throws {
            let folder = inbox.appendingPathComponent(job)
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("code"), withIntermediateDirectories: true)
            try "#!/bin/bash\ncd code && bash script.sh\n".write(to: folder.appendingPathComponent("run.sh"),
                                                                 atomically: true, encoding: .utf8)
            try script.write(to: folder.appendingPathComponent("code/script.sh"), atomically: true, encoding: .utf8)
            let requested = datasets.isEmpty ? "datasets: null\n" : "datasets:\n  \(owner):\n" + datasets.map { "  - \($0)\n" }.joined()
            try """
            canonical_name: JobSubmissionMetadata
            code_path: null
            \(requested)dependencies: []
            entrypoint: null
            files:
            - script.sh
            headers:
              project: study-42
            is_folder_submission: false
            job_type: local
            name: \(job)
            submitted_at: '2026-11-25T06:00:00.000000Z'
            type: bash
            version: '1'

            """.write(to: folder.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
            if extraFile { try "x".write(to: folder.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8) }
        }

        func start(_ arguments: [String] = []) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestSupport.binary)
            process.arguments = ["daemon", "--syftbox", root.path, "--email", owner, "--concurrency", "2"] + arguments
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            daemon = process
        }

        func stop(signal: Int32 = SIGTERM) async {
            guard let daemon, daemon.isRunning else { return }
            kill(daemon.processIdentifier, signal)
            await TestSupport.waitForExit(daemon)
        }

        func state(_ job: String) -> String {
            (try? String(contentsOf: review(job).appendingPathComponent("state.yaml"), encoding: .utf8)) ?? ""
        }

        /// Waits until the job's state.yaml says `status: <status>`.
        func wait(_ job: String, for status: String, seconds: Double = 30) async throws -> Bool {
            try await TestSupport.waitUntil(seconds) { state(job).contains("\nstatus: \(status)\n") }
        }

        /// What the owner does with the client's approve(): status and the approval fields.
        func approve(_ job: String) throws {
            let file = review(job).appendingPathComponent("state.yaml")
            let text = state(job)
                .replacingOccurrences(of: "status: pending", with: "status: approved")
                .replacingOccurrences(of: "approved_by: null", with: "approved_by: \(owner)")
                .replacingOccurrences(of: "approval_method: null", with: "approval_method: manual")
                .replacingOccurrences(of: "approved_at: null", with: "approved_at: '2026-11-25T06:30:00.000001Z'")
            try text.write(to: file, atomically: true, encoding: .utf8)
        }

        func result(_ job: String, _ name: String) -> String? {
            try? String(contentsOf: review(job).appendingPathComponent(name), encoding: .utf8)
        }
    }

    @Test func aJobIsReceivedApprovedRunAndSeesOnlyWhatItAskedFor() async throws {
        let box = try Fixture()
        try box.submit("job-1", script: """
        echo "email=$SYFTBOX_EMAIL requester=$SYFT_REQUESTER folder=$SYFTBOX_FOLDER"
        find "$SYFTBOX_FOLDER" -type f | sort
        mkdir -p outputs && cp "$SYFTBOX_FOLDER/do@example.com/private/syft_datasets/v1/census/data.csv" outputs/
        echo "to stderr" >&2
        exit 3
        """, datasets: ["census", "missing"])
        try box.start()
        #expect(try await box.wait("job-1", for: "pending"), "\(box.state("job-1"))")
        #expect(box.result("job-1", "stdout.txt") == nil, "a pending job must not run")
        let approved = ContinuousClock.now
        try box.approve("job-1")
        #expect(try await box.wait("job-1", for: "failed"), "\(box.state("job-1"))")
        let elapsed = approved.duration(to: .now)
        #expect(box.state("job-1").contains("return_code: 3"))
        #expect(box.state("job-1").contains("completed_at: '20"))
        #expect(box.result("job-1", "returncode.txt") == "3")
        #expect(box.result("job-1", "stderr.txt") == "to stderr\n")
        #expect(box.result("job-1", "stdout.txt") == """
        email=do@example.com requester=ds@example.com folder=/syftbox
        /syftbox/do@example.com/private/syft_datasets/v1/census/data.csv
        /syftbox/do@example.com/public/readme.txt

        """)
        #expect(box.result("job-1", "outputs/data.csv") == "census,1\n")
        #expect(elapsed < .seconds(5))
        // The inbox is never modified.
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.inbox.appendingPathComponent("job-1").path).sorted()
            == ["code", "config.yaml", "run.sh"])
        await box.stop()
        #expect(box.daemon?.terminationStatus == 0)
    }

    @Test func anInvalidSubmissionIsRejectedWithTheReason() async throws {
        let box = try Fixture()
        try box.submit("job-bad", script: "echo hi", extraFile: true)
        try box.start()
        #expect(try await box.wait("job-bad", for: "rejected"), "\(box.state("job-bad"))")
        #expect(box.state("job-bad").contains("notes.txt"), "\(box.state("job-bad"))")
        #expect(box.state("job-bad").contains("rejected_by: do@example.com"))
    }

    @Test func codeChangedAfterReceiptIsRefused() async throws {
        let box = try Fixture()
        try box.submit("job-tamper", script: "echo reviewed")
        try box.start()
        #expect(try await box.wait("job-tamper", for: "pending"))
        try "echo swapped-in-after-review\n".write(to: box.inbox.appendingPathComponent("job-tamper/code/script.sh"),
                                                  atomically: true, encoding: .utf8)
        try box.approve("job-tamper")
        #expect(try await box.wait("job-tamper", for: "failed"), "\(box.state("job-tamper"))")
        #expect(box.state("job-tamper").contains("the submission changed after it was received"))
        #expect(box.result("job-tamper", "stdout.txt") == nil, "the swapped code ran")
    }

    @Test func aRuleApprovesAutomatically() async throws {
        let box = try Fixture()
        let rules = box.root.appendingPathComponent("rules.yaml")
        try "rules:\n  - {name: lab, requesters: [\"*@example.com\"], headers: {project: study-42}}\n"
            .write(to: rules, atomically: true, encoding: .utf8)
        try box.submit("job-auto", script: "echo auto")
        try box.start(["--approval-rules", rules.path])
        #expect(try await box.wait("job-auto", for: "done"), "\(box.state("job-auto"))")
        #expect(box.state("job-auto").contains("approval_method: auto"))
        #expect(box.state("job-auto").contains("approved_by: do@example.com"))
        #expect(box.result("job-auto", "stdout.txt") == "auto\n")
        // The run is in the history (SQLite, WAL: readable while the daemon runs).
        let history = try HistoryStore(stateDirectory: FilePath(box.root.appendingPathComponent(
            "\(box.owner)/app_data/syft-sandbox-run").path))
        var runs: [RunRecord] = []
        _ = try await TestSupport.waitUntil {
            runs = (try? history.runs(query: "job-auto")) ?? []
            return !runs.isEmpty
        }
        #expect(runs.count == 1)
        #expect(runs.first?.status == "succeeded" && runs.first?.returnCode == 0 && runs.first?.submitter == box.submitter)
        #expect(runs.first?.record?.contains("\"limit_hit\" : \"none\"") == true)
    }

    @Test func aSecondDaemonRefusesAndARestartFailsTheInterruptedJob() async throws {
        let box = try Fixture()
        try box.submit("job-long", script: "sleep 30")
        try box.start()
        #expect(try await box.wait("job-long", for: "pending"))
        let second = await TestSupport.cli(["daemon", "--syftbox", box.root.path, "--email", box.owner])
        #expect(second.status == 1)
        #expect(second.stderr.contains("another daemon"), "\(second.stderr)")
        try box.approve("job-long")
        #expect(try await box.wait("job-long", for: "running"))
        await box.stop(signal: SIGKILL)
        try box.start()
        #expect(try await box.wait("job-long", for: "failed"), "\(box.state("job-long"))")
        #expect(box.state("job-long").contains("the runner restarted"))
    }

    /// The owner's CLI: approve from the command line, then cancel the
    /// running job: its sandbox dies, the owner's state stands, the daemon
    /// goes on with the next job.
    @Test func theOwnersCLIApprovesAndCancels() async throws {
        let box = try Fixture()
        let marker = "\(Int.random(in: 100_000...999_999))"
        try box.submit("job-cancel", script: "exec sleep 30.\(marker)")
        try box.start()
        #expect(try await box.wait("job-cancel", for: "pending"))
        let folder = ["--syftbox", box.root.path, "--email", box.owner]
        let listed = await TestSupport.cli(["jobs", "list"] + folder)
        #expect(listed.stdout.contains("ds@example.com/v1/job-cancel  pending"), "\(listed.stdout)")
        #expect(await TestSupport.cli(["jobs", "approve", "job-cancel"] + folder).status == 0)
        #expect(box.state("job-cancel").contains("approval_method: manual"))
        #expect(try await box.wait("job-cancel", for: "running"))
        #expect(try await TestSupport.waitUntil(2) { !TestSupport.processes(matching: "sleep\u{0}30.\(marker)").isEmpty })
        let cancel = await TestSupport.cli(["jobs", "cancel", "ds@example.com/v1/job-cancel"] + folder)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(try await TestSupport.waitUntil(2) { TestSupport.processes(matching: "sleep\u{0}30.\(marker)").isEmpty },
                "the cancelled job's sandbox is still running")
        try await Task.sleep(for: .milliseconds(200))
        #expect(box.state("job-cancel").contains("review_reason: cancelled by the owner"), "\(box.state("job-cancel"))")
        #expect(box.state("job-cancel").contains("status: failed"))
        // Approving it again is refused: it is not pending.
        #expect(await TestSupport.cli(["jobs", "approve", "job-cancel"] + folder).status == 1)
        try box.submit("job-next", script: "echo next")
        #expect(try await box.wait("job-next", for: "pending"))
        #expect(await TestSupport.cli(["jobs", "approve", "job-next"] + folder).status == 0)
        #expect(try await box.wait("job-next", for: "done"))
        let logs = await TestSupport.cli(["jobs", "logs", "job-next"] + folder)
        #expect(logs.stdout == "==> stdout.txt <==\nnext\n==> stderr.txt <==\n")
    }
}
