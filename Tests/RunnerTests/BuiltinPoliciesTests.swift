import Glibc
import Runner
import Sandbox
import Testing

@Suite struct BuiltinPoliciesTests {
    @Test func skeletonComesFromRootfsEtc() {
        let paths = BuiltinPolicies.skeleton.files.map(\.path)
        for path in ["/etc/passwd", "/etc/group", "/etc/hosts", "/etc/hostname", "/etc/nsswitch.conf", "/etc/resolv.conf"] {
            #expect(paths.contains(path), "missing \(path)")
        }
        let passwd = BuiltinPolicies.skeleton.files.first { $0.path == "/etc/passwd" }
        #expect(passwd.map { String(decoding: $0.contents, as: UTF8.self) }?.hasPrefix("root:x:0:0:") == true)
    }

    /// The issue's list: each must be denied with EPERM by the default profile.
    @Test func defaultProfileDeniesTheDangerousFamiliesWithEPERM() throws {
        let bytes = try #require(BuiltinPolicies.file(BuiltinPolicies.defaultSeccompKey))
        let profile = try SeccompProfile.parse(bytes, source: "default.json")
        #expect(profile.defaultAction == .errno(UInt32(ENOSYS)), "an allowlist: the rest is ENOSYS")
        let required = ["mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key",
                        "request_key", "bpf", "perf_event_open", "userfaultfd", "open_by_handle_at",
                        "name_to_handle_at", "kexec_load", "kexec_file_load", "init_module", "finit_module",
                        "delete_module", "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace",
                        "process_vm_readv", "process_vm_writev", "reboot", "swapon", "swapoff", "acct", "quotactl",
                        "fsopen", "fsmount", "move_mount", "open_tree"]
        for name in required {
            let rules = profile.rules.filter { $0.name == name }
            #expect(!rules.isEmpty && rules.allSatisfy { $0.action == .errno(UInt32(EPERM)) && $0.conditions.isEmpty },
                    "\(name) is not denied with EPERM")
        }
        // clone: allowed only with no namespace flag; clone3 reported missing.
        let clone = profile.rules.filter { $0.name == "clone" }
        #expect(clone.contains { $0.action == .allow && $0.conditions.first?.op == .maskedEqual
            && $0.conditions.first?.valueTwo == 0 })
        #expect(clone.filter { $0.action == .errno(UInt32(EPERM)) }.count == 8)
        #expect(profile.rules.filter { $0.name == "clone3" }.map(\.action) == [.errno(UInt32(ENOSYS))])
        // Nothing is both allowed unconditionally and denied.
        let allowed = Set(profile.rules.filter { $0.action == .allow && $0.conditions.isEmpty }.map(\.name))
        #expect(allowed.isDisjoint(with: required))
        let program = try BuiltinPolicies.seccompProgram()
        #expect(program.instructionCount < 4096)
    }

    /// The program compiled at build time is the one the JSON gives now:
    /// the binary cannot carry a stale or different default.
    @Test func thePrecompiledDefaultIsTheDefaultProfileCompiled() throws {
        let precompiled = try #require(BuiltinPolicies.precompiledDefault())
        let bytes = try #require(BuiltinPolicies.file(BuiltinPolicies.defaultSeccompKey))
        let fresh = try SeccompProgram(try SeccompProfile.parse(bytes, source: "default.json"), source: "default.json")
        #expect(precompiled.bytes == fresh.bytes)
        #expect(precompiled.skippedSyscalls == fresh.skippedSyscalls)
        #expect(try BuiltinPolicies.seccompProgram().bytes == fresh.bytes)
    }

    @Test func aMissingOrBrokenProfileFileIsAClearError() throws {
        do {
            _ = try BuiltinPolicies.seccompProgram(path: "/nonexistent/profile.json")
            Issue.record("a missing profile was accepted")
        } catch let error as SandboxError {
            #expect(error.description.contains("/nonexistent/profile.json"))
        }
    }
}
