import Glibc
import Sandbox
import Testing

@Suite struct SeccompProfileTests {
    let amd64 = SeccompProfile.Environment(architecture: "amd64", kernel: (6, 18))

    func parse(_ json: String, environment: SeccompProfile.Environment? = nil) throws -> SeccompProfile {
        try SeccompProfile.parse(Array(json.utf8), source: "test.json", environment: environment ?? amd64)
    }

    func parseError(_ json: String) -> SandboxError? {
        do {
            _ = try parse(json)
            return nil
        } catch let error as SandboxError {
            return error
        } catch {
            return nil
        }
    }

    @Test func readsNamesActionsErrnoAndArguments() throws {
        let profile = try parse("""
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
          {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
          {"name": "mount", "action": "SCMP_ACT_ERRNO"},
          {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
          {"names": ["kill"], "action": "SCMP_ACT_KILL"}
        ]}
        """)
        #expect(profile.defaultAction == .errno(38))
        #expect(profile.rules.map(\.name) == ["read", "write", "mount", "clone", "kill"])
        #expect(profile.rules[2].action == .errno(UInt32(EPERM)), "ERRNO without errnoRet means EPERM")
        #expect(profile.rules[3].conditions == [.init(index: 0, op: .maskedEqual, value: 2114060288, valueTwo: 0)])
        #expect(profile.rules[4].action == .killThread, "Docker's SCMP_ACT_KILL kills the thread")
    }

    @Test func includesAndExcludesFollowDockersRules() throws {
        let json = """
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
          {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
          {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
          {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
          {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.1"}},
          {"names": ["old_call"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.4"}},
          {"names": ["recent_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.18"}},
          {"names": ["not_s390"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["s390x"]}}
        ]}
        """
        let rules = try parse(json).rules
        #expect(rules.map(\.name) == ["arch_prctl", "bpf", "recent_call", "not_s390"])
        #expect(rules[1].action == .errno(UInt32(EPERM)), "without CAP_SYS_ADMIN, bpf is denied")
        let arm = try parse(json, environment: .init(architecture: "arm64", kernel: (5, 4))).rules
        #expect(arm.map(\.name) == ["set_tls", "bpf", "not_s390"])
    }

    @Test func errorsNameTheRuleAndTheFile() {
        let unknownAction = parseError("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_EXPLODE"}]}
        """)
        #expect(unknownAction?.code == .invalidSeccompProfile)
        #expect(unknownAction?.description.contains("syscalls[0] (read): unknown action 'SCMP_ACT_EXPLODE'") == true)
        #expect(unknownAction?.description.contains("test.json") == true)

        let notify = parseError("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}
        """)
        #expect(notify?.description.contains("needs a supervisor") == true)

        let badOp = parseError("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ROUGHLY"}]}]}
        """)
        #expect(badOp?.description.contains("unknown comparison 'SCMP_CMP_ROUGHLY'") == true)

        let badIndex = parseError("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
        """)
        #expect(badIndex?.description.contains("argument index 6") == true)

        #expect(parseError("{\"defaultAction\": ")?.description.contains("invalid JSON") == true)
        #expect(parseError("{\"syscalls\": []}")?.description.contains("missing 'defaultAction'") == true)
        #expect(parseError("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"action\": \"SCMP_ACT_ALLOW\"}]}")?
            .description.contains("names no syscall") == true)
    }

    @Test func compilesToABoundedProgramAndSkipsUnknownNames() throws {
        let profile = try parse("""
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
          {"names": ["read", "write", "exit_group", "no_such_syscall_here"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
        ]}
        """)
        let program = try SeccompProgram(profile, source: "test.json")
        #expect(program.skippedSyscalls == 1)
        #expect(program.instructionCount > 3 && program.instructionCount < 4096)
    }

    /// Podman's and Docker's default profile, as Debian ships it
    /// (golang-github-containers-common, installed by scripts/install-deps.sh).
    @Test func podmansProfileLoadsAndCompiles() throws {
        let path = "/usr/share/containers/seccomp.json"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0, "\(path) is missing: run scripts/install-deps.sh")
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        let profile = try SeccompProfile.parse(bytes, source: path)
        #expect(profile.defaultAction == .errno(UInt32(ENOSYS)))
        // Capability-gated allowances drop out: the job has no capabilities.
        #expect(profile.rules.contains { $0.name == "bpf" && $0.action == .errno(UInt32(EPERM)) })
        #expect(!profile.rules.contains { $0.name == "bpf" && $0.action == .allow })
        let program = try SeccompProgram(profile, source: path)
        #expect(program.instructionCount > 100)
    }
}
