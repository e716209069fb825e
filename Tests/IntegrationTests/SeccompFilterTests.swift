import Foundation
import Runner
import Sandbox
import Testing

/// The default seccomp filter on its own: the probe installs the compiled
/// program on the host, as root with every capability, and calls each
/// dangerous syscall with arguments the kernel rejects harmlessly once
/// past its capability check. Inside the sandbox many of these fail anyway
/// (no capabilities); here only the filter can make them EPERM, and the
/// unfiltered run shows the kernel would have answered otherwise.
@Suite struct SeccompFilterTests {
    static let denied = [
        "mount", "umount2", "pivot_root", "chroot", "unshare_ns", "unshare_user", "setns", "clone_newns", "keyctl",
        "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "io_uring_setup",
        "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv", "process_vm_writev", "reboot", "swapon",
        "swapoff", "acct", "quotactl", "fsopen", "fsconfig", "fsmount", "move_mount", "open_tree", "mount_setattr",
        "fspick",
    ]

    static func answers(_ program: String) async -> [String: String] {
        let run = await TestSupport.run([TestSupport.probe, "filtered", program])
        var answers: [String: String] = [:]
        for line in run.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { answers[parts[0]] = parts[1] }
        }
        return answers
    }

    @Test func theDefaultFilterDeniesTheDangerousSyscallsItself() async throws {
        try #require(getuid() == 0, "needs root: the unfiltered run must pass the capability checks")
        let file = NSTemporaryDirectory() + "syft-filter-\(UUID().uuidString).bpf"
        defer { unlink(file) }
        try Data(try BuiltinPolicies.seccompProgram().bytes).write(to: URL(fileURLWithPath: file))
        let unfiltered = await Self.answers("none")
        let filtered = await Self.answers(file)
        for name in Self.denied {
            #expect(filtered[name] == "EPERM", "\(name): \(filtered[name] ?? "no answer")")
            #expect(unfiltered[name] != nil && unfiltered[name] != "EPERM",
                    "\(name): without the filter the kernel already says \(unfiltered[name] ?? "nothing"); the test proves nothing")
        }
        // clone3's flags are out of a filter's reach: ENOSYS, so libc falls back to clone (filtered above).
        #expect(filtered["clone3"] == "ENOSYS" && unfiltered["clone3"] == "ok")
        // Foreign ABIs: the process is killed, whatever the call.
        #expect(filtered["i386"] == "killed:SYS" && unfiltered["i386"] == "ok")
        #expect(filtered["x32"] == "killed:SYS" && unfiltered["x32"]?.hasPrefix("killed") == false)
        // And an ordinary call goes through.
        #expect(filtered["getpid"] == "ok")
    }
}
