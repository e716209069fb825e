import Foundation
import Glibc
import Runner
import Sandbox
import SystemPackage
import Testing

/// A temporary folder holding a hostile staging tree, a results folder and
/// an "outside" folder that nothing may touch.
private final class Scratch {
    let root: String
    var staging: String { root + "/staging" }
    var results: String { root + "/results" }
    var outputs: String { results + "/outputs" }
    var outside: String { root + "/outside" }

    init() throws {
        root = NSTemporaryDirectory() + "syft-artifacts-\(UUID().uuidString)"
        for path in [root, root + "/staging", root + "/results", root + "/outside"] {
            try #require(mkdir(path, 0o755) == 0, "mkdir \(path)")
        }
    }

    deinit {
        if (try? ArtifactCollector.removeTree(FilePath(root))) == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
        try write(path, Array(text.utf8), mode: mode)
    }

    func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(fd >= 0, "create \(path): \(errno)")
        defer { close(fd) }
        try #require(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count)
        try #require(fchmod(fd, mode) == 0)
    }

    func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        try #require(mkdir(path, 0o700) == 0, "mkdir \(path): \(errno)")
        try #require(chmod(path, mode) == 0)
    }

    func collect(_ collector: ArtifactCollector = ArtifactCollector()) throws -> ArtifactReport {
        try collector.collect(from: FilePath(staging), into: FilePath(outputs))
    }
}

private func contents(_ path: String) -> [UInt8]? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return Array(data)
}

private func lstatInfo(_ path: String) -> stat? {
    var info = stat()
    return lstat(path, &info) == 0 ? info : nil
}

/// The raw names in a directory.
private func rawNames(_ path: String) -> Set<[UInt8]> {
    guard let stream = opendir(path) else { return [] }
    defer { closedir(stream) }
    var result: Set<[UInt8]> = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
        if name != [0x2E], name != [0x2E, 0x2E] { result.insert(name) }
    }
    return result
}

private func names(_ path: String) -> Set<String> {
    Set(rawNames(path).map { String(decoding: $0, as: UTF8.self) })
}

/// Every path under `path`, relative, found without following symlinks.
private func tree(_ path: String, prefix: String = "") -> Set<String> {
    var result: Set<String> = []
    for name in names(path) {
        result.insert(prefix + name)
        if lstatInfo(path + "/" + name).map({ $0.st_mode & S_IFMT == S_IFDIR }) == true {
            result.formUnion(tree(path + "/" + name, prefix: prefix + name + "/"))
        }
    }
    return result
}

@Suite struct ArtifactCollectorTests {
    // MARK: What is not collected

    @Test func symlinksAreNotCollectedAndAreReported() throws {
        let s = try Scratch()
        try s.write(s.staging + "/keep.txt", "kept")
        try s.makeDirectory(s.staging + "/dir")
        #expect(symlink("/etc/passwd", s.staging + "/absolute") == 0)
        #expect(symlink("../../../../../etc/passwd", s.staging + "/relative") == 0)
        #expect(symlink("../..", s.staging + "/dir/escape") == 0)
        let report = try s.collect()
        #expect(tree(s.outputs) == ["keep.txt", "dir"])
        #expect(contents(s.outputs + "/keep.txt") == Array("kept".utf8))
        #expect(Set(report.skipped.map(\.path)) == ["absolute", "relative", "dir/escape"])
        #expect(report.skipped.allSatisfy { $0.kind == .symlink && !$0.reason.isEmpty })
        #expect(report.skippedCount == 3)
        #expect(report.files == 1)
        #expect(report.directories == 1)
    }

    @Test func symlinkToADirectoryOutsideIsNotDescended() throws {
        let s = try Scratch()
        try s.write(s.outside + "/secret.txt", "secret", mode: 0o600)
        try s.makeDirectory(s.staging + "/sub")
        #expect(symlink(s.outside, s.staging + "/link") == 0)
        #expect(symlink(s.outside, s.staging + "/sub/inner") == 0)
        let report = try s.collect()
        #expect(tree(s.outputs) == ["sub"])
        #expect(report.skipped.map(\.kind) == [.symlink, .symlink])
        #expect(tree(s.outside) == ["secret.txt"])
        #expect(lstatInfo(s.outside + "/secret.txt").map { $0.st_mode & 0o7777 } == 0o600)
    }

