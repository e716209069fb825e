import Foundation
import Glibc
import Runner
import Sandbox
import SystemPackage
import Testing

/// A temporary SyftBox folder (and an "outside" folder beside it) for the
/// SyftBox protocol tests; removed without following links.
final class SyftBoxScratch {
    let root: String
    var box: String { root + "/box" }
    var outside: String { root + "/outside" }
    var private_: String { root + "/private" }
    let owner = "do@example.com"
    var inbox: String { box + "/\(owner)/app_data/job/inbox" }
    var review: String { box + "/\(owner)/app_data/job/review" }

    init() throws {
        root = NSTemporaryDirectory() + "syft-syftbox-\(UUID().uuidString)"
        for path in [root, box, outside, private_] {
            try #require(mkdir(path, 0o755) == 0, "mkdir \(path)")
        }
    }

    deinit {
        if (try? ArtifactCollector.removeTree(FilePath(root))) == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    var layout: SyftBoxLayout { get throws { try SyftBoxLayout(root: FilePath(box), owner: owner) } }

    func makeDirectories(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
        try write(path, Array(text.utf8), mode: mode)
    }

    func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        try makeDirectories((path as NSString).deletingLastPathComponent)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try #require(fd >= 0, "create \(path): \(errno)")
        defer { close(fd) }
        try #require(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count)
        try #require(fchmod(fd, mode) == 0)
    }

    /// A job folder as `submit_bash_job` writes it (config.yaml from the
    /// real client), plus the permission file the owner's side may add.
    func makeSubmission(at folder: String, script: String = "echo hello\n") throws {
        try makeDirectories(folder + "/code")
        try write(folder + "/code/script.sh", script)
        try write(folder + "/run.sh", script, mode: 0o755)
        try write(folder + "/config.yaml", ClientFixtures.configV1Bash)
    }

    func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map(Array.init)
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}

/// Files written by the real client, syft-job 0.1.40, into a temporary
/// SyftBox folder: two bash jobs submitted (`submit_bash_job`), received
/// (`scan_inbox`); job-a approved (`approve()`), set running and finished
/// as its runner does (`_set_finalized_job_state`), rerun (`rerun()`),
/// finished again with -1 (a timeout); job-b rejected (`reject(reason)`);
/// a protocol-0 job written through its v0 codec, received and approved
/// (`approve(reason="looks fine", approval_method="auto")`); a job
/// accepted with `accept_by_depositing_result`; one rejected at receipt
/// for an extra file.
enum ClientFixtures {
    static let configV1Bash = "canonical_name: JobSubmissionMetadata\ncode_path: null\ndatasets: null\ndependencies: []\nentrypoint: null\nfiles:\n- script.sh\nheaders: {}\nis_folder_submission: false\njob_type: local\nname: job-a\nsubmitted_at: '2026-11-25T06:01:08.250386Z'\ntype: bash\nversion: '1'\n"
    static let configV1Python = "canonical_name: JobSubmissionMetadata\ncode_path: /tmp/sjwork/box/src\ndatasets: null\ndependencies:\n- syft==0.1.0\n- numpy\nentrypoint: main.py\nfiles:\n- main.py\n- util.py\nheaders: {}\nis_folder_submission: true\njob_type: local\nname: job-py\nsubmitted_at: '2026-11-25T05:51:17.383592Z'\ntype: python\nversion: '1'\n"
    static let configV0Bash = "code_path: null\ndatasets:\n  do@example.com:\n  - census\n  - tax\ndependencies: []\nentrypoint: null\nfiles:\n- script.sh\nheaders:\n  priority: 3\n  team: blue\nis_folder_submission: false\njob_type: local\nname: old-job\nsubmitted_at: '2026-11-25T06:01:08.278200Z'\ntype: bash\n"

