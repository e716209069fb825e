@testable import Sandbox
import Glibc
import SystemPackage
import Testing

/// Finding the cgroup hierarchies from /proc/self/mountinfo and
/// /proc/self/cgroup, for the layouts users have (v2) and this machine has (v1).
@Suite struct CgroupParsingTests {
    let hybridMountinfo = """
    30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
    31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
    33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
    34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
    35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
    36 30 0:32 / /srv/odd\\040place rw shared:17 - cgroup cgroup rw,freezer
    40 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
    """

    @Test func mountsOfBothVersionsAreFoundWithTheirControllers() {
        let mounts = CgroupMount.parse(mountinfo: hybridMountinfo)
        #expect(mounts.count == 5)
        #expect(mounts.first { $0.isV2 }?.point == "/sys/fs/cgroup/unified")
        #expect(mounts.first { $0.controllers.contains("memory") }?.point == "/sys/fs/cgroup/memory")
        #expect(mounts.first { $0.controllers.contains("cpuacct") }?.controllers == ["rw", "cpu", "cpuacct"])
        // mountinfo escapes a space as \040.
        #expect(mounts.first { $0.controllers.contains("freezer") }?.point == "/srv/odd place")
    }

    @Test func membershipOfBothVersions() {
        let groups = CgroupMembership.parse("""
        12:pids:/user.slice/user-1000.slice
        4:memory:/process_api/abc
        3:cpu,cpuacct:/
        1:name=systemd:/user.slice
        0::/user.slice/user-1000.slice/session-2.scope
        """)
        #expect(groups.unified?.components.map(\.string) == ["user.slice", "user-1000.slice", "session-2.scope"])
        #expect(groups.v1["memory"]?.components.map(\.string) == ["process_api", "abc"])
        #expect(groups.v1["cpuacct"]?.components.isEmpty == true)
        #expect(groups.v1["pids"]?.components.count == 2)
    }

    @Test func pathComponentsCannotClimbOutOfTheHierarchy() {
        let path = RelativeGroupPath("/a/../../etc/./b")
        #expect(path.components.map(\.string) == ["a", "etc", "b"])
    }

    @Test func v2WithoutTheMemoryControllerIsNotUsed() {
        // This machine's kind: an almost empty v2 mount. The answer names why.
        let mounts = CgroupMount.parse(mountinfo: hybridMountinfo)
        let groups = CgroupMembership.parse("0::/nonexistent-\(UInt32.random(in: 0 ... .max))\n")
        guard case let .failure(reason) = CgroupSupport.prepareV2(mounts: mounts, groups: groups) else {
            Issue.record("a v2 hierarchy without controllers was accepted")
            return
        }
        #expect(reason.text.contains("lacks the memory and pids controller"))
    }

    /// v1 takes cpuacct (the job's CPU time) and the freezer when they are
    /// mounted, wherever they are, alone or co-mounted; never twice the same group.
    @Test func v1UsesCpuacctAndTheFreezerWhenMounted() throws {
        let root = "/tmp/syft-cgroup-v1-\(UInt32.random(in: 0 ... .max))"
        defer { _ = try? TempTree.rm(root) }
        for name in ["memory", "pids", "cpu,cpuacct", "freezer"] { try TempTree.mkdir("\(root)/\(name)/runner") }
        let mounts = CgroupMount.parse(mountinfo: """
        33 30 0:29 / \(root)/memory rw - cgroup cgroup rw,memory
        34 30 0:30 / \(root)/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
        35 30 0:31 / \(root)/pids rw - cgroup cgroup rw,pids
        36 30 0:32 / \(root)/freezer rw - cgroup cgroup rw,freezer
        """)
        let groups = CgroupMembership.parse("5:freezer:/runner\n4:memory:/runner\n3:cpu,cpuacct:/runner\n2:pids:/runner\n")
        guard case let .success(hierarchies) = CgroupSupport.prepareV1(mounts: mounts, groups: groups) else {
            Issue.record("v1 was refused")
            return
        }
        #expect(hierarchies.map(\.controller) == ["memory", "pids", "freezer", "cpuacct"])
        #expect(hierarchies.last?.parent == FilePath("\(root)/cpu,cpuacct/runner/syft-sandbox-run"))
        #expect(Set(hierarchies.map(\.parent)).count == hierarchies.count)

        // Without cpuacct: the rest still works (CPU time falls back to RLIMIT_CPU).
        let fewer = mounts.filter { !$0.controllers.contains("cpuacct") }
        guard case let .success(rest) = CgroupSupport.prepareV1(mounts: fewer, groups: groups) else {
            Issue.record("v1 without cpuacct was refused")
            return
        }
        #expect(rest.map(\.controller) == ["memory", "pids", "freezer"])

        // The freezer co-mounted with memory: one group serves both.
        let comounted = CgroupMount.parse(mountinfo: """
        33 30 0:29 / \(root)/memory rw - cgroup cgroup rw,memory,freezer
        34 30 0:30 / \(root)/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
        35 30 0:31 / \(root)/pids rw - cgroup cgroup rw,pids
        """)
        guard case let .success(shared) = CgroupSupport.prepareV1(mounts: comounted, groups: groups) else {
            Issue.record("co-mounted v1 was refused")
            return
        }
        #expect(shared.map(\.controller) == ["memory", "pids", "cpuacct"])
    }

