import Foundation
import Testing

/// What the job can see and write of the filesystem.
@Suite struct FilesystemIsolationTests {
    @Test func jobFolderIsReadOnlyAndUnchanged() async throws {
        let job = try JobFixture("""
        touch /job/new-file && echo wrote-new
        echo changed >> /job/run.sh && echo wrote-runsh
        rm -f /job/run.sh && echo removed-runsh
        mkdir /job/code/dir && echo made-dir
        echo done
        """)
        let before = try FileManager.default.contentsOfDirectory(atPath: job.path).sorted()
        let scriptBefore = try String(contentsOfFile: job.path + "/run.sh", encoding: .utf8)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        #expect(stdout == "done\n", "the job could modify its folder: \(stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: job.path).sorted() == before)
        #expect(try String(contentsOfFile: job.path + "/run.sh", encoding: .utf8) == scriptBefore)
        #expect(!FileManager.default.fileExists(atPath: job.path + "/outputs"), "the mount point leaked onto the host")
    }

    @Test func outputsAreWritableAtBothConventionalPlaces() async throws {
        let job = try JobFixture("""
        echo one > /job/outputs/a.txt
        cd code && echo two > outputs/b.txt
        test "$SYFT_OUTPUT_DIR" = /job/outputs && echo env-ok
        """)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("outputs/a.txt") == "one\n")
        #expect(job.result("outputs/b.txt") == "two\n")
        #expect(job.result("stdout.txt") == "env-ok\n")
    }

    @Test func hostPathsAreInvisible() async throws {
        let repository = TestSupport.repository.path
        let job = try JobFixture("""
        for p in /root /home /work /var /opt /srv /mnt /sys "\(repository)" /etc/shadow /etc/ssh /run; do
            if [ -e "$p" ]; then echo "visible $p"; fi
        done
        ls / | tr '\\n' ' '
        """)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        #expect(!stdout.contains("visible"), "\(stdout)")
        #expect(stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            == "bin dev etc job lib lib64 proc sbin tmp usr")
    }

    @Test func readableDespiteMode0600OwnedByInvoker() async throws {
        let job = try JobFixture("cat /job/code/secret.txt")
        try "private data\n".write(toFile: job.path + "/code/secret.txt", atomically: true, encoding: .utf8)
        chmod(job.path + "/code/secret.txt", 0o600)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr) \(job.result("stderr.txt") ?? "")")
        #expect(job.result("stdout.txt") == "private data\n")
    }

    @Test func procSysIsReadOnlyAndDevIsMinimal() async throws {
        let job = try JobFixture("""
        echo sandbox2 > /proc/sys/kernel/hostname 2>/dev/null && echo wrote-proc-sys
        echo x > /proc/sysrq-trigger 2>/dev/null && echo wrote-sysrq
        ls /dev | tr '\\n' ' '; echo
        test -e /dev/mem && echo has-mem
        test -e /dev/kmsg && echo has-kmsg
        ls /dev | grep -E '^(sd|vd|nvme|loop|dm-)' && echo has-disk
        cat /proc/kcore | head -c 1 | wc -c
        echo x > /tmp/t && echo tmp-ok
        touch /newfile 2>/dev/null && echo root-writable
        true
        """)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let lines = (job.result("stdout.txt") ?? "").split(separator: "\n").map(String.init)
        #expect(lines.first?.trimmingCharacters(in: .whitespaces)
            == "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero")
        #expect(lines.dropFirst() == ["0", "tmp-ok"], "\(lines)")
    }

    /// The /proc directories Docker masks (those this host has): a
    /// read-only mount of their own, empty, and nothing can be made in them.
    @Test(.enabled(if: Self.maskedProcDirectories.contains { FileManager.default.fileExists(atPath: "/proc/" + $0) }))
    func maskedProcDirectoriesAreEmptyAndReadOnly() async throws {
        let present = Self.maskedProcDirectories.filter { FileManager.default.fileExists(atPath: "/proc/" + $0) }
        let job = try JobFixture("""
        for d in \(present.joined(separator: " ")); do
          echo "$d $(ls -A /proc/$d | wc -l) $(awk -v p=/proc/$d '$5 == p { split($6, o, ","); print o[1] }' /proc/self/mountinfo)"
          touch /proc/$d/x 2>/dev/null && echo "$d: made a file"
          mkdir /proc/$d/y 2>/dev/null && echo "$d: made a folder"
        done
        true
        """)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let lines = (job.result("stdout.txt") ?? "").split(separator: "\n").map(String.init)
        #expect(lines == present.map { "\($0) 0 ro" }, "\(lines)")
    }

    static let maskedProcDirectories = ["acpi", "scsi", "asound"]

    /// A job folder whose `outputs` and `code/outputs` are symlinks to a
    /// host directory: the mounts land on real directories of the sandbox
    /// (the shim opens targets with RESOLVE_NO_SYMLINKS and lays mount
    /// points over the folder), never on the host directory.
    @Test func symlinksInTheJobFolderCannotRedirectMounts() async throws {
        let job = try JobFixture("""
        echo written > /job/outputs/a.txt
        echo written > /job/code/outputs/b.txt
        echo done
        """)
        let host = job.url.deletingLastPathComponent().appendingPathComponent("host-target")
        try FileManager.default.createDirectory(at: host, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: job.path + "/outputs", withDestinationPath: host.path)
        try FileManager.default.createSymbolicLink(atPath: job.path + "/code/outputs", withDestinationPath: host.path)
        let run = await job.run()
        #expect(try FileManager.default.contentsOfDirectory(atPath: host.path).isEmpty,
                "a mount followed a symlink onto the host")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("outputs/a.txt") == "written\n")
        #expect(job.result("outputs/b.txt") == "written\n")
    }

    /// The same with a prepared root whose /tmp and /proc are symlinks to
    /// host directories.
    @Test func symlinksInAPreparedRootCannotRedirectMounts() async throws {
        let job = try JobFixture("echo x > /tmp/x; echo done")
        let base = job.url.deletingLastPathComponent()
        let host = base.appendingPathComponent("host-target")
        let root = base.appendingPathComponent("root")
        try FileManager.default.createDirectory(at: host, withIntermediateDirectories: true)
        for directory in ["bin", "lib/x86_64-linux-gnu", "lib64"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(directory),
                                                    withIntermediateDirectories: true)
        }
        for file in ["/bin/bash", "/lib/x86_64-linux-gnu/libtinfo.so.6", "/lib/x86_64-linux-gnu/libc.so.6",
                     "/lib64/ld-linux-x86-64.so.2"] {
            try Data(contentsOf: URL(fileURLWithPath: file).resolvingSymlinksInPath())
                .write(to: URL(fileURLWithPath: root.path + file))
            chmod(root.path + file, 0o755)
        }
        try FileManager.default.createSymbolicLink(atPath: root.path + "/tmp", withDestinationPath: host.path)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/proc", withDestinationPath: host.path)
        _ = await job.run(["--rootfs", root.path])
        #expect(try FileManager.default.contentsOfDirectory(atPath: host.path).isEmpty,
                "a mount followed a symlink onto the host")
    }
}