    static let aPending = "approval_method: null\napproved_at: null\napproved_by: null\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.255769Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: null\nstatus: pending\nversion: '1'\n"
    static let aApproved = "approval_method: manual\napproved_at: '2026-11-25T06:01:08.261537Z'\napproved_by: do@example.com\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.255769Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: null\nstatus: approved\nversion: '1'\n"
    static let aRunning = "approval_method: manual\napproved_at: '2026-11-25T06:01:08.261537Z'\napproved_by: do@example.com\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.255769Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: null\nstatus: running\nversion: '1'\n"
    static let aDone = "approval_method: manual\napproved_at: '2026-11-25T06:01:08.261537Z'\napproved_by: do@example.com\ncanonical_name: JobState\ncompleted_at: '2026-11-25T06:01:08.266337Z'\nreceived_at: '2026-11-25T06:01:08.255769Z'\nrejected_at: null\nrejected_by: null\nreturn_code: 0\nreview_reason: null\nstatus: done\nversion: '1'\n"
    static let aRerun = "approval_method: manual\napproved_at: '2026-11-25T06:01:08.261537Z'\napproved_by: do@example.com\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.255769Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: null\nstatus: approved\nversion: '1'\n"
    static let aTimeout = "approval_method: manual\napproved_at: '2026-11-25T06:01:08.261537Z'\napproved_by: do@example.com\ncanonical_name: JobState\ncompleted_at: '2026-11-25T06:01:08.272565Z'\nreceived_at: '2026-11-25T06:01:08.255769Z'\nrejected_at: null\nrejected_by: null\nreturn_code: -1\nreview_reason: null\nstatus: failed\nversion: '1'\n"
    static let bPending = "approval_method: null\napproved_at: null\napproved_by: null\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.257567Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: null\nstatus: pending\nversion: '1'\n"
    static let bRejected = "approval_method: null\napproved_at: null\napproved_by: null\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.257567Z'\nrejected_at: '2026-11-25T06:01:08.276329Z'\nrejected_by: do@example.com\nreturn_code: null\nreview_reason: not with this data\nstatus: rejected\nversion: '1'\n"
    static let v0Pending = "approval_method: null\napproved_at: null\napproved_by: null\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.278727Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: null\nstatus: pending\n"
    static let v0Approved = "approval_method: auto\napproved_at: '2026-11-25T06:01:08.281920Z'\napproved_by: do@example.com\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.278727Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: looks fine\nstatus: approved\n"
    static let depPending = "approval_method: null\napproved_at: null\napproved_by: null\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.284446Z'\nrejected_at: null\nrejected_by: null\nreturn_code: null\nreview_reason: null\nstatus: pending\nversion: '1'\n"
    static let depDone = "approval_method: null\napproved_at: '2026-11-25T06:01:08.290099Z'\napproved_by: do@example.com\ncanonical_name: JobState\ncompleted_at: '2026-11-25T06:01:08.290099Z'\nreceived_at: '2026-11-25T06:01:08.284446Z'\nrejected_at: null\nrejected_by: null\nreturn_code: 0\nreview_reason: null\nstatus: done\nversion: '1'\n"
    static let badReason = "Expected {'config.yaml', 'run.sh', 'code'}, got {'config.yaml', 'run.sh', 'extra.txt', 'code'}"
    static let badRejected = "approval_method: null\napproved_at: null\napproved_by: null\ncanonical_name: JobState\ncompleted_at: null\nreceived_at: '2026-11-25T06:01:08.294118Z'\nrejected_at: '2026-11-25T06:01:08.294118Z'\nrejected_by: do@example.com\nreturn_code: null\nreview_reason: Expected {'config.yaml', 'run.sh', 'code'}, got {'config.yaml', 'run.sh',\n  'extra.txt', 'code'}\nstatus: rejected\nversion: '1'\n"

    static let all = [aPending, aApproved, aRunning, aDone, aRerun, aTimeout, bPending, bRejected, depPending, depDone,
                      badRejected]
    static let allV0 = [v0Pending, v0Approved]

    /// `review_reason` values and how the client's `yaml.dump` writes each
    /// (what follows "review_reason: " up to the "status" line), from a
    /// `JobState(status=REJECTED, received_at=T, rejected_by=..., rejected_at=T,
    /// review_reason=reason)`, T = 2026-11-25T05:51:17.398502Z.
    static let reasonTemplate = (
        "approval_method: null\napproved_at: null\napproved_by: null\ncanonical_name: JobState\ncompleted_at: null\n"
            + "received_at: '2026-11-25T05:51:17.398502Z'\nrejected_at: '2026-11-25T05:51:17.398502Z'\n"
            + "rejected_by: do@example.com\nreturn_code: null\nreview_reason: ",
        "\nstatus: rejected\nversion: '1'\n")
    static let reasonCases: [(reason: String, yaml: String)] = [
        ("too broad", "too broad"),
        ("", "''"),
        ("null", "'null'"),
        ("123", "'123'"),
        ("yes", "'yes'"),
        ("on", "'on'"),
        ("1e5", "1e5"),
        ("0o7", "0o7"),
        ("0x1F", "'0x1F'"),
        ("1:20", "'1:20'"),
        (".5", "'.5'"),
        ("~", "'~'"),
        ("=", "'='"),
        ("<<", "'<<'"),
        ("2026-01-02", "'2026-01-02'"),
        ("a: b", "'a: b'"),
        ("- dash", "'- dash'"),
        ("#hash", "'#hash'"),
        ("x #y", "'x #y'"),
        ("@at", "'@at'"),
        ("`tick", "'`tick'"),
        ("it's", "it's"),
        ("say \"hi\"", "say \"hi\""),
        ("trailing ", "'trailing '"),
        (" leading", "' leading'"),
        ("tab\there", "\"tab\\there\""),
        ("multi\nline", "'multi\n\n  line'"),
        ("two\n\nbreaks", "'two\n\n\n  breaks'"),
        ("caf\u{e9}", "\"caf\\xE9\""),
        ("emoji \u{1f600}", "\"emoji \\U0001F600\""),
        ("key: value and a much longer explanation that goes on and on past the eighty column limit of the emitter",
         "'key: value and a much longer explanation that goes on and on past\n  the eighty column limit of the emitter'"),
        ("a plain sentence that is long enough to need wrapping because it runs past eighty columns wide",
         "a plain sentence that is long enough to need wrapping because it runs\n  past eighty columns wide"),
    ]
}

