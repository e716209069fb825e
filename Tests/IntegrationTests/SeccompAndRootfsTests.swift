import Foundation
import Testing

/// `--seccomp` and `--rootfs`: bringing one's own profile and root.
@Suite struct SeccompAndRootfsTests {
    /// Podman's default profile (Debian's golang-github-containers-common)
    /// loads and runs a job; its denials still hold and foreign ABIs still die.
    @Test func podmansProfileRunsAJob() async throws {
        let job = try JobFixture("./probe syscalls", withProbe: true)
        let run = await job.run(["--seccomp", "/usr/share/containers/seccomp.json"])
        #expect(run.status == 0, "\(run.stderr) \(job.result("stderr.txt") ?? "")")
        let lines = job.probeLines()
        #expect(lines["getpid"] == "ok")
        #expect(lines["bpf"] == "EPERM")
        #expect(lines["keyctl"] != "ok")
        #expect(lines["i386"] == "killed:SYS")
        #expect(lines["x32"] == "killed:SYS")
    }

    @Test func aBrokenProfileIsBadInput() async throws {
        let job = try JobFixture("echo ran")
        let profile = job.url.deletingLastPathComponent().appendingPathComponent("bad.json")
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_BOOM"}]}"#
            .write(to: profile, atomically: true, encoding: .utf8)
        let run = await job.run(["--seccomp", profile.path])
        #expect(run.status == 125)
        #expect(run.stderr.contains("unknown action 'SCMP_ACT_BOOM'"), "\(run.stderr)")
        #expect(run.stderr.contains(profile.path))
        #expect(!FileManager.default.fileExists(atPath: job.results.path + "/result.json"))
    }

    /// A prepared root with bash and its libraries only, and none of the
    /// mount points (/proc, /dev, /tmp, /job): the sandbox lays a read-only
    /// overlay holding them over the root and leaves the directory untouched.
    @Test func aPreparedRootIsUsedAndLeftUnchanged() async throws {
        let job = try JobFixture("""
        echo "in the prepared root: $(< /etc/marker)"
        test -e /usr/bin/python3 && echo "host /usr visible"
        echo out > /job/outputs/o.txt
        touch /new-file 2>/dev/null && echo "root writable"
        echo done
        """)
        let root = job.url.deletingLastPathComponent().appendingPathComponent("root")
        for directory in ["bin", "etc", "lib/x86_64-linux-gnu", "lib64"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(directory),
                                                    withIntermediateDirectories: true)
        }
        for file in ["/bin/bash", "/lib/x86_64-linux-gnu/libtinfo.so.6", "/lib/x86_64-linux-gnu/libc.so.6",
                     "/lib64/ld-linux-x86-64.so.2"] {
            // The contents, not the host's links (they point to paths this root lacks).
            let contents = try Data(contentsOf: URL(fileURLWithPath: file).resolvingSymlinksInPath())
            try contents.write(to: URL(fileURLWithPath: root.path + file))
            chmod(root.path + file, 0o755)
        }
        try "prepared\n".write(to: root.appendingPathComponent("etc/marker"), atomically: true, encoding: .utf8)
        let before = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
        let run = await job.run(["--rootfs", root.path])
        #expect(run.status == 0, "\(run.stderr) \(job.result("stderr.txt") ?? "")")
        #expect(job.result("stdout.txt") == "in the prepared root: prepared\ndone\n")
        #expect(job.result("outputs/o.txt") == "out\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted() == before,
                "the prepared root was modified")
    }
}
