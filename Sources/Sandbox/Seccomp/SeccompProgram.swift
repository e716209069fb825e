import CSandbox
import Glibc
import SystemPackage

/// A seccomp profile compiled to a classic-BPF program, ready for the
/// child to load with seccomp(2) just before execve.
///
/// Compiled once in the parent with libseccomp (which allocates, so it
/// cannot run between clone and exec) and immutable afterwards: one program
/// serves any number of sandboxes, concurrently.
public final class SeccompProgram: @unchecked Sendable {
    /// How the program tests the syscall number.
    public enum Encoding: Sendable, Equatable {
        /// As libseccomp writes it: one test per syscall (498 instructions
        /// for the default profile).
        case libseccomp
        /// libseccomp's decision over the syscall number as a binary search
        /// over ranges of numbers, its argument tests as it writes them
        /// (CSandbox's seccomp_ranges.c): a third of the length, and of the
        /// kernel's work to load it. Where a program cannot be read that
        /// way, libseccomp's stays.
        case ranges
    }

    private let bpf: UnsafeMutablePointer<csb_bpf>
    /// The encoding the program has (`.ranges` asked for may give `.libseccomp`).
    public let encoding: Encoding
    /// Syscall names of the profile that this architecture (or libseccomp)
    /// does not know; their rules were skipped.
    public let skippedSyscalls: Int
    /// Instructions in the program (the kernel takes at most 4096).
    public var instructionCount: Int { Int(bpf.pointee.length) }

    /// Compiles `profile`, in `encoding` where it can; throws
    /// `.invalidSeccompProfile` naming the rule libseccomp refused.
    public init(_ profile: SeccompProfile, source: String, encoding: Encoding = .ranges) throws(SandboxError) {
        var names: [UnsafeMutablePointer<CChar>] = []
        var conditionBuffers: [UnsafeMutablePointer<csb_seccomp_arg>] = []
        defer {
            for name in names { free(name) }
            for buffer in conditionBuffers { buffer.deallocate() }
        }
        var rules: [csb_seccomp_rule] = []
        rules.reserveCapacity(profile.rules.count)
        for rule in profile.rules {
            let name = strdup(rule.name)!
            names.append(name)
            var conditions: UnsafeMutablePointer<csb_seccomp_arg>?
            if !rule.conditions.isEmpty {
                let buffer = UnsafeMutablePointer<csb_seccomp_arg>.allocate(capacity: rule.conditions.count)
                for (index, condition) in rule.conditions.enumerated() {
                    buffer[index] = csb_seccomp_arg(index: condition.index, op: Self.cOperator(condition.op),
                                                    value: condition.value, value_two: condition.valueTwo)
                }
                conditionBuffers.append(buffer)
                conditions = buffer
            }
            let (action, errnoRet) = Self.cAction(rule.action)
            rules.append(csb_seccomp_rule(name: name, action: action, errno_ret: errnoRet,
                                          args: conditions, arg_count: UInt32(rule.conditions.count)))
        }
        let (defaultAction, defaultErrno) = Self.cAction(profile.defaultAction)
        let compiled = UnsafeMutablePointer<csb_bpf>.allocate(capacity: 1)
        compiled.initialize(to: csb_bpf(filter: nil, length: 0))
        var skipped = 0
        var used = CSB_SECCOMP_LIBSECCOMP
        var message = [CChar](repeating: 0, count: 256)
        let asked = encoding == .ranges ? CSB_SECCOMP_RANGES : CSB_SECCOMP_LIBSECCOMP
        let rc = rules.withUnsafeBufferPointer { buffer in
            var cProfile = csb_seccomp_profile(default_action: defaultAction, default_errno: defaultErrno,
                                               rules: buffer.baseAddress, rule_count: buffer.count)
            return csb_seccomp_compile(&cProfile, asked, compiled, &used, &skipped, &message, message.count)
        }
        guard rc == 0 else {
            compiled.deallocate()
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw SandboxError(.invalidSeccompProfile, "cannot compile the seccomp profile: \(text)", path: source,
                               errno: Errno(rawValue: rc))
        }
        bpf = compiled
        skippedSyscalls = skipped
        self.encoding = used == CSB_SECCOMP_RANGES ? .ranges : .libseccomp
    }

    /// A program compiled earlier (`bytes`): struct sock_filter records,
    /// e.g. the default profile compiled at build time.
    public init(compiled bytes: [UInt8], skippedSyscalls: Int = 0, encoding: Encoding = .libseccomp) throws(SandboxError) {
        guard !bytes.isEmpty, bytes.count % 8 == 0, bytes.count / 8 <= 4096 else {
            throw SandboxError(.invalidSeccompProfile, "a compiled seccomp program must be 1 to 4096 instructions of 8 bytes")
        }
        let filter = malloc(bytes.count)!
        bytes.withUnsafeBytes { filter.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        let compiled = UnsafeMutablePointer<csb_bpf>.allocate(capacity: 1)
        compiled.initialize(to: csb_bpf(filter: filter, length: UInt16(bytes.count / 8)))
        bpf = compiled
        self.skippedSyscalls = skippedSyscalls
        self.encoding = encoding
    }

    /// The program as bytes (struct sock_filter records).
    public var bytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: bpf.pointee.filter, count: instructionCount * 8))
    }

    deinit {
        csb_bpf_free(bpf)
        bpf.deallocate()
    }

    /// The program for the shim; valid while this object lives.
    func withUnsafeBPF<R>(_ body: (UnsafePointer<csb_bpf>) throws -> R) rethrows -> R {
        try body(UnsafePointer(bpf))
    }

    private static func cAction(_ action: SeccompProfile.Action) -> (UInt32, UInt32) {
        switch action {
        case .allow: (UInt32(CSB_SECCOMP_ALLOW.rawValue), 0)
        case let .errno(value): (UInt32(CSB_SECCOMP_ERRNO.rawValue), value)
        case .killProcess: (UInt32(CSB_SECCOMP_KILL_PROCESS.rawValue), 0)
        case .killThread: (UInt32(CSB_SECCOMP_KILL_THREAD.rawValue), 0)
        case .trap: (UInt32(CSB_SECCOMP_TRAP.rawValue), 0)
        case .log: (UInt32(CSB_SECCOMP_LOG.rawValue), 0)
        }
    }

    private static func cOperator(_ op: SeccompProfile.ArgumentCondition.Operator) -> UInt32 {
        let value: csb_seccomp_op = switch op {
        case .notEqual: CSB_SECCOMP_OP_NE
        case .lessThan: CSB_SECCOMP_OP_LT
        case .lessOrEqual: CSB_SECCOMP_OP_LE
        case .equal: CSB_SECCOMP_OP_EQ
        case .greaterOrEqual: CSB_SECCOMP_OP_GE
        case .greaterThan: CSB_SECCOMP_OP_GT
        case .maskedEqual: CSB_SECCOMP_OP_MASKED_EQ
        }
        return UInt32(value.rawValue)
    }
}