private func text(_ state: JobState) throws -> String {
    String(decoding: try state.serialized(), as: UTF8.self)
}

private func parse(_ text: String, _ version: JobProtocol = .v1) throws -> JobState {
    try JobState.parse(Array(text.utf8), protocolVersion: version)
}

private func at(_ text: String) -> JobTimestamp { JobTimestamp(text: text) }

private let owner = "do@example.com"

@Suite struct SyftBoxProtocolTests {
    // MARK: Layout

    @Test func layoutPathsFollowTheClientForBothProtocols() throws {
        let layout = try SyftBoxLayout(root: "/sb", owner: owner)
        #expect(layout.inbox == "/sb/do@example.com/app_data/job/inbox")
        #expect(layout.review == "/sb/do@example.com/app_data/job/review")
        let v1 = InboxJob(submitter: "ds@example.com", name: "Job - 1a2b", protocolVersion: .v1)
        let v0 = InboxJob(submitter: "ds@example.com", name: "old-job", protocolVersion: .v0)
        #expect(layout.inboxFolder(of: v1) == "/sb/do@example.com/app_data/job/inbox/ds@example.com/v1/Job - 1a2b")
        #expect(layout.reviewFolder(of: v1) == "/sb/do@example.com/app_data/job/review/ds@example.com/v1/Job - 1a2b")
        #expect(layout.inboxFolder(of: v0) == "/sb/do@example.com/app_data/job/inbox/ds@example.com/old-job")
        #expect(layout.reviewFolder(of: v0) == "/sb/do@example.com/app_data/job/review/ds@example.com/old-job")
        #expect(layout.stateFile(of: v0) == "/sb/do@example.com/app_data/job/review/ds@example.com/old-job/state.yaml")
    }

    @Test(arguments: ["", "../x@y", "a/b@c", "no-at-sign", "@example.com", "a@", "a b@c", "*", "*@example.com"])
    func ownerMustBeAnEmailTheClientAccepts(_ email: String) {
        #expect(throws: SandboxError.self) { try SyftBoxLayout(root: "/sb", owner: email) }
    }

