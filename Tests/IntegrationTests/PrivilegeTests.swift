import Foundation
import Testing

/// Identity, capabilities, no_new_privs and the seccomp filter.
@Suite struct PrivilegeTests {
    @Test func everyCapabilitySetIsEmptyAndNoNewPrivsAndSeccompAreOn() async throws {
        let job = try JobFixture("grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status")
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        let status = job.result("stdout.txt") ?? ""
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(status.contains("\(set):\t0000000000000000"), "\(set) not empty: \(status)")
        }
        #expect(status.contains("NoNewPrivs:\t1"))
        #expect(status.contains("Seccomp:\t2"))
    }

    @Test func deniedSyscallsReturnEPERMAndForeignABIsAreKilled() async throws {
        let job = try JobFixture("./probe syscalls", withProbe: true)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr) \(job.result("stderr.txt") ?? "")")
        let lines = job.probeLines()
        let denied = ["mount", "umount2", "pivot_root", "chroot", "unshare_user", "unshare_ns", "unshare_net",
                      "setns", "clone_newuser", "clone_newpid", "keyctl", "add_key", "request_key", "bpf",
                      "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at", "kexec_load",
                      "kexec_file_load", "init_module", "finit_module", "delete_module", "io_uring_setup",
                      "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv", "process_vm_writev",
                      "reboot", "swapon", "swapoff", "acct", "quotactl"]
        for name in denied {
            #expect(lines[name] == "EPERM", "\(name) returned \(lines[name] ?? "nothing")")
        }
        // clone3's flags are out of the filter's reach: it is refused as if absent.
        #expect(lines["clone3"] == "ENOSYS")
        #expect(lines["getpid"] == "ok")
        #expect(lines["fork"] == "ok")
        #expect(lines["x32"] == "killed:SYS")
        #expect(lines["i386"] == "killed:SYS")
    }

    @Test func nestedUserNamespacesAndMountsAreRefused() async throws {
        let job = try JobFixture("""
        unshare -U true 2>/dev/null && echo nested-userns
        unshare -r true 2>/dev/null && echo nested-root
        mount -t tmpfs none /tmp 2>/dev/null && echo mounted
        echo done
        """)
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "done\n")
    }

    @Test func jobProcessesNeverRunAsHostRoot() async throws {
        let marker = "\(Int.random(in: 100_000...999_999))"
        // A long sleep that this test ends once it has seen it: the job's
        // process is looked at however late a loaded machine starts it.
        let job = try JobFixture("exec sleep 60.\(marker)")
        let task = Task { await job.run() }
        var uids: [String] = []
        var seen: [Int32] = []
        _ = try await TestSupport.waitUntil {
            seen = TestSupport.processes(matching: "sleep\u{0}60.\(marker)")
            return !seen.isEmpty
        }
        for pid in seen {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) {
                uids.append(String(line))
            }
            kill(pid, SIGKILL)
        }
        _ = await task.value
        #expect(!uids.isEmpty, "the job's process was not found")
        for line in uids {
            let ids = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst()
            #expect(!ids.contains("0"), "a job process runs as host root: \(line)")
        }
    }

    /// Run by an unprivileged user (what most users do), the job maps to
    /// that user's own id, and the sandbox holds all the same.
    @Test func anUnprivilegedRunnerMapsTheJobToItsOwnID() async throws {
        let job = try JobFixture("""
        cat /proc/self/uid_map | tr -s ' '
        grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr '\\t' ' '
        echo written > /job/outputs/o.txt
        """)
        let base = job.url.deletingLastPathComponent().path
        #expect(chown(base, 65534, 65534) == 0)
        for path in [job.path, job.path + "/run.sh", job.path + "/code"] { #expect(chown(path, 65534, 65534) == 0) }
        let run = await TestSupport.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                   TestSupport.binary, "--results", job.results.path, job.path])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = (job.result("stdout.txt") ?? "").split(separator: "\n").map(String.init)
        #expect(lines == [" 0 65534 1", "CapEff: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2"], "\(lines)")
        var info = stat()
        #expect(stat(job.results.path + "/outputs/o.txt", &info) == 0)
        #expect(info.st_uid == 65534, "collected outputs belong to the invoking user")

        // A job folder this user cannot read is bad input: one line, 125.
        #expect(chown(job.path, 0, 0) == 0 && chmod(job.path, 0o700) == 0)
        let unreadable = await TestSupport.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                          TestSupport.binary, "--results", job.results.path + "-2", job.path])
        #expect(unreadable.status == 125)
        #expect(unreadable.stderr.contains("cannot read the job folder"), "\(unreadable.stderr)")
        #expect(unreadable.stderr.split(separator: "\n").count == 1)
    }
}
