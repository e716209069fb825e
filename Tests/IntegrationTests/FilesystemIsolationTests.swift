import Foundation
import Testing

/// What the job can see and write of the filesystem.
@Suite struct FilesystemIsolationTests {
    @Test func jobFolderIsReadOnlyAndUnchanged() throws {
        let job = try JobFixture("""
        touch /job/new-file && echo wrote-new
        echo changed >> /job/run.sh && echo wrote-runsh
        rm -f /job/run.sh && echo removed-runsh
        mkdir /job/code/dir && echo made-dir
        echo done
        """)
        let before = try FileManager.default.contentsOfDirectory(atPath: job.path).sorted()
        let scriptBefore = try String(contentsOfFile: job.path + "/run.sh", encoding: .utf8)
        let run = job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        #expect(stdout == "done\n", "the job could modify its folder: \(stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: job.path).sorted() == before)
        #expect(try String(contentsOfFile: job.path + "/run.sh", encoding: .utf8) == scriptBefore)
        #expect(!FileManager.default.fileExists(atPath: job.path + "/outputs"), "the mount point leaked onto the host")
    }

    @Test func outputsAreWritableAtBothConventionalPlaces() throws {
        let job = try JobFixture("""
        echo one > /job/outputs/a.txt
        cd code && echo two > outputs/b.txt
        test "$SYFT_OUTPUT_DIR" = /job/outputs && echo env-ok
        """)
        let run = job.run()
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("outputs/a.txt") == "one\n")
        #expect(job.result("outputs/b.txt") == "two\n")
        #expect(job.result("stdout.txt") == "env-ok\n")
    }

    @Test func hostPathsAreInvisible() throws {
        let repository = TestSupport.repository.path
        let job = try JobFixture("""
        for p in /root /home /work /var /opt /srv /mnt /sys "\(repository)" /etc/shadow /etc/ssh /run; do
            if [ -e "$p" ]; then echo "visible $p"; fi
        done
        ls / | tr '\\n' ' '
        """)
        let run = job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        #expect(!stdout.contains("visible"), "\(stdout)")
        #expect(stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            == "bin dev etc job lib lib64 proc sbin tmp usr")
    }

    @Test func readableDespiteMode0600OwnedByInvoker() throws {
        let job = try JobFixture("cat /job/code/secret.txt")
        try "private data\n".write(toFile: job.path + "/code/secret.txt", atomically: true, encoding: .utf8)
        chmod(job.path + "/code/secret.txt", 0o600)
        let run = job.run()
        #expect(run.status == 0, "\(run.stderr) \(job.result("stderr.txt") ?? "")")
        #expect(job.result("stdout.txt") == "private data\n")
    }

    @Test func procSysIsReadOnlyAndDevIsMinimal() throws {
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
        let run = job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let lines = (job.result("stdout.txt") ?? "").split(separator: "\n").map(String.init)
        #expect(lines.first?.trimmingCharacters(in: .whitespaces)
            == "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero")
        #expect(lines.dropFirst() == ["0", "tmp-ok"], "\(lines)")
    }
}