    @Test func keyedValuesReadEventFiles() throws {
        let path = FilePath("/tmp/syft-cgroup-events-\(UInt32.random(in: 0 ... .max))")
        let fd = try FileDescriptor.open(path, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        _ = try fd.writeAll(Array("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\nbad x\nthree words 1\n  spaced   7\nmax 9".utf8))
        try fd.close()
        defer { unlink(path.string) }
        let values = CgroupFiles.keyedValues(path)
        // Lines that are not two words, the second a number, are no pairs.
        #expect(values.keys == ["low", "high", "max", "oom", "oom_kill", "spaced", "max"])
        #expect(values["max"] == 3) // the first
        #expect(values["spaced"] == 7)
        #expect(values["bad"] == nil)
        #expect(values["three"] == nil)
        #expect(values["oom_kill"] == 2)
        #expect(values["absent"] == nil)
    }

    /// The usage files are opened ahead and read after the job: a read
    /// of the same descriptor sees what the file holds then, whole,
    /// however long; a descriptor that could not be opened reads as nil.
    @Test func anOpenControlFileIsReadAgainFromItsStart() throws {
        let path = FilePath("/tmp/syft-cgroup-reread-\(UInt32.random(in: 0 ... .max))")
        let writer = try FileDescriptor.open(path, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        defer { unlink(path.string) }
        _ = try writer.writeAll(Array("max 0\n".utf8))
        let reader = open(path.string, O_RDONLY | O_CLOEXEC)
        #expect(reader >= 0)
        defer { close(reader) }
        #expect(CgroupFiles.read(reader) == "max 0\n")
        #expect(CgroupFiles.read(reader) == "max 0\n") // not at EOF after the first read
        let long = String(repeating: "oom_kill 1\n", count: 2_000) // 22,000 bytes: more than one read
        _ = try writer.seek(offset: 0, from: .start)
        _ = try writer.writeAll(Array(long.utf8))
        try writer.close()
        #expect(CgroupFiles.read(reader) == long)
        #expect(CgroupFiles.keyedValues(in: CgroupFiles.read(reader) ?? "")["oom_kill"] == 1)
        #expect(CgroupFiles.read(-1) == nil)
    }

    @Test func groupPathsGoBelowTheirMount() {
        #expect(RelativeGroupPath("/a/b").below("/sys/fs/cgroup/memory") == "/sys/fs/cgroup/memory/a/b")
        #expect(RelativeGroupPath("/").below("/sys/fs/cgroup/memory") == "/sys/fs/cgroup/memory")
        #expect(RelativeGroupPath("/x").below("/") == "/x")
        #expect(CgroupFiles.joined(["memory", "pids"], " and ") == "memory and pids")
        #expect(CgroupFiles.joined([], ", ") == "")
        #expect(CgroupFiles.words(" cpu io\tmemory\npids\n") == ["cpu", "io", "memory", "pids"])
    }
}

/// Directories for fake hierarchies (SandboxTests has no Foundation).
enum TempTree {
    static func mkdir(_ path: String) throws {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            if Glibc.mkdir(current, 0o755) != 0 && errno != EEXIST { throw Errno(rawValue: errno) }
        }
    }

    /// rm -r of a small tree of directories.
    static func rm(_ path: String) throws {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name == "." || name == ".." { continue }
                try rm(path + "/" + name)
            }
            closedir(directory)
            Glibc.rmdir(path)
        } else {
            unlink(path)
        }
    }
}

extension CgroupParsingTests {
    @Test func aControlFilesNumberIsItsFirstWord() {
        #expect(CgroupFiles.leadingNumber("123\n") == 123)
        #expect(CgroupFiles.leadingNumber("  42 7\n") == 42)
        #expect(CgroupFiles.leadingNumber("18446744073709551615") == UInt64.max)
        for text in ["", "\n", "max\n", "12a", "-1", "18446744073709551616", "1.5"] {
            #expect(CgroupFiles.leadingNumber(text) == nil, "\(text)")
        }
    }

    @Test func onlyCgroupLinesCountAndASpaceInAPathIsNoSeparator() {
        let mounts = CgroupMount.parse(mountinfo: """
        50 1 0:40 / /srv/a\\040-\\040cgroup\\040x rw shared:20 - tmpfs tmpfs rw
        51 1 0:41 / /srv/cg rw shared:21 - cgroupfs none rw
        52 1 0:42 / /srv/v1 rw - cgroup cgroup rw,pids
        """)
        // The first's escaped spaces are not " - cgroup"; "cgroupfs" is not "cgroup".
        #expect(mounts.map(\.point) == [FilePath("/srv/v1")])
    }
}
