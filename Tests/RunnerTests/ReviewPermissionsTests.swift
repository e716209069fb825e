import Foundation
import Glibc
@testable import Runner
import Sandbox
import SystemPackage
import Testing

/// The owner-only rule syft-job's runner adds for each job it runs, checked
/// byte for byte against files the real runner wrote: syft-job 0.1.40 in a
/// virtualenv, `setup_ds_job_folder_as_do("ds@example.com")` for the
/// review/DS and inbox/DS files, then `SyftJobRunner._prepare_outputs_dir`
/// (the step of `process_approved_jobs` that writes the rule) for each job
/// named in a test, over the starting files the test writes.
@Suite struct ReviewPermissionsTests {
    static let ds = "ds@example.com"

    let scratch: SyftBoxScratch
    init() throws { scratch = try SyftBoxScratch() }

    var datasite: String { scratch.box + "/" + scratch.owner }
    var reviewFile: String { scratch.review + "/\(Self.ds)/syft.pub.yaml" }
    var inboxFile: String { scratch.inbox + "/\(Self.ds)/syft.pub.yaml" }

    func job(_ name: String, _ version: JobProtocol = .v1) -> InboxJob {
        InboxJob(submitter: Self.ds, name: name, protocolVersion: version)
    }

    /// The two files `setup_ds_job_folder_as_do` writes.
    func setUpSubmitter() throws {
        try scratch.write(inboxFile, Fixture.inboxSetup)
        try scratch.write(reviewFile, Fixture.reviewSetup)
    }

    func text(_ path: String) -> String? { scratch.read(path).map { String(decoding: $0, as: UTF8.self) } }

    @discardableResult
    func hide(_ names: [String], _ version: JobProtocol = .v1) throws -> [FilePath?] {
        let layout = try scratch.layout
        return try names.map { try ReviewPermissions.hideOutputs(of: job($0, version), in: layout) }
    }

    @Test func firstJobAppendsTheOwnerOnlyRule() throws {
        try setUpSubmitter()
        let written = try hide(["job-1"])
        #expect(written == [FilePath(reviewFile)])
        #expect(text(reviewFile) == Fixture.afterJob1)
        #expect(text(inboxFile) == Fixture.inboxSetup)
        // The rule hides the outputs only: nothing else is created.
        #expect(!scratch.exists(scratch.review + "/\(Self.ds)/v1/job-1/outputs/syft.pub.yaml"))
    }

    @Test func aRerunAddsNothing() throws {
        try setUpSubmitter()
        try hide(["job-1"])
        let before = scratch.read(reviewFile)
        #expect(try hide(["job-1"]) == [nil])
        #expect(scratch.read(reviewFile) == before)
        #expect(text(reviewFile) == Fixture.afterJob1)
    }

    @Test func jobsOfBothProtocolsAppendInTurn() throws {
        try setUpSubmitter()
        try hide(["job-1", "Job - 1a2b3c4d"])
        try hide(["old-job"], .v0)
        #expect(text(reviewFile) == Fixture.afterMore)
    }

    /// Existing rules stay, in their places, as syft_permissions rewrites
    /// them (comments and unknown keys dropped, every field written); a
    /// rule with the job's pattern is reused.
    @Test func existingRulesAreKept() throws {
        try scratch.write(reviewFile, """
            # hand-written
            terminal: no
            extra: 1
            rules:
              - pattern: "**"
                access: {read: [ds@example.com, "*@example.org"], note: x}
              - {pattern: 'v1/job-1/outputs/**', access: {read: [alice@example.com], write: [], admin: [bob@example.com]}}
              - pattern: v1/other/stdout.txt
                access: {}

            """)
        try hide(["job-1", "job-2"])
        #expect(text(reviewFile) == Fixture.customAfter)
    }

    @Test func theOwnerAlreadyListedIsNotAddedTwice() throws {
        try scratch.write(reviewFile, "rules:\n- pattern: v1/job-1/outputs/**\n  access:\n    read: [do@example.com]\n")
        try hide(["job-1"])
        #expect(text(reviewFile) == Fixture.ownerListedAfter)
    }

