import Foundation
import Testing

/// The job folder without `outputs/` (and `code/outputs/`): PID 1 lays it
/// out in the root, a bind per entry beside the mount points
/// (mount_spread.c), or, past 32 entries, puts an overlay over it. Either
/// way the job sees the folder as it is, read-only, with its outputs at
/// both places, and the folder is left as it was.
@Suite struct JobFolderLayoutTests {
    /// Lines of /proc/self/mountinfo for /job and below, as "mount point fstype".
    static let mountsScript = #"awk '$5 ~ /^\/job/ { for (i = 7; $i != "-"; i++); print $5, $(i + 1) }' /proc/self/mountinfo"#

    func fixture(_ script: String) throws -> JobFixture {
        let job = try JobFixture(script)
        let code = job.url.appendingPathComponent("code")
        try "print(1)\n".write(to: code.appendingPathComponent("main.py"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: code.appendingPathComponent("data/deep"),
                                                withIntermediateDirectories: true)
        try "deep\n".write(to: code.appendingPathComponent("data/deep/file"), atomically: true, encoding: .utf8)
        try "line\nbreak\n".write(to: job.url.appendingPathComponent("a\nb"), atomically: true, encoding: .utf8)
        try "dash\n".write(to: job.url.appendingPathComponent("-rf"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: job.path + "/link", withDestinationPath: "code/main.py")
        try FileManager.default.createSymbolicLink(atPath: job.path + "/dangling", withDestinationPath: "/nowhere")
        return job
    }

    @Test func aSmallFolderIsLaidOutEntryByEntryAndSeenWhole() async throws {
        let job = try fixture("""
        cd /job
        printf '%s|' *; echo
        cat ./-rf "$(printf 'a\\nb')" link code/main.py code/data/deep/file
        readlink dangling
        touch /job/new 2>/dev/null || echo no-new
        touch /job/code/new 2>/dev/null || echo no-new-in-code
        echo x >> /job/run.sh 2>/dev/null || echo no-write
        echo out > /job/outputs/a && echo out2 > /job/code/outputs/b && echo outputs-ok
        \(Self.mountsScript)
        """)
        let before = try FileManager.default.contentsOfDirectory(atPath: job.path).sorted()
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        let lines = stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(stdout.hasPrefix("-rf|a\nb|code|dangling|link|outputs|run.sh|\n"), "\(stdout)")
        #expect(stdout.contains("dash\nline\nbreak\nprint(1)\nprint(1)\ndeep\n/nowhere\n"), "\(stdout)")
        #expect(stdout.contains("no-new\nno-new-in-code\nno-write\noutputs-ok\n"), "\(stdout)")
        // No overlay: the entries are binds of their own, the mount points
        // directories of the root.
        let mounts = lines.filter { $0.hasPrefix("/job") }
        #expect(!mounts.contains { $0.hasSuffix(" overlay") }, "\(mounts)")
        #expect(mounts.contains { $0.hasPrefix("/job/run.sh ") }, "\(mounts)")
        #expect(mounts.contains { $0.hasPrefix("/job/code/main.py ") }, "\(mounts)")
        #expect(mounts.contains { $0.hasPrefix("/job/code/data ") }, "\(mounts)")
        #expect(mounts.contains("/job/outputs tmpfs") && mounts.contains("/job/code/outputs tmpfs"), "\(mounts)")
        #expect(job.result("outputs/a") == "out\n" && job.result("outputs/b") == "out2\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: job.path).sorted() == before)
        #expect(!FileManager.default.fileExists(atPath: job.path + "/outputs"))
        #expect(!FileManager.default.fileExists(atPath: job.path + "/code/outputs"))
    }

    /// Past 32 entries the overlay takes over: the same view.
    @Test func aLargeFolderGetsTheOverlay() async throws {
        let job = try fixture("""
        ls /job | wc -l
        cat /job/f39 /job/code/main.py
        touch /job/new 2>/dev/null || echo no-new
        echo out > /job/outputs/a && echo out2 > /job/code/outputs/b && echo outputs-ok
        \(Self.mountsScript)
        """)
        for index in 0..<40 {
            try "\(index)\n".write(to: job.url.appendingPathComponent("f\(index)"), atomically: true, encoding: .utf8)
        }
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        // 40 files, -rf, a\nb (two lines), code, dangling, link, outputs, run.sh
        #expect(stdout.hasPrefix("48\n39\nprint(1)\nno-new\noutputs-ok\n"), "\(stdout)")
        #expect(stdout.contains("/job overlay\n"), "\(stdout)")
        #expect(job.result("outputs/a") == "out\n" && job.result("outputs/b") == "out2\n")
    }

    /// A file named `outputs` in the folder is hidden by the mount point,
    /// as the overlay's directory hid it; the host file is untouched.
    @Test func aFileNamedOutputsIsHiddenByTheMountPoint() async throws {
        let job = try JobFixture("echo new > /job/outputs/a && cat /job/outputs/a")
        try "host\n".write(to: job.url.appendingPathComponent("outputs"), atomically: true, encoding: .utf8)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "new\n")
        #expect(try String(contentsOfFile: job.path + "/outputs", encoding: .utf8) == "host\n")
    }
}
