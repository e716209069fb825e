import Foundation
import Sandbox
import Testing

/// The range encoding (CSandbox's seccomp_ranges.c) must decide every
/// syscall exactly as libseccomp's program does. Both programs run in a
/// classic-BPF interpreter over every syscall number up to past the
/// highest, the edges of the number space, other architectures, and
/// arguments on both sides of every condition of the profile.
@Suite struct SeccompRangesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func profile(_ json: String) throws -> SeccompProfile {
        try SeccompProfile.parse(Array(json.utf8), source: "test.json")
    }

    static func profile(at path: String) throws -> SeccompProfile {
        let data = try #require(FileManager.default.contents(atPath: path), "\(path) is missing")
        return try SeccompProfile.parse(Array(data), source: path)
    }

    /// Both encodings of `profile`; the range one must have been possible.
    static func bothEncodings(_ profile: SeccompProfile) throws -> (ranges: BPFProgram, libseccomp: BPFProgram) {
        let ranges = try SeccompProgram(profile, source: "test.json", encoding: .ranges)
        let reference = try SeccompProgram(profile, source: "test.json", encoding: .libseccomp)
        #expect(ranges.encoding == .ranges, "this profile's program should be readable by ranges")
        #expect(reference.encoding == .libseccomp)
        return (BPFProgram(ranges.bytes), BPFProgram(reference.bytes))
    }

    /// Argument vectors on both sides of every condition in `profile`.
    static func argumentVectors(_ profile: SeccompProfile) -> [[UInt64]] {
        var vectors: Set<[UInt64]> = [[0, 0, 0, 0, 0, 0], [UInt64](repeating: .max, count: 6)]
        for rule in profile.rules {
            var satisfying = [UInt64](repeating: 0, count: 6)
            for condition in rule.conditions {
                let index = Int(condition.index)
                var values: [UInt64] = [condition.value, condition.value &+ 1, condition.value &- 1, condition.valueTwo,
                                        condition.valueTwo &+ 1, condition.value | condition.valueTwo,
                                        condition.value >> 32, condition.value & 0xffff_ffff, condition.value | 1 << 32]
                if condition.op == .maskedEqual {
                    let lowest = condition.value & (~condition.value &+ 1)
                    values += [condition.valueTwo, condition.valueTwo ^ lowest]
                    satisfying[index] = condition.valueTwo
                } else {
                    satisfying[index] = condition.value
                }
                for value in values {
                    var vector = [UInt64](repeating: 0, count: 6)
                    vector[index] = value
                    vectors.insert(vector)
                }
            }
            vectors.insert(satisfying)
        }
        return vectors.sorted { $0.lexicographicallyPrecedes($1) }
    }

    static let native: UInt32 = 0xC000_003E // AUDIT_ARCH_X86_64
    static let otherArchitectures: [UInt32] = [0x4000_0003 /* i386 */, 0xC000_00B7 /* aarch64 */, 0, .max]
    /// Every number up to past the highest syscall, and the number space's edges
    /// (x32's numbers are the native ones with bit 30 set).
    static let numbers: [UInt32] = Array(0...1100) + (0...20).map { 0x4000_0000 | $0 } + [
        0x3FFF_FFFF, 0x4000_0000 + 334, 0x4000_0000 + 512, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF,
    ]

    /// Runs both programs over the probes; the first few differences are recorded.
    static func expectSameDecisions(_ profile: SeccompProfile, _ name: String) throws {
        let (ranges, reference) = try bothEncodings(profile)
        let vectors = argumentVectors(profile)
        var differences = 0
        func compare(_ number: UInt32, _ arch: UInt32, _ args: [UInt64]) {
            let data = SeccompData(nr: number, arch: arch, args: args)
            let expected = reference.run(data), got = ranges.run(data)
            if expected != got {
                differences += 1
                if differences <= 5 {
                    Issue.record("\(name): syscall \(number) arch \(String(arch, radix: 16)) args \(args): libseccomp \(String(describing: expected)), ranges \(String(describing: got))")
                }
            }
        }
        for number in numbers {
            for args in vectors { compare(number, native, args) }
            for arch in otherArchitectures { compare(number, arch, [0, 0, 0, 0, 0, 0]) }
        }
        #expect(differences == 0, "\(name): \(differences) decisions differ")
    }

    @Test func theDefaultProfileDecidesAsLibseccompAndIsLessThanHalfItsLength() throws {
        let profile = try Self.profile(at: Self.repository.appendingPathComponent("policies/seccomp/default.json").path)
        try Self.expectSameDecisions(profile, "default.json")
        let (ranges, reference) = try Self.bothEncodings(profile)
        #expect(ranges.count * 2 < reference.count, "ranges \(ranges.count), libseccomp \(reference.count) instructions")
    }

    /// Docker's and Podman's profile: many argument conditions (personality,
    /// clone, socket, ...), allowances by kernel version and capability.
    @Test func podmansProfileDecidesAsLibseccomp() throws {
        try Self.expectSameDecisions(try Self.profile(at: "/usr/share/containers/seccomp.json"), "podman")
    }

    /// The default allowlist with every action, errno values side by side,
    /// several conditions on one syscall and on one argument, and
    /// syscalls newer than most kernels.
    @Test func mixedActionsAndConditionsDecideAsLibseccomp() throws {
        let special = """
          {"names": ["read", "write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
          {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6},
          {"names": ["close", "stat"], "action": "SCMP_ACT_KILL_PROCESS"},
          {"names": ["fstat"], "action": "SCMP_ACT_TRAP"},
          {"names": ["lstat"], "action": "SCMP_ACT_LOG"},
          {"names": ["poll"], "action": "SCMP_ACT_KILL"},
          {"names": ["mmap"], "action": "SCMP_ACT_ERRNO",
           "args": [{"index": 2, "value": 4, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"},
                    {"index": 3, "value": 32, "op": "SCMP_CMP_GE"}]},
          {"names": ["mprotect"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 4096, "op": "SCMP_CMP_LT"}]},
          {"names": ["mprotect"], "action": "SCMP_ACT_KILL_PROCESS", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
          {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 21522, "op": "SCMP_CMP_EQ"}]},
          {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 4294967296, "op": "SCMP_CMP_GT"}]},
          {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_LE"}]},
          {"names": ["tgkill"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
          {"names": ["process_mrelease", "futex_waitv", "set_mempolicy_home_node"], "action": "SCMP_ACT_ERRNO"}
        """
        let taken: Set<String> = ["read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "mmap", "mprotect",
                                  "ioctl", "kill", "tgkill", "process_mrelease", "futex_waitv", "set_mempolicy_home_node"]
        let path = Self.repository.appendingPathComponent("policies/seccomp/default.json").path
        let allowed = try Self.profile(at: path).rules.filter { $0.action == .allow && $0.conditions.isEmpty }
            .map(\.name).filter { !taken.contains($0) }
        let list = allowed.map { "\"\($0)\"" }.joined(separator: ", ")
        try Self.expectSameDecisions(try Self.profile("""
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
          {"names": [\(list)], "action": "SCMP_ACT_ALLOW"},
        \(special)
        ]}
        """), "mixed")
    }

    /// Every syscall its own errno: no two neighbours join, so ranges
    /// cannot be shorter than libseccomp's tests; its program stays.
    @Test func aProfileWithoutRunsKeepsLibseccompsProgram() throws {
        let path = Self.repository.appendingPathComponent("policies/seccomp/default.json").path
        let names = try Self.profile(at: path).rules.filter { $0.action == .allow && $0.conditions.isEmpty }.map(\.name)
        let rules = names.enumerated().map { index, name in
            "{\"names\": [\"\(name)\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": \(index + 1)}"
        }.joined(separator: ",\n")
        let profile = try Self.profile("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [\(rules)]}")
        let program = try SeccompProgram(profile, source: "test.json", encoding: .ranges)
        #expect(program.encoding == .libseccomp)
        #expect(program.bytes == (try SeccompProgram(profile, source: "test.json", encoding: .libseccomp)).bytes)
    }

    @Test func libseccompsEncodingIsKeptWhenAskedFor() throws {
        let profile = try Self.profile("""
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
        """)
        #expect(try SeccompProgram(profile, source: "test.json", encoding: .libseccomp).encoding == .libseccomp)
    }
}