    @Test func withNoPermissionFileAboveTheOutputsGetTheirOwn() throws {
        let written = try hide(["job-1"])
        let file = scratch.review + "/\(Self.ds)/v1/job-1/outputs/syft.pub.yaml"
        #expect(written == [FilePath(file)])
        #expect(text(file) == Fixture.noneAfter)
    }

    /// Called again with the file as it should be: nothing is written (no
    /// new file, no fsync), the file stays the same one.
    @Test func anOutputsFileAlreadyRightIsLeftAlone() throws {
        let file = scratch.review + "/\(Self.ds)/v1/job-1/outputs/syft.pub.yaml"
        try hide(["job-1"])
        var before = stat(), after = stat()
        #expect(lstat(file, &before) == 0)
        #expect(try hide(["job-1"]) == [nil])
        #expect(lstat(file, &after) == 0)
        #expect(after.st_ino == before.st_ino)
        #expect(text(file) == Fixture.noneAfter)
    }

    /// Called again after the run (the daemon does): with no file above,
    /// the outputs' own file is the owner-only one, whatever the job put
    /// there (syft-job would leave the job's).
    @Test func withNoPermissionFileAboveAJobWrittenOneIsReplaced() throws {
        let file = scratch.review + "/\(Self.ds)/v1/job-1/outputs/syft.pub.yaml"
        try scratch.write(file, "rules:\n- access:\n    read:\n    - '*'\n  pattern: '**'\n")
        try hide(["job-1"])
        #expect(text(file) == Fixture.noneAfter)
    }

    @Test func aTerminalFileAboveGoverns() throws {
        try setUpSubmitter()
        try scratch.write(scratch.review + "/syft.pub.yaml", "terminal: true\nrules: []\n")
        try hide(["job-1"])
        #expect(text(scratch.review + "/syft.pub.yaml") == Fixture.terminalAfter)
        #expect(text(reviewFile) == Fixture.reviewSetup)
    }

    @Test func theDatasiteRootFileGovernsWhenNothingIsCloser() throws {
        try scratch.write(datasite + "/syft.pub.yaml", "rules:\n- pattern: public/**\n  access:\n    read: ['*']\n")
        try hide(["job-1"])
        #expect(text(datasite + "/syft.pub.yaml") == Fixture.rootAfter)
    }

    /// Patterns PyYAML folds past 80 columns, quotes, or escapes.
    @Test func oddJobNamesAreWrittenAsPyYAMLWritesThem() throws {
        try setUpSubmitter()
        try hide(["a very long job name with many words that goes past the eighty column limit of yaml output",
                  "name: with colon # and hash", "- dash first", "2024-01-01", "caf\u{E9} \u{FC}ber"])
        #expect(text(reviewFile) == Fixture.oddNamesAfter)
    }

    /// syft-job empties outputs/ before it adds the rule: a permission file
    /// left there (by the previous run's outputs) does not govern.
    @Test func aPermissionFileInsideTheOutputsIsPassedOver() throws {
        try setUpSubmitter()
        let stale = scratch.review + "/\(Self.ds)/v1/job-1/outputs/syft.pub.yaml"
        let staleText = "rules:\n- access:\n    read:\n    - '*'\n  pattern: '**'\n"
        try scratch.write(stale, staleText)
        try hide(["job-1"])
        #expect(text(reviewFile) == Fixture.afterJob1)
        #expect(text(stale) == staleText)
    }

