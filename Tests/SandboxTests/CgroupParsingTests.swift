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

    @Test func keyedValuesReadEventFiles() throws {
        let path = FilePath("/tmp/syft-cgroup-events-\(UInt32.random(in: 0 ... .max))")
        let fd = try FileDescriptor.open(path, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        _ = try fd.writeAll(Array("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n".utf8))
        try fd.close()
        defer { unlink(path.string) }
        #expect(CgroupFiles.keyedValues(path) == ["low": 0, "high": 0, "max": 3, "oom": 1, "oom_kill": 2])
    }
}