    @Test func fifoDoesNotBlockAndIsSkipped() throws {
        let s = try Scratch()
        #expect(mkfifo(s.staging + "/pipe", 0o644) == 0)
        try s.write(s.staging + "/after.txt", "after")
        // Opening the FIFO for reading would block forever: the call
        // returning at all is the assertion.
        let report = try s.collect()
        #expect(report.skipped == [.init(path: "pipe", kind: .fifo, reason: report.skipped.first?.reason ?? "")])
        #expect(tree(s.outputs) == ["after.txt"])
    }

    @Test func unixSocketIsSkipped() throws {
        let s = try Scratch()
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array((s.staging + "/sock").utf8)
        try #require(path.count < MemoryLayout.size(ofValue: address.sun_path))
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0, "bind: \(errno)")
        let report = try s.collect()
        #expect(report.skipped.map(\.kind) == [.socket])
        #expect(report.skipped.map(\.path) == ["sock"])
        #expect(tree(s.outputs).isEmpty)
    }

    @Test(.enabled(if: geteuid() == 0, "mknod needs root"))
    func deviceNodesAreSkipped() throws {
        let s = try Scratch()
        #expect(mknod(s.staging + "/null", S_IFCHR | 0o666, dev_t(0x103)) == 0)
        #expect(mknod(s.staging + "/disk", S_IFBLK | 0o600, dev_t(0x700)) == 0)
        let report = try s.collect()
        #expect(Set(report.skipped.map(\.kind)) == [.charDevice, .blockDevice])
        #expect(tree(s.outputs).isEmpty)
    }

    // MARK: Names, modes, owners

    @Test func nonUTF8NamesKeepEveryByteAndAreEscapedInTheReport() throws {
        let s = try Scratch()
        let fileName: [UInt8] = [0x66, 0xFF, 0xFE, 0x2E, 0x74, 0x78, 0x74]  // "f\xFF\xFE.txt"
        let directoryName: [UInt8] = [0x64, 0xC3, 0x28]  // "d\xC3(": a broken two-byte sequence
        let stagingFD = open(s.staging, O_RDONLY | O_DIRECTORY)
        try #require(stagingFD >= 0)
        defer { close(stagingFD) }
        let fd = openat(stagingFD, fileName.map { CChar(bitPattern: $0) } + [0], O_WRONLY | O_CREAT | O_EXCL, 0o644)
        try #require(fd >= 0)
        #expect(write(fd, "raw", 3) == 3)
        close(fd)
        try #require(mkdirat(stagingFD, directoryName.map { CChar(bitPattern: $0) } + [0], 0o755) == 0)
        let inner = openat(stagingFD, directoryName.map { CChar(bitPattern: $0) } + [0], O_RDONLY | O_DIRECTORY)
        try #require(inner >= 0)
        #expect(symlinkat("/etc", inner, "link") == 0)
        close(inner)

        let report = try s.collect()
        #expect(rawNames(s.outputs) == Set([fileName, directoryName]))
        let outputsFD = open(s.outputs, O_RDONLY | O_DIRECTORY)
        try #require(outputsFD >= 0)
        defer { close(outputsFD) }
        let copy = openat(outputsFD, fileName.map { CChar(bitPattern: $0) } + [0], O_RDONLY)
        try #require(copy >= 0, "the copy is not under its raw name")
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(Glibc.read(copy, &buffer, 16) == 3)
        #expect(Array(buffer.prefix(3)) == Array("raw".utf8))
        close(copy)
        #expect(report.skipped.map(\.path) == ["d\\xC3(/link"])
    }

    @Test func displayPathEscapesOnlyInvalidBytes() {
        #expect(ArtifactReport.displayPath(Array("plain/é/日本".utf8)) == "plain/é/日本")
        #expect(ArtifactReport.displayPath([0x61, 0xFF, 0x62]) == "a\\xFFb")
        #expect(ArtifactReport.displayPath([0xE6, 0x97]) == "\\xE6\\x97")
        #expect(ArtifactReport.displayPath([0xC0, 0xAF, 0x2F]) == "\\xC0\\xAF/")
        #expect(ArtifactReport.displayPath([]) == "")
    }

    @Test func setuidSetgidAndStickyBitsAreDropped() throws {
        let s = try Scratch()
        try s.write(s.staging + "/tool", "#!/bin/sh\n", mode: 0o6755)
        try s.write(s.staging + "/readonly", "r", mode: 0o444)
        try s.makeDirectory(s.staging + "/shared", mode: 0o3775)
        try s.makeDirectory(s.staging + "/frozen", mode: 0o555)
        #expect(lstatInfo(s.staging + "/tool").map { $0.st_mode & 0o7777 } == 0o6755, "setup")
        _ = try s.collect()
        #expect(lstatInfo(s.outputs + "/tool").map { $0.st_mode & 0o7777 } == 0o755)
        #expect(lstatInfo(s.outputs + "/readonly").map { $0.st_mode & 0o7777 } == 0o644)
        #expect(lstatInfo(s.outputs + "/shared").map { $0.st_mode & 0o7777 } == 0o775)
        #expect(lstatInfo(s.outputs + "/frozen").map { $0.st_mode & 0o7777 } == 0o755)
    }

    @Test func modeZeroFilesAndDirectoriesAreCollected() throws {
        let s = try Scratch()
        try s.write(s.staging + "/secret", "hidden", mode: 0)
        try s.makeDirectory(s.staging + "/locked")
        try s.write(s.staging + "/locked/inner.txt", "inner", mode: 0)
        try #require(chmod(s.staging + "/locked", 0) == 0)
        let report = try s.collect()
        #expect(report.skipped.isEmpty)
        #expect(contents(s.outputs + "/secret") == Array("hidden".utf8))
        #expect(contents(s.outputs + "/locked/inner.txt") == Array("inner".utf8))
        #expect(lstatInfo(s.outputs + "/secret").map { $0.st_mode & 0o7777 } == 0o600)
        #expect(lstatInfo(s.outputs + "/locked").map { $0.st_mode & 0o7777 } == 0o700)
    }

    @Test func stagingFolderOfModeZeroIsCollected() throws {
        let s = try Scratch()
        try s.write(s.staging + "/a.txt", "a")
        try #require(chmod(s.staging, 0) == 0)
        let report = try s.collect()
        #expect(report.files == 1)
        #expect(contents(s.outputs + "/a.txt") == Array("a".utf8))
    }

    @Test(.enabled(if: geteuid() == 0, "chown needs root"))
    func copiesBelongToTheInvokingUser() throws {
        let s = try Scratch()
        try s.write(s.staging + "/owned", "x")
        try s.makeDirectory(s.staging + "/dir")
        try #require(chown(s.staging + "/owned", 12345, 12345) == 0)
        try #require(chown(s.staging + "/dir", 12345, 12345) == 0)
        _ = try s.collect()
        #expect(lstatInfo(s.outputs + "/owned")?.st_uid == geteuid())
        #expect(lstatInfo(s.outputs + "/dir")?.st_uid == geteuid())
    }

    @Test func hardLinksBecomeTwoRegularFiles() throws {
        let s = try Scratch()
        try s.write(s.staging + "/a.txt", "shared")
        try #require(link(s.staging + "/a.txt", s.staging + "/b.txt") == 0)
        let report = try s.collect()
        #expect(report.files == 2)
        let a = try #require(lstatInfo(s.outputs + "/a.txt"))
        let b = try #require(lstatInfo(s.outputs + "/b.txt"))
        #expect(a.st_ino != b.st_ino)
        #expect(a.st_nlink == 1 && b.st_nlink == 1)
        #expect(contents(s.outputs + "/b.txt") == Array("shared".utf8))
    }

    // MARK: Content

    @Test func nestedDirectoriesAndContentAreCopied() throws {
        let s = try Scratch()
        try s.makeDirectory(s.staging + "/a")
        try s.makeDirectory(s.staging + "/a/b")
        try s.makeDirectory(s.staging + "/a/b/c")
        try s.makeDirectory(s.staging + "/empty")
        try s.write(s.staging + "/a/b/c/deep.txt", "deep")
        try s.write(s.staging + "/zero", [])
        let big = (0..<(3 << 20) + 12345).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
        try s.write(s.staging + "/a/big.bin", big)
        var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
        try #require(utimensat(AT_FDCWD, s.staging + "/a/b/c/deep.txt", &times, 0) == 0)
        let report = try s.collect()
        #expect(tree(s.outputs) == ["a", "a/b", "a/b/c", "a/b/c/deep.txt", "a/big.bin", "empty", "zero"])
        #expect(contents(s.outputs + "/a/big.bin") == big)
        #expect(contents(s.outputs + "/a/b/c/deep.txt") == Array("deep".utf8))
        #expect(contents(s.outputs + "/zero") == [])
        #expect(report.files == 3)
        #expect(report.directories == 4)
        #expect(report.bytes == UInt64(big.count + 4))
        #expect(report.skipped.isEmpty && report.skippedCount == 0)
        #expect(lstatInfo(s.outputs + "/a/b/c/deep.txt")?.st_mtim.tv_sec == 1_000_000_000)
    }

    @Test func sparseFilesStaySparse() throws {
        let s = try Scratch()
        let size: off_t = 1 << 30
        let fd = open(s.staging + "/sparse", O_WRONLY | O_CREAT | O_EXCL, 0o644)
        try #require(fd >= 0)
        #expect(pwrite(fd, "start", 5, 0) == 5)
        #expect(pwrite(fd, "middle", 6, 512 << 20) == 6)
        #expect(pwrite(fd, "end", 3, size - 3) == 3)
        close(fd)
        let report = try s.collect()
        #expect(report.bytes == UInt64(size))
        let copy = try #require(lstatInfo(s.outputs + "/sparse"))
        #expect(copy.st_size == size)
        #expect(Int(copy.st_blocks) * 512 < 16 << 20, "the holes were written out")
        let input = open(s.outputs + "/sparse", O_RDONLY)
        try #require(input >= 0)
        defer { close(input) }
        var buffer = [UInt8](repeating: 0xAA, count: 16)
        #expect(pread(input, &buffer, 8, 0) == 8)
        #expect(Array(buffer.prefix(8)) == Array("start".utf8) + [0, 0, 0])
        #expect(pread(input, &buffer, 6, 512 << 20) == 6 && Array(buffer.prefix(6)) == Array("middle".utf8))
        #expect(pread(input, &buffer, 16, size - 3) == 3 && Array(buffer.prefix(3)) == Array("end".utf8))
    }

    @Test func collectsFromADescriptorAndLeavesItOpen() throws {
        let s = try Scratch()
        try s.write(s.staging + "/a.txt", "a")
        let fd = try FileDescriptor.open(FilePath(s.staging), .readOnly, options: [.directory, .closeOnExec])
        defer { try? fd.close() }
        let report = try ArtifactCollector().collect(from: fd, into: FilePath(s.outputs))
        #expect(report.files == 1)
        #expect(contents(s.outputs + "/a.txt") == Array("a".utf8))
        var info = stat()
        #expect(fstat(fd.rawValue, &info) == 0, "the caller's descriptor was closed")
        #expect(try ArtifactCollector().collect(from: fd, into: FilePath(s.outputs)).files == 1, "reusable")
    }

    // MARK: Limits

    @Test func depthLimitStopsAndReportsOnce() throws {
        let s = try Scratch()
        for path in ["d1", "d1/d2", "d1/d2/d3", "d1/d2/d3/d4", "d1/e2", "d1/e2/e3"] {
            try s.makeDirectory(s.staging + "/" + path)
        }
        try s.write(s.staging + "/d1/d2/d3/d4/f.txt", "too deep")
        try s.write(s.staging + "/d1/d2/d3/g.txt", "too deep")
        try s.write(s.staging + "/d1/d2/f.txt", "fine")
        let report = try s.collect(ArtifactCollector(maxDepth: 3))
        #expect(tree(s.outputs) == ["d1", "d1/d2", "d1/d2/d3", "d1/d2/f.txt", "d1/e2", "d1/e2/e3"])
        #expect(report.skipped.map(\.path) == ["d1/d2/d3"], "one entry, and none for the empty d1/e2/e3")
        #expect(report.skipped.map(\.kind) == [.tooDeep])
        #expect(report.skippedCount == 1)
    }

    /// The default limit on a tree deeper than it: stack and descriptors
    /// hold out (two per level) and the walk stops at level 128.
    @Test func defaultDepthLimitOnADeepTree() throws {
        let s = try Scratch()
        var fd = open(s.staging, O_RDONLY | O_DIRECTORY)
        try #require(fd >= 0)
        for level in 1...300 {
            try #require(mkdirat(fd, "d", 0o755) == 0)
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY)
            close(fd)
            try #require(next >= 0, "level \(level): \(errno)")
            fd = next
        }
        close(fd)
        let collector = ArtifactCollector()
        #expect(collector.maxDepth == 128)
        // On a thread with a 512 KiB stack (Darwin's secondary-thread size):
        // the recursion must fit in it.
        final class Outcome: @unchecked Sendable { var report: Result<ArtifactReport, any Error>? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let (staging, outputs) = (s.staging, s.outputs)
        let thread = Thread {
            outcome.report = Result { try collector.collect(from: FilePath(staging), into: FilePath(outputs)) }
            done.signal()
        }
        thread.stackSize = 512 << 10
        thread.start()
        done.wait()
        let report = try #require(outcome.report).get()
        #expect(report.directories == 128)
        #expect(report.skipped.map(\.kind) == [.tooDeep])
        #expect(report.skipped.first?.path == Array(repeating: "d", count: 128).joined(separator: "/"))
    }

    @Test func entryLimitStopsWithOneSummary() throws {
        let s = try Scratch()
        for index in 0..<50 { try s.write(s.staging + "/file-\(index)", "\(index)") }
        let report = try s.collect(ArtifactCollector(maxEntries: 10))
        #expect(report.files == 10)
        #expect(tree(s.outputs).count == 10)
        #expect(report.skipped.count == 1)
        #expect(report.skipped.first?.kind == .tooManyEntries)
        #expect(report.skipped.first?.reason.contains("10") == true)
        #expect(report.skippedCount == 1)
    }

    @Test func skippedListIsCappedButCounted() throws {
        let s = try Scratch()
        for index in 0..<20 { #expect(symlink("/etc", s.staging + "/link-\(index)") == 0) }
        let report = try s.collect(ArtifactCollector(maxSkippedListed: 5))
        #expect(report.skipped.count == 5)
        #expect(report.skippedCount == 20)
    }

    // MARK: Replacement

    @Test func secondCollectReplacesTheFirst() throws {
        let s = try Scratch()
        try s.makeDirectory(s.staging + "/old")
        try s.write(s.staging + "/old/old.txt", "old")
        _ = try s.collect()
        #expect(tree(s.outputs) == ["old", "old/old.txt"])
        let old = try #require(lstatInfo(s.outputs))
        try ArtifactCollector.removeTree(FilePath(s.staging))
        try s.makeDirectory(s.staging)
        try s.write(s.staging + "/new.txt", "new")
        _ = try s.collect()
        #expect(tree(s.outputs) == ["new.txt"])
        #expect(lstatInfo(s.outputs)?.st_ino != old.st_ino, "replaced by a new directory, not emptied")
        #expect(names(s.results) == Set(["outputs"]), "no partial or old copy left behind")
    }

    /// A one-shot run leaves the freeing of the previous outputs to its
    /// exit: they still go from the folder, whole, and the descriptors
    /// that hold them until then belong to the exit's helper.
    @Test func previousOutputsFreedAfterTheExitAreGoneFromTheFolder() throws {
        let s = try Scratch()
        try s.makeDirectory(s.staging + "/old")
        try s.makeDirectory(s.staging + "/old/deeper")
        try s.write(s.staging + "/old/old.txt", "old")
        try s.write(s.staging + "/old/deeper/d.txt", "d")
        _ = try s.collect()
        try ArtifactCollector.removeTree(FilePath(s.staging))
        try s.makeDirectory(s.staging)
        try s.write(s.staging + "/new.txt", "new")
        var collector = ArtifactCollector()
        collector.freesAfterExit = true
        _ = try s.collect(collector)
        #expect(tree(s.outputs) == ["new.txt"])
        #expect(names(s.results) == Set(["outputs"]), "no partial or old copy left behind")
    }

    @Test func failedCollectLeavesThePreviousOutputsIntact() throws {
        let s = try Scratch()
        try s.write(s.staging + "/old.txt", "old")
        _ = try s.collect()
        let missing = ArtifactCollector()
        for staging in [s.root + "/does-not-exist", s.root + "/staging-link"] {
            if staging.hasSuffix("link") { #expect(symlink(s.outside, staging) == 0) }
            do {
                _ = try missing.collect(from: FilePath(staging), into: FilePath(s.outputs))
                Issue.record("collecting \(staging) did not fail")
            } catch let error as SandboxError {
                #expect(error.code == .io)
                #expect(error.description.contains(staging))
            }
            #expect(tree(s.outputs) == ["old.txt"])
            #expect(contents(s.outputs + "/old.txt") == Array("old".utf8))
            #expect(names(s.results) == Set(["outputs"]))
        }
    }

    /// ENOSPC halfway: a 1 MiB tmpfs as the results folder (root only).
    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func copyFailingMidwayRemovesThePartialCopy() throws {
        let s = try Scratch()
        let mounted = "size=1m,mode=0755".withCString { mount("tmpfs", s.results, "tmpfs", 0, $0) }
        guard mounted == 0 else { return }
        defer { umount2(s.results, Int32(MNT_DETACH)) }
        try s.write(s.staging + "/old.txt", "old")
        _ = try s.collect()
        try ArtifactCollector.removeTree(FilePath(s.staging))
        try s.makeDirectory(s.staging)
        try s.write(s.staging + "/small.txt", "small")
        try s.write(s.staging + "/huge.bin", [UInt8](repeating: 7, count: 4 << 20))
        do {
            _ = try s.collect()
            Issue.record("a copy larger than the disk succeeded")
        } catch let error as SandboxError {
            #expect(error.code == .io)
            #expect(error.errno == .noSpace)
            #expect(error.description.contains("huge.bin"))
        }
        #expect(tree(s.outputs) == ["old.txt"])
        #expect(names(s.results) == Set(["outputs"]), "the partial copy was left behind")
    }

    @Test func symlinkedDestinationIsReplacedNotWrittenThrough() throws {
        let s = try Scratch()
        try s.write(s.outside + "/keep.txt", "keep")
        #expect(symlink(s.outside, s.outputs) == 0)
        try s.write(s.staging + "/a.txt", "a")
        _ = try s.collect()
        #expect(tree(s.outside) == ["keep.txt"], "something was written through the symlink")
        #expect(lstatInfo(s.outputs).map { $0.st_mode & S_IFMT } == S_IFDIR)
        #expect(tree(s.outputs) == ["a.txt"])
        #expect(names(s.results) == Set(["outputs"]))
    }

    @Test func destinationThatIsAFileIsReplaced() throws {
        let s = try Scratch()
        try s.write(s.outputs, "not a folder")
        try s.write(s.staging + "/a.txt", "a")
        _ = try s.collect()
        #expect(tree(s.outputs) == ["a.txt"])
    }

    // MARK: removeTree

    @Test func removeTreeDoesNotFollowSymlinks() throws {
        let s = try Scratch()
        try s.write(s.outside + "/file.txt", "outside", mode: 0o600)
        try s.makeDirectory(s.outside + "/sub", mode: 0o750)
        let victim = s.root + "/victim"
        try s.makeDirectory(victim)
        try s.makeDirectory(victim + "/nested")
        #expect(symlink(s.outside, victim + "/to-dir") == 0)
        #expect(symlink(s.outside + "/file.txt", victim + "/nested/to-file") == 0)
        #expect(symlink("../../outside/sub", victim + "/nested/relative") == 0)
        try ArtifactCollector.removeTree(FilePath(victim))
        #expect(lstatInfo(victim) == nil)
        #expect(tree(s.outside) == ["file.txt", "sub"])
        #expect(lstatInfo(s.outside + "/file.txt").map { $0.st_mode & 0o7777 } == 0o600)
        #expect(lstatInfo(s.outside + "/sub").map { $0.st_mode & 0o7777 } == 0o750)
    }

    @Test func removeTreeRemovesModeZeroDirectoriesAndToleratesMissingPaths() throws {
        let s = try Scratch()
        let victim = s.root + "/victim"
        try s.makeDirectory(victim)
        try s.makeDirectory(victim + "/locked")
        try s.makeDirectory(victim + "/locked/inner")
        try s.write(victim + "/locked/inner/file", "x", mode: 0)
        try #require(chmod(victim + "/locked/inner", 0) == 0)
        try #require(chmod(victim + "/locked", 0) == 0)
        try #require(chmod(victim, 0o500) == 0)
        try ArtifactCollector.removeTree(FilePath(victim))
        #expect(lstatInfo(victim) == nil)
        try ArtifactCollector.removeTree(FilePath(victim))
        try ArtifactCollector.removeTree(FilePath(s.root + "/missing/parent/too"))
        // A symlink given as the tree itself: the link goes, not its target.
        #expect(symlink(s.outside, s.root + "/link") == 0)
        try s.write(s.outside + "/kept", "kept")
        try ArtifactCollector.removeTree(FilePath(s.root + "/link"))
        #expect(lstatInfo(s.root + "/link") == nil)
        #expect(tree(s.outside) == ["kept"])
    }

    /// Deeper than PATH_MAX allows to name, and than descriptors allow to
    /// hold one per level.
    @Test func removeTreeRemovesVeryDeepTrees() throws {
        let s = try Scratch()
        let victim = s.root + "/victim"
        try s.makeDirectory(victim)
        var fd = open(victim, O_RDONLY | O_DIRECTORY)
        try #require(fd >= 0)
        for level in 0..<2500 {
            try #require(mkdirat(fd, "nested-level", geteuid() == 0 && level % 7 == 0 ? 0 : 0o755) == 0)
            let next = openat(fd, "nested-level", O_RDONLY | O_DIRECTORY)
            close(fd)
            try #require(next >= 0, "level \(level): \(errno)")
            fd = next
        }
        let file = openat(fd, "bottom.txt", O_WRONLY | O_CREAT, 0o644)
        #expect(file >= 0)
        close(file)
        close(fd)
        try ArtifactCollector.removeTree(FilePath(victim))
        #expect(lstatInfo(victim) == nil)
        #expect(names(s.root) == Set(["staging", "results", "outside"]))
    }

    // MARK: The report

    @Test func reportJSONUsesSnakeCaseAndAlwaysHasEveryKey() throws {
        let empty = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ArtifactReport())) as? [String: Any]
        #expect(Set(empty?.keys ?? [:].keys) == ["files", "directories", "bytes", "skipped", "skipped_count"])
        let report = ArtifactReport(files: 2, directories: 1, bytes: 10, skipped: [
            .init(path: "d\\xFF/dev", kind: .blockDevice, reason: "device nodes are not collected"),
        ], skippedCount: 3)
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["skipped_count"] as? Int == 3)
        let skipped = try #require((object["skipped"] as? [[String: Any]])?.first)
        #expect(Set(skipped.keys) == ["path", "kind", "reason"])
        #expect(skipped["kind"] as? String == "block_device")
        #expect(try JSONDecoder().decode(ArtifactReport.self, from: data) == report)
        let kinds = ArtifactReport.Skipped.Kind.allCases.map(\.rawValue)
        #expect(Set(kinds) == ["symlink", "fifo", "socket", "block_device", "char_device", "unknown", "too_deep",
                               "too_many_entries", "unreadable", "withheld"])
    }

    /// The daemon withholds syft.pub.yaml: a permission file the job wrote
    /// would decide who reads its outputs. At any depth; other names pass.
    @Test func withheldNamesAreNeverCollected() throws {
        let base = NSTemporaryDirectory() + "syft-withheld-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let staging = base + "/staging"
        try FileManager.default.createDirectory(atPath: staging + "/deep/er", withIntermediateDirectories: true)
        for path in ["/syft.pub.yaml", "/deep/er/syft.pub.yaml", "/deep/result.csv", "/syft.pub.yaml.txt"] {
            try "x".write(toFile: staging + path, atomically: false, encoding: .utf8)
        }
        let report = try ArtifactCollector(withheldNames: ["syft.pub.yaml"])
            .collect(from: FilePath(staging), into: FilePath(base + "/outputs"))
        #expect(!FileManager.default.fileExists(atPath: base + "/outputs/syft.pub.yaml"))
        #expect(!FileManager.default.fileExists(atPath: base + "/outputs/deep/er/syft.pub.yaml"))
        #expect(FileManager.default.fileExists(atPath: base + "/outputs/deep/result.csv"))
        #expect(FileManager.default.fileExists(atPath: base + "/outputs/syft.pub.yaml.txt"))
        #expect(Set(report.skipped.filter { $0.kind == .withheld }.map(\.path)) == ["syft.pub.yaml", "deep/er/syft.pub.yaml"])
        // Without the option, the one-shot CLI collects it like any file.
        let plain = try ArtifactCollector().collect(from: FilePath(staging), into: FilePath(base + "/plain"))
        #expect(plain.skippedCount == 0)
    }
    /// The previous outputs' permission file stays in the new outputs (the
    /// same file, linked: the outputs are never in place without it), the
    /// job's own is withheld, and a symlink by that name is not kept.
    @Test func keptNamesCarryThePreviousFileOver() throws {
        let base = NSTemporaryDirectory() + "syft-kept-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let staging = base + "/staging"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/outputs", withIntermediateDirectories: true)
        try "job's".write(toFile: staging + "/syft.pub.yaml", atomically: false, encoding: .utf8)
        try "owner's".write(toFile: base + "/outputs/syft.pub.yaml", atomically: false, encoding: .utf8)
        var before = stat()
        #expect(lstat(base + "/outputs/syft.pub.yaml", &before) == 0)
        let collector = ArtifactCollector(withheldNames: ["syft.pub.yaml"], keptNames: ["syft.pub.yaml"])
        _ = try collector.collect(from: FilePath(staging), into: FilePath(base + "/outputs"))
        var after = stat()
        #expect(lstat(base + "/outputs/syft.pub.yaml", &after) == 0)
        #expect(after.st_ino == before.st_ino)
        #expect(try String(contentsOfFile: base + "/outputs/syft.pub.yaml", encoding: .utf8) == "owner's")
        // A symlink there is not carried over (nor followed).
        try FileManager.default.removeItem(atPath: base + "/outputs/syft.pub.yaml")
        try FileManager.default.createSymbolicLink(atPath: base + "/outputs/syft.pub.yaml", withDestinationPath: "/etc/passwd")
        _ = try collector.collect(from: FilePath(staging), into: FilePath(base + "/outputs"))
        #expect(lstat(base + "/outputs/syft.pub.yaml", &after) != 0)
    }
    /// Nothing collected and nothing to replace (the outputs hold only the
    /// kept file): the folder stays the same one. Anything else in it, and
    /// it is replaced as usual.
    @Test func nothingToCollectLeavesOutputsHoldingOnlyKeptFiles() throws {
        let base = NSTemporaryDirectory() + "syft-nothing-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let staging = base + "/staging"
        for folder in [staging, base + "/outputs"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            chmod(folder, 0o755)
        }
        try "owner's".write(toFile: base + "/outputs/syft.pub.yaml", atomically: false, encoding: .utf8)
        var before = stat(), after = stat()
        #expect(lstat(base + "/outputs", &before) == 0)
        let collector = ArtifactCollector(withheldNames: ["syft.pub.yaml"], keptNames: ["syft.pub.yaml"])
        _ = try collector.collect(from: FilePath(staging), into: FilePath(base + "/outputs"))
        #expect(lstat(base + "/outputs", &after) == 0)
        #expect(after.st_ino == before.st_ino)
        // A stale output from an earlier run: replaced by the (empty) new outputs.
        try "old".write(toFile: base + "/outputs/old.csv", atomically: false, encoding: .utf8)
        _ = try collector.collect(from: FilePath(staging), into: FilePath(base + "/outputs"))
        #expect(lstat(base + "/outputs", &after) == 0)
        #expect(after.st_ino != before.st_ino)
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/outputs") == ["syft.pub.yaml"])
    }
}