    /// A file syft_permissions could not load is left alone, and the job
    /// is not run (the caller fails it): its outputs could not be hidden.
    @Test(arguments: [
        "rules: {}\n",
        "rules:\n- pattern: 1\n  access: {}\n",
        "rules:\n- pattern: '**'\n",
        "rules:\n- pattern: '**'\n  access:\n    read: ds@example.com\n",
        "rules:\n- pattern: '**'\n  access:\n    read: [yes]\n",
        "rules:\n- pattern: '{{.Year}}/**'\n  access: {}\n",
        "terminal: maybe\n",
        "rules: [\n",
        "- just a list\n",
    ])
    func aFileTheClientCannotLoadIsRefused(_ content: String) throws {
        try scratch.write(reviewFile, content)
        #expect {
            try hide(["job-1"])
        } throws: { ($0 as? SandboxError)?.code == .invalidPermissionFile }
        #expect(text(reviewFile) == content)
    }

    @Test func aSymbolicLinkIsRefused() throws {
        try scratch.write(scratch.outside + "/syft.pub.yaml", Fixture.reviewSetup)
        try scratch.makeDirectories(scratch.review + "/\(Self.ds)")
        try #require(symlink(scratch.outside + "/syft.pub.yaml", reviewFile) == 0)
        #expect(throws: SandboxError.self) { try hide(["job-1"]) }
        #expect(text(scratch.outside + "/syft.pub.yaml") == Fixture.reviewSetup)
    }

    /// The daemon runs jobs at once; each rule must survive the others'
    /// updates of the same file.
    @Test func concurrentJobsEachGetTheirRule() async throws {
        try setUpSubmitter()
        let layout = try scratch.layout
        let names = (0..<16).map { "job-\($0)" }
        let jobs = names.map { job($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for job in jobs {
                group.addTask { try ReviewPermissions.hideOutputs(of: job, in: layout) }
            }
            try await group.waitForAll()
        }
        let rules = try ReviewPermissions.parse(try #require(scratch.read(reviewFile))).rules
        #expect(rules.count == 17)
        #expect(rules.first == .init(pattern: "**", read: [Self.ds]))
        #expect(Set(rules.dropFirst().map(\.pattern)) == Set(names.map { "v1/\($0)/outputs/**" }))
        #expect(rules.dropFirst().allSatisfy { $0.read == [scratch.owner] && $0.write.isEmpty && $0.admin.isEmpty })
    }
}

/// What syft-job 0.1.40 wrote (see the suite's comment).
private enum Fixture {
    static let inboxSetup = #"""
        rules:
        - access:
            admin: []
            read: []
            write:
            - ds@example.com
          pattern: '**'
        terminal: false

        """#

    static let reviewSetup = #"""
        rules:
        - access:
            admin: []
            read:
            - ds@example.com
            write: []
          pattern: '**'
        terminal: false

        """#

    static let afterJob1 = #"""
        rules:
        - access:
            admin: []
            read:
            - ds@example.com
            write: []
          pattern: '**'
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/job-1/outputs/**
        terminal: false

        """#

    static let afterMore = #"""
        rules:
        - access:
            admin: []
            read:
            - ds@example.com
            write: []
          pattern: '**'
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/job-1/outputs/**
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/Job - 1a2b3c4d/outputs/**
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: old-job/outputs/**
        terminal: false

        """#

    static let customAfter = #"""
        rules:
        - access:
            admin: []
            read:
            - ds@example.com
            - '*@example.org'
            write: []
          pattern: '**'
        - access:
            admin:
            - bob@example.com
            read:
            - alice@example.com
            - do@example.com
            write: []
          pattern: v1/job-1/outputs/**
        - access:
            admin: []
            read: []
            write: []
          pattern: v1/other/stdout.txt
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/job-2/outputs/**
        terminal: false

        """#

    static let noneAfter = #"""
        rules:
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: '**'
        terminal: false

        """#

    static let terminalAfter = #"""
        rules:
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: ds@example.com/v1/job-1/outputs/**
        terminal: true

        """#

    static let rootAfter = #"""
        rules:
        - access:
            admin: []
            read:
            - '*'
            write: []
          pattern: public/**
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: app_data/job/review/ds@example.com/v1/job-1/outputs/**
        terminal: false

        """#

    static let oddNamesAfter = #"""
        rules:
        - access:
            admin: []
            read:
            - ds@example.com
            write: []
          pattern: '**'
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/a very long job name with many words that goes past the eighty column
            limit of yaml output/outputs/**
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: 'v1/name: with colon # and hash/outputs/**'
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/- dash first/outputs/**
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/2024-01-01/outputs/**
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: "v1/caf\xE9 \xFCber/outputs/**"
        terminal: false

        """#

    static let ownerListedAfter = #"""
        rules:
        - access:
            admin: []
            read:
            - do@example.com
            write: []
          pattern: v1/job-1/outputs/**
        terminal: false

        """#
}