    @Test func scanListsJobsOfBothProtocolsAndEverySubmitter() throws {
        let s = try SyftBoxScratch()
        try s.makeDirectories(s.inbox + "/ds@example.com/v1/job-b")
        try s.makeDirectories(s.inbox + "/ds@example.com/v1/job-a")
        try s.makeDirectories(s.inbox + "/ds@example.com/old-job")
        try s.makeDirectories(s.inbox + "/zz@example.org/v1/Job - 0001")
        try s.write(s.inbox + "/ds@example.com/syft.pub.yaml", "rules: []\n")
        try s.write(s.inbox + "/ds@example.com/v1/stray.txt", "not a job\n")
        let scan = try s.layout.scanInbox()
        #expect(scan.jobs == [
            InboxJob(submitter: "ds@example.com", name: "job-a", protocolVersion: .v1),
            InboxJob(submitter: "ds@example.com", name: "job-b", protocolVersion: .v1),
            InboxJob(submitter: "ds@example.com", name: "old-job", protocolVersion: .v0),
            InboxJob(submitter: "zz@example.org", name: "Job - 0001", protocolVersion: .v1),
        ])
        #expect(scan.skipped.isEmpty)
    }

    @Test func aMissingInboxIsEmpty() throws {
        let s = try SyftBoxScratch()
        #expect(try s.layout.scanInbox() == InboxScan())
    }

    @Test func protocolSegmentsAreNeverJobNames() throws {
        let s = try SyftBoxScratch()
        let ds = s.inbox + "/ds@example.com"
        try s.makeDirectories(ds + "/v1/real-job")
        try s.makeDirectories(ds + "/v1/v3")  // a job named like a segment
        try s.makeDirectories(ds + "/v2/future-job")  // an unsupported protocol
        try s.makeDirectories(ds + "/v07")  // a segment, not a protocol-0 job
        try s.makeDirectories(ds + "/v\u{661}")  // Python's \d takes any decimal digit
        try s.makeDirectories(ds + "/version1")  // not a segment: a protocol-0 job
        let scan = try s.layout.scanInbox()
        #expect(scan.jobs == [
            InboxJob(submitter: "ds@example.com", name: "real-job", protocolVersion: .v1),
            InboxJob(submitter: "ds@example.com", name: "version1", protocolVersion: .v0),
        ])
        #expect(Set(scan.skipped.map(\.path)) == [
            "ds@example.com/v1/v3", "ds@example.com/v2", "ds@example.com/v07", "ds@example.com/v\u{661}",
        ])
        #expect(!scan.jobs.contains { $0.name == "v1" })
    }

    @Test(arguments: [("v1", true), ("v10", true), ("v0", true), ("v\u{661}\u{662}", true), ("v1\n", true),
                      ("v", false), ("V1", false), ("v1a", false), ("xv1", false), ("v-1", false), ("v1 ", false)])
    func protocolSegmentNamesAreTheClients(_ name: String, _ isSegment: Bool) {
        #expect(SyftBoxLayout.isProtocolSegment(name) == isSegment)
    }

    @Test func symlinkedJobAndSubmitterFoldersAreSkippedNotFollowed() throws {
        let s = try SyftBoxScratch()
        // A complete, valid-looking job outside the tree.
        try s.makeSubmission(at: s.outside + "/job")
        try s.makeDirectories(s.outside + "/v1/job")
        let ds = s.inbox + "/ds@example.com"
        try s.makeDirectories(ds + "/v1/real")
        #expect(symlink(s.outside + "/job", ds + "/v1/evil") == 0)
        #expect(symlink(s.outside + "/job", ds + "/evil-v0") == 0)
        #expect(symlink(s.outside, s.inbox + "/linked@example.com") == 0)
        try s.makeDirectories(s.inbox + "/other@example.com")
        #expect(symlink(s.outside + "/v1", s.inbox + "/other@example.com/v1") == 0)
        let scan = try s.layout.scanInbox()
        #expect(scan.jobs == [InboxJob(submitter: "ds@example.com", name: "real", protocolVersion: .v1)])
        let skipped = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path, $0.reason) })
        #expect(Set(skipped.keys) == ["ds@example.com/v1/evil", "ds@example.com/evil-v0", "linked@example.com",
                                      "other@example.com/v1"])
        #expect(skipped.values.allSatisfy { $0.contains("symbolic link") })
    }

    @Test func namesThatAreNotPlainAreSkippedWithAReason() throws {
        let s = try SyftBoxScratch()
        let ds = s.inbox + "/ds@example.com/v1"
        try s.makeDirectories(ds + "/.job.tmp-123")
        try s.makeDirectories(ds + "/line\nbreak")
        try s.makeDirectories(ds + "/fine")
        try s.makeDirectories(s.inbox + "/not-an-email")
        try s.makeDirectories(s.inbox + "/*")
        try s.makeDirectories(s.inbox + "/.hidden@example.com")
        let raw = (Array((s.inbox + "/bad").utf8) + [0xFF] + Array("name".utf8) + [0]).map { CChar(bitPattern: $0) }
        #expect(mkdir(raw, 0o755) == 0)
        let scan = try s.layout.scanInbox()
        #expect(scan.jobs == [InboxJob(submitter: "ds@example.com", name: "fine", protocolVersion: .v1)])
        let skipped = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path, $0.reason) })
        #expect(skipped["ds@example.com/v1/.job.tmp-123"]?.contains("hidden") == true)
        #expect(skipped["ds@example.com/v1/line\nbreak"]?.contains("control") == true)
        #expect(skipped["not-an-email"]?.contains("email") == true)
        #expect(skipped["*"]?.contains("email") == true)
        #expect(skipped[".hidden@example.com"]?.contains("hidden") == true)
        #expect(skipped["bad\\xFFname"]?.contains("UTF-8") == true)
        #expect(scan.skipped.count == 6)
    }

    @Test func openingAnInboxFolderRefusesASymlinkedSegment() throws {
        let s = try SyftBoxScratch()
        try s.makeSubmission(at: s.outside + "/v1/job")
        try s.makeDirectories(s.inbox + "/ds@example.com")
        #expect(symlink(s.outside + "/v1", s.inbox + "/ds@example.com/v1") == 0)
        let job = InboxJob(submitter: "ds@example.com", name: "job", protocolVersion: .v1)
        #expect { try s.layout.openInboxFolder(of: job) } throws: { error in
            (error as? SandboxError)?.code == .invalidSubmission
        }
        try s.makeSubmission(at: s.inbox + "/ds@example.com/real")
        let fd = try s.layout.openInboxFolder(of: InboxJob(submitter: "ds@example.com", name: "real",
                                                           protocolVersion: .v0))
        defer { try? fd.close() }
        guard case .valid = try Submission.check(fd) else {
            Issue.record("the real job folder should be valid")
            return
        }
    }

    // MARK: state.yaml: reading

    @Test func readsTheClientsStateFilesOfBothProtocols() throws {
        let approved = try parse(ClientFixtures.aApproved)
        #expect(approved.status == .approved)
        #expect(approved.approvedBy == owner)
        #expect(approved.approvalMethod == .manual)
        #expect(approved.approvedAt == at("2026-11-25T06:01:08.261537Z"))
        #expect(approved.receivedAt == at("2026-11-25T06:01:08.255769Z"))
        #expect(approved.rejectedBy == nil && approved.rejectedAt == nil && approved.reviewReason == nil)
        #expect(approved.completedAt == nil && approved.returnCode == nil)

        let timedOut = try parse(ClientFixtures.aTimeout)
        #expect(timedOut.status == .failed)
        #expect(timedOut.returnCode == -1)

        let old = try parse(ClientFixtures.v0Approved, .v0)
        #expect(old.protocolVersion == .v0)
        #expect(old.status == .approved)
        #expect(old.approvalMethod == .auto)
        #expect(old.reviewReason == "looks fine")
    }

    @Test func clientFilesRoundTripByteForByte() throws {
        for fixture in ClientFixtures.all {
            #expect(try text(parse(fixture)) == fixture)
        }
        for fixture in ClientFixtures.allV0 {
            #expect(try text(parse(fixture, .v0)) == fixture)
        }
    }

    @Test func readsTolerantlyLikeTheClient() throws {
        let empty = try parse("")
        #expect(empty.status == .received)
        #expect(empty.receivedAt == nil)

        let minimal = try parse("status: pending\n", .v0)
        #expect(minimal.status == .pending)
        #expect(minimal.approvedBy == nil && minimal.returnCode == nil)

        let nulls = try parse("status: done\nreturn_code: '3'\napproved_by: ~\nreceived_at: 2026-01-02T03:04:05Z\n")
        #expect(nulls.returnCode == 3)
        #expect(nulls.approvedBy == nil)
        #expect(nulls.receivedAt == at("2026-01-02T03:04:05Z"))

        let future = try parse("status: paused\napproval_method: quorum\n")
        #expect(future.status == .unknown("paused"))
        #expect(future.approvalMethod == .unknown("quorum"))
        #expect(!future.isApproved && !future.isTerminal)
        #expect(try text(future.markRunning().markRunning()).contains("status: running\n"))
        #expect(try text(future).contains("status: paused\n"))
    }

    @Test(arguments: ["status: [a]\n", "approved_by: {x: 1}\n", "return_code: abc\n", "return_code: 1.5\n",
                      "- a\n- b\n", "status: 'unterminated\n", "just text\n"])
    func wrongTypesAreErrors(_ yaml: String) {
        #expect { try parse(yaml) } throws: { error in
            (error as? SandboxError)?.code == .invalidJobState
        }
    }

    // MARK: state.yaml: transitions, compared with what the client wrote

    @Test func receiptApprovalRunAndFinishMatchTheClient() throws {
        let pending = JobState(protocolVersion: .v1).markPending(at: at("2026-11-25T06:01:08.255769Z"))
        #expect(try text(pending) == ClientFixtures.aPending)

        let approved = try parse(ClientFixtures.aPending)
            .markApproved(by: owner, method: .manual, at: at("2026-11-25T06:01:08.261537Z"))
        #expect(try text(approved) == ClientFixtures.aApproved)

        let running = try parse(ClientFixtures.aApproved).markRunning()
        #expect(try text(running) == ClientFixtures.aRunning)

        let done = try parse(ClientFixtures.aRunning).markFinished(returnCode: 0, at: at("2026-11-25T06:01:08.266337Z"))
        #expect(try text(done) == ClientFixtures.aDone)
        #expect(done.status == .done && done.isTerminal && !done.isDepositedResult)

        // After the client's rerun(), a timeout.
        let rerun = try parse(ClientFixtures.aRerun)
        #expect(rerun.isApproved)
        let timedOut = rerun.markTimedOut(at: at("2026-11-25T06:01:08.272565Z"))
        #expect(try text(timedOut) == ClientFixtures.aTimeout)
        #expect(timedOut.status == .failed && timedOut.returnCode == -1)

        let failed = try parse(ClientFixtures.aRunning).markFinished(returnCode: 2, at: at("2026-11-25T06:01:08.266337Z"))
        #expect(try text(failed) == ClientFixtures.aDone.replacingOccurrences(of: "return_code: 0", with: "return_code: 2")
            .replacingOccurrences(of: "status: done", with: "status: failed"))
    }

    @Test func rejectionsMatchTheClient() throws {
        let rejected = try parse(ClientFixtures.bPending)
            .markRejected(reason: "not with this data", by: owner, at: at("2026-11-25T06:01:08.276329Z"))
        #expect(try text(rejected) == ClientFixtures.bRejected)
        #expect(rejected.isTerminal)

        // At receipt: received_at and rejected_at are the same instant.
        let atReceipt = JobState(protocolVersion: .v1)
            .markRejected(reason: ClientFixtures.badReason, by: owner, at: at("2026-11-25T06:01:08.294118Z"))
        #expect(try text(atReceipt) == ClientFixtures.badRejected)
    }

    @Test func protocolZeroTransitionsMatchTheClient() throws {
        let pending = JobState(protocolVersion: .v0).markPending(at: at("2026-11-25T06:01:08.278727Z"))
        #expect(try text(pending) == ClientFixtures.v0Pending)
        let approved = try parse(ClientFixtures.v0Pending, .v0)
            .markApproved(by: owner, method: .auto, reason: "looks fine", at: at("2026-11-25T06:01:08.281920Z"))
        #expect(try text(approved) == ClientFixtures.v0Approved)
        #expect(!(try text(approved)).contains("canonical_name"))
        #expect(!(try text(approved)).contains("version"))
    }

    @Test func approvingReplacesTheReviewReasonAsTheClientDoes() throws {
        let withReason = try parse(ClientFixtures.bPending).markRejected(reason: "first", by: owner, at: at("x"))
        let approved = withReason.markApproved(by: owner, method: .manual, at: at("y"))
        #expect(approved.reviewReason == nil)
        #expect(try text(approved).contains("review_reason: null\n"))
    }

    @Test func depositedResultsAreRecognised() throws {
        let deposited = try parse(ClientFixtures.depDone)
        #expect(deposited.isDepositedResult)
        #expect(deposited.isTerminal && !deposited.isApproved)
        #expect(try !parse(ClientFixtures.aDone).isDepositedResult)
        #expect(try !parse(ClientFixtures.depPending).isDepositedResult)
    }

    @Test func refusalIsAFailureWithTheReason() throws {
        let refused = try parse(ClientFixtures.aApproved)
            .markFailed(reason: "the submission changed after it was received: x", at: at("2026-11-25T06:01:09Z"))
        #expect(refused.status == .failed)
        #expect(refused.returnCode == -1)
        #expect(try text(refused).contains("review_reason: 'the submission changed after it was received: x'\n"))
        #expect(try text(refused).contains("completed_at: '2026-11-25T06:01:09Z'\n"))
    }

    @Test func reviewReasonsAreQuotedAsTheClientQuotesThem() throws {
        let time = at("2026-11-25T05:51:17.398502Z")
        for (reason, yaml) in ClientFixtures.reasonCases {
            let state = JobState(protocolVersion: .v1).markRejected(reason: reason, by: owner, at: time)
            let written = try text(state)
            #expect(written == ClientFixtures.reasonTemplate.0 + yaml + ClientFixtures.reasonTemplate.1,
                    "reason \(reason.debugDescription)")
            #expect(try parse(written).reviewReason == reason, "reason \(reason.debugDescription) reads back")
        }
    }

    // MARK: state.yaml: unknown keys

    @Test func unknownKeysAreKeptInTheirOrderAndNewKeysGoWhereTheClientPutsThem() throws {
        let source = """
            zeta: first
            status: pending
            custom:
              nested: [1, 2]
              quoted: '123'
            received_at: 2026-01-02T03:04:05Z
            alpha: !!str 5
            review_reason: null

            """
        let approved = try parse(source).markApproved(by: owner, method: .manual, at: at("2026-01-02T03:05:00Z"))
        let expected = """
            zeta: first
            approval_method: manual
            approved_at: '2026-01-02T03:05:00Z'
            approved_by: do@example.com
            canonical_name: JobState
            completed_at: null
            status: approved
            version: '1'
            custom:
              nested:
              - 1
              - 2
              quoted: '123'
            received_at: 2026-01-02T03:04:05Z
            rejected_at: null
            rejected_by: null
            return_code: null
            alpha: '5'
            review_reason: null

            """
        #expect(try text(approved) == expected)
        // Read back, the unknown values are what they were.
        let again = try text(parse(expected))
        #expect(again == expected)
    }

    @Test func aStateMissingItsIdentityGetsItUnderProtocolOneOnly() throws {
        let v1 = try text(parse("status: pending\n").markRunning())
        #expect(v1 == "approval_method: null\napproved_at: null\napproved_by: null\ncanonical_name: JobState\n"
            + "completed_at: null\nreceived_at: null\nrejected_at: null\nrejected_by: null\nreturn_code: null\n"
            + "review_reason: null\nstatus: running\nversion: '1'\n")
        let v0 = try text(parse("status: pending\n", .v0).markRunning())
        #expect(!v0.contains("canonical_name") && !v0.contains("version"))
    }

    @Test func writeIsAtomicAndReadsBack() throws {
        let s = try SyftBoxScratch()
        let path = FilePath(s.review + "/state.yaml")
        try s.makeDirectories(s.review)
        #expect(try JobState.read(from: path, protocolVersion: .v1) == nil)
        let pending = JobState(protocolVersion: .v1).markPending(at: at("2026-11-25T06:01:08.255769Z"))
        try pending.write(to: path)
        #expect(s.read(path.string) == Array(ClientFixtures.aPending.utf8))
        let read = try #require(try JobState.read(from: path, protocolVersion: .v1))
        #expect(read.status == .pending)
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.review) == ["state.yaml"])
        // A symlinked state.yaml is not followed.
        try s.write(s.outside + "/state.yaml", ClientFixtures.aApproved)
        #expect(unlink(path.string) == 0)
        #expect(symlink(s.outside + "/state.yaml", path.string) == 0)
        #expect(throws: SandboxError.self) { try JobState.read(from: path, protocolVersion: .v1) }
    }

    // MARK: Timestamps

    /// The calendar arithmetic that replaced gmtime_r agrees with it, to
    /// the second: around the epoch, leap days and century years, and at
    /// 20,000 pseudo-random times from 1900 to 2400.
    @Test func timestampsAgreeWithGmtime() {
        func viaGmtime(_ seconds: Int64) -> String {
            var time = time_t(seconds)
            var parts = tm()
            gmtime_r(&time, &parts)
            var buffer = [CChar](repeating: 0, count: 32)
            strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
            return String(cString: buffer)
        }
        var samples: [Int64] = [0, -1, 1, 86_399, 86_400, -86_400, -86_401, 951_782_400, 951_868_799, 951_868_800,
                                4_107_542_400, 4_107_628_800, -2_208_988_800, 13_574_563_200, 1_767_323_045]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            samples.append(-2_208_988_800 + Int64(state >> 33) % 15_778_476_000) // 1900-01-01 + 500 years
        }
        for seconds in samples {
            #expect(JobTimestamp(secondsSinceEpoch: seconds).text == viaGmtime(seconds), "\(seconds)")
        }
    }

    @Test func timestampsAreFormattedAsPydanticFormatsThem() throws {
        // 2026-01-02T03:04:05Z
        #expect(JobTimestamp(secondsSinceEpoch: 1_767_323_045).text == "2026-01-02T03:04:05Z")
        #expect(JobTimestamp(secondsSinceEpoch: 1_767_323_045, microseconds: 500_000).text
            == "2026-01-02T03:04:05.500000Z")
        #expect(JobTimestamp(secondsSinceEpoch: 1_767_323_045, microseconds: 123).text == "2026-01-02T03:04:05.000123Z")
        #expect(JobTimestamp(secondsSinceEpoch: 0).text == "1970-01-01T00:00:00Z")
        #expect(JobTimestamp(secondsSinceEpoch: 1_767_323_044, microseconds: 1_000_001).text
            == "2026-01-02T03:04:05.000001Z")
        #expect(JobTimestamp(secondsSinceEpoch: 1_767_323_046, microseconds: -500_000).text
            == "2026-01-02T03:04:05.500000Z")
        let now = JobTimestamp.now()
        let pattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$/
        #expect(now.text.wholeMatch(of: pattern) != nil, "\(now.text)")
        let micros = try #require(now.microsecondsSinceEpoch)
        #expect(abs(micros / 1_000_000 - Int64(time(nil))) < 5)
    }

    @Test func timestampsParseTheFormsTheClientReads() {
        #expect(at("2026-01-02T03:04:05Z").microsecondsSinceEpoch == 1_767_323_045_000_000)
        #expect(at("2026-01-02T03:04:05.5Z").microsecondsSinceEpoch == 1_767_323_045_500_000)
        #expect(at("2026-01-02T03:04:05.123456789Z").microsecondsSinceEpoch == 1_767_323_045_123_456)
        #expect(at("2026-01-02 03:04:05").microsecondsSinceEpoch == 1_767_323_045_000_000)
        #expect(at("2026-01-02T05:04:05+02:00").microsecondsSinceEpoch == 1_767_323_045_000_000)
        #expect(at("2026-01-02T01:04:05-0200").microsecondsSinceEpoch == 1_767_323_045_000_000)
        #expect(at("2026-01-02").microsecondsSinceEpoch == 1_767_312_000_000_000)
        #expect(at("yesterday").microsecondsSinceEpoch == nil)
        #expect(at("2026-13-02T03:04:05Z").microsecondsSinceEpoch == nil)
        #expect(at("2026-01-02T03:04:05Zjunk").microsecondsSinceEpoch == nil)
    }

    // MARK: config.yaml

    @Test func parsesTheClientsConfigFiles() throws {
        let bash = try SubmissionMetadata.parse(Array(ClientFixtures.configV1Bash.utf8))
        #expect(bash.canonicalName == "JobSubmissionMetadata")
        #expect(bash.version == "1")
        #expect(bash.name == "job-a")
        #expect(bash.type == "bash")
        #expect(bash.submittedAt == at("2026-11-25T06:01:08.250386Z"))
        #expect(bash.entrypoint == nil)
        #expect(bash.dependencies == [])
        #expect(bash.files == ["script.sh"])
        #expect(!bash.isFolderSubmission)
        #expect(bash.codePath == nil)
        #expect(bash.jobType == "local")
        #expect(bash.datasets == nil)
        #expect(bash.headers == [:])

        let python = try SubmissionMetadata.parse(Array(ClientFixtures.configV1Python.utf8))
        #expect(python.type == "python")
        #expect(python.entrypoint == "main.py")
        #expect(python.dependencies == ["syft==0.1.0", "numpy"])
        #expect(python.files == ["main.py", "util.py"])
        #expect(python.isFolderSubmission)
        #expect(python.codePath == "/tmp/sjwork/box/src")

        let old = try SubmissionMetadata.parse(Array(ClientFixtures.configV0Bash.utf8))
        #expect(old.canonicalName == nil && old.version == nil)
        #expect(old.datasets == [.init(owner: "do@example.com", names: ["census", "tax"])])
        #expect(old.headers == ["priority": "3", "team": "blue"])
    }

    @Test func configDefaultsAndUnknownKeys() throws {
        let minimal = try SubmissionMetadata.parse(Array("name: x\nsomething_new: [1, 2]\nfiles: null\n".utf8))
        #expect(minimal.type == "python")
        #expect(minimal.jobType == "local")
        #expect(minimal.files == [])
        #expect(minimal.datasets == nil)
        let empty = try SubmissionMetadata.parse([])
        #expect(empty == SubmissionMetadata())
        let datasets = try SubmissionMetadata.parse(Array("""
            datasets:
              b@example.com: [one]
              a@example.com:
              - two
              - three
            headers: {x: 1, y: null, z: "text"}
            is_folder_submission: yes

            """.utf8))
        #expect(datasets.datasets == [.init(owner: "b@example.com", names: ["one"]),
                                      .init(owner: "a@example.com", names: ["two", "three"])])
        #expect(datasets.headers == ["x": "1", "z": "text"])
        #expect(datasets.isFolderSubmission)
    }

    @Test(arguments: [
        ("datasets: [census]\n", "datasets"),
        ("datasets: {do@example.com: census}\n", "datasets.do@example.com"),
        ("datasets: {do@example.com: [[a]]}\n", "datasets.do@example.com"),
        ("headers: [a, b]\n", "headers"),
        ("headers: {a: [1]}\n", "headers.a"),
        ("dependencies: numpy\n", "dependencies"),
        ("files: [{a: 1}]\n", "files"),
        ("is_folder_submission: maybe\n", "is_folder_submission"),
        ("name: [a]\n", "name"),
        ("type: {a: b}\n", "type"),
        ("- just\n- a list\n", "mapping"),
        ("name: 'unterminated\n", "YAML"),
    ])
    func configWrongTypesAreClearErrors(_ yaml: String, _ mentioned: String) {
        #expect { try SubmissionMetadata.parse(Array(yaml.utf8)) } throws: { error in
            guard let error = error as? SandboxError else { return false }
            return error.code == .invalidSubmission && error.message.hasPrefix("config.yaml")
                && error.message.contains(mentioned)
        }
    }

    @Test func configThatIsNotUTF8IsAnError() {
        #expect(throws: SandboxError.self) { try SubmissionMetadata.parse([0x6E, 0x3A, 0x20, 0xFF, 0x0A]) }
    }
}