/// seccomp(2)'s input: struct seccomp_data.
struct SeccompData {
    var bytes: [UInt8]

    init(nr: UInt32, arch: UInt32, instructionPointer: UInt64 = 0, args: [UInt64]) {
        bytes = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(nr)
        append(arch)
        append(instructionPointer)
        for arg in args { append(arg) }
    }

    func word(at offset: UInt32) -> UInt32? {
        let start = Int(offset)
        guard offset % 4 == 0, start + 4 <= bytes.count else { return nil }
        return bytes[start..<start + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// A classic-BPF interpreter, as the kernel runs a seccomp filter (every
/// instruction class libseccomp writes, and the rest of the seccomp subset).
struct BPFProgram {
    struct Instruction { var code: UInt16; var jt: UInt8; var jf: UInt8; var k: UInt32 }
    let instructions: [Instruction]
    var count: Int { instructions.count }

    init(_ bytes: [UInt8]) {
        instructions = stride(from: 0, to: bytes.count, by: 8).map { i in
            Instruction(code: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8, jt: bytes[i + 2], jf: bytes[i + 3],
                        k: UInt32(bytes[i + 4]) | UInt32(bytes[i + 5]) << 8 | UInt32(bytes[i + 6]) << 16
                            | UInt32(bytes[i + 7]) << 24)
        }
    }

    /// The filter's return value; nil for a program the kernel would refuse
    /// or that runs off its end.
    func run(_ data: SeccompData) -> UInt32? {
        var a: UInt32 = 0, x: UInt32 = 0
        var memory = [UInt32](repeating: 0, count: 16)
        var pc = 0
        while pc < instructions.count {
            let i = instructions[pc]
            pc += 1
            let operand = i.code & 0x08 != 0 ? x : i.k // BPF_X or BPF_K
            switch i.code {
            case 0x20: guard let word = data.word(at: i.k) else { return nil }; a = word // ld [k]
            case 0x00: a = i.k // ld #k
            case 0x01: x = i.k // ldx #k
            case 0x60: guard i.k < 16 else { return nil }; a = memory[Int(i.k)]
            case 0x61: guard i.k < 16 else { return nil }; x = memory[Int(i.k)]
            case 0x02: guard i.k < 16 else { return nil }; memory[Int(i.k)] = a
            case 0x03: guard i.k < 16 else { return nil }; memory[Int(i.k)] = x
            case 0x04, 0x0C: a = a &+ operand
            case 0x14, 0x1C: a = a &- operand
            case 0x24, 0x2C: a = a &* operand
            case 0x34, 0x3C: guard operand != 0 else { return nil }; a /= operand
            case 0x44, 0x4C: a |= operand
            case 0x54, 0x5C: a &= operand
            case 0x64, 0x6C: a = operand < 32 ? a << operand : 0
            case 0x74, 0x7C: a = operand < 32 ? a >> operand : 0
            case 0xA4, 0xAC: a ^= operand
            case 0x84: a = 0 &- a
            case 0x07: x = a // tax
            case 0x87: a = x // txa
            case 0x05: pc += Int(i.k) // ja
            case 0x15, 0x1D: pc += Int(a == operand ? i.jt : i.jf)
            case 0x25, 0x2D: pc += Int(a > operand ? i.jt : i.jf)
            case 0x35, 0x3D: pc += Int(a >= operand ? i.jt : i.jf)
            case 0x45, 0x4D: pc += Int(a & operand != 0 ? i.jt : i.jf)
            case 0x06: return i.k // ret #k
            case 0x16: return a // ret a
            default: return nil
            }
        }
        return nil
    }
}
