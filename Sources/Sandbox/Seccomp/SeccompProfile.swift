#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// A seccomp profile in the OCI / Docker JSON format, the format of
/// `policies/seccomp/default.json`, of Docker's and of Podman's profiles
/// (`/usr/share/containers/seccomp.json`).
///
/// What is read: `defaultAction`, `defaultErrnoRet`, and each entry of
/// `syscalls` with `names` (or the older `name`), `action`, `errnoRet`,
/// `args` (`index`, `value`, `valueTwo`, `op`) and the `includes` /
/// `excludes` filters (`arches`, `caps`, `minKernel`).
///
/// What is deliberately not honoured: `architectures` and `archMap`. The
/// sandbox filters the native ABI only and kills any process that enters
/// the kernel through another one (i386 `int 0x80`, x32), whatever the
/// profile lists. `flags` are ignored. `SCMP_ACT_NOTIFY` and
/// `SCMP_ACT_TRACE` need a supervisor or tracer the sandbox does not run:
/// a profile using them is refused.
public struct SeccompProfile: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        case allow
        case errno(UInt32)
        case killProcess
        case killThread
        case trap
        case log
    }

    public struct ArgumentCondition: Sendable, Hashable {
        public enum Operator: String, Sendable, Hashable {
            case notEqual = "SCMP_CMP_NE"
            case lessThan = "SCMP_CMP_LT"
            case lessOrEqual = "SCMP_CMP_LE"
            case equal = "SCMP_CMP_EQ"
            case greaterOrEqual = "SCMP_CMP_GE"
            case greaterThan = "SCMP_CMP_GT"
            /// (argument & value) == valueTwo
            case maskedEqual = "SCMP_CMP_MASKED_EQ"
        }
        public var index: UInt32
        public var op: Operator
        public var value: UInt64
        public var valueTwo: UInt64

        public init(index: UInt32, op: Operator, value: UInt64, valueTwo: UInt64 = 0) {
            self.index = index
            self.op = op
            self.value = value
            self.valueTwo = valueTwo
        }
    }

    /// One syscall's rule, after `includes`/`excludes` were applied.
    public struct Rule: Sendable, Hashable {
        public var name: String
        public var action: Action
        public var conditions: [ArgumentCondition]

        public init(name: String, action: Action, conditions: [ArgumentCondition] = []) {
            self.name = name
            self.action = action
            self.conditions = conditions
        }
    }

    public var defaultAction: Action
    public var rules: [Rule]

    public init(defaultAction: Action, rules: [Rule]) {
        self.defaultAction = defaultAction
        self.rules = rules
    }

    /// What the sandbox's job holds when the filter applies.
    public struct Environment: Sendable {
        /// Docker's name of the native architecture ("amd64", "arm64", ...).
        public var architecture: String
        /// Capabilities the job keeps: none, in this sandbox.
        public var capabilities: Set<String>
        /// The running kernel's (major, minor).
        public var kernel: (Int, Int)

        public init(architecture: String, capabilities: Set<String> = [], kernel: (Int, Int)) {
            self.architecture = architecture
            self.capabilities = capabilities
            self.kernel = kernel
        }

        /// This machine, with every capability dropped.
        public static var current: Environment {
            let names = machineNames
            return Environment(architecture: dockerArchitecture(names.machine),
                               kernel: parseKernel(names.release) ?? (0, 0))
        }

        /// This machine's architecture, Docker's name for it (`current`
        /// without the rest: its empty Set costs a conformance scan at launch).
        public static var currentArchitecture: String { dockerArchitecture(machineNames.machine) }

        /// uname(2)'s machine and release.
        private static var machineNames: (machine: String, release: String) {
            var names = utsname()
            uname(&names)
            let machine = withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let release = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return (machine, release)
        }

        static func dockerArchitecture(_ machine: String) -> String {
            switch machine {
            case "x86_64": "amd64"
            case "aarch64": "arm64"
            case "i386", "i686": "x86"
            case "ppc64le": "ppc64le"
            case "s390x": "s390x"
            case "riscv64": "riscv64"
            default: machine
            }
        }
    }

    /// Parses a profile and keeps the rules that apply in `environment`.
    /// `source` names the file in error messages.
    public static func parse(_ bytes: [UInt8], source: String,
                             environment: Environment = .current) throws(SandboxError) -> SeccompProfile {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(bytes))
        } catch {
            throw SandboxError(.invalidSeccompProfile, "not a seccomp profile in the OCI JSON format (\(Self.describe(error)))",
                               path: source, hint: "see policies/seccomp/default.json for the expected format")
        }
        let defaultAction = try action(document.defaultAction, errnoRet: document.defaultErrnoRet,
                                       context: "defaultAction", source: source)
        var rules: [Rule] = []
        for (position, entry) in (document.syscalls ?? []).enumerated() {
            let names = (entry.names ?? []) + (entry.name.map { [$0] } ?? [])
            let context = "syscalls[\(position)] (\(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", ..." : ""))"
            guard !names.isEmpty else {
                throw SandboxError(.invalidSeccompProfile, "\(context) names no syscall", path: source)
            }
            guard applies(entry, in: environment) else { continue }
            let ruleAction = try action(entry.action, errnoRet: entry.errnoRet, context: context, source: source)
            var conditions: [ArgumentCondition] = []
            for argument in entry.args ?? [] {
                guard let op = ArgumentCondition.Operator(rawValue: argument.op) else {
                    throw SandboxError(.invalidSeccompProfile, "\(context): unknown comparison '\(argument.op)'",
                                       path: source)
                }
                guard argument.index <= 5 else {
                    throw SandboxError(.invalidSeccompProfile, "\(context): argument index \(argument.index) is past 5",
                                       path: source)
                }
                conditions.append(ArgumentCondition(index: argument.index, op: op, value: argument.value,
                                                    valueTwo: argument.valueTwo ?? 0))
            }
            guard conditions.count <= 6 else {
                throw SandboxError(.invalidSeccompProfile, "\(context): more than 6 argument conditions", path: source)
            }
            for name in names { rules.append(Rule(name: name, action: ruleAction, conditions: conditions)) }
        }
        return SeccompProfile(defaultAction: defaultAction, rules: rules)
    }

    /// Docker's semantics: every `includes` filter must hold, no `excludes` filter may.
    static func applies(_ entry: Document.Syscall, in environment: Environment) -> Bool {
        if let includes = entry.includes {
            if let arches = includes.arches, !arches.isEmpty, !arches.contains(environment.architecture) { return false }
            if let caps = includes.caps, !caps.isEmpty, !Set(caps).isSubset(of: environment.capabilities) { return false }
            if let minimum = includes.minKernel.flatMap(parseKernel), environment.kernel < minimum { return false }
        }
        if let excludes = entry.excludes {
            if let arches = excludes.arches, arches.contains(environment.architecture) { return false }
            if let caps = excludes.caps, !Set(caps).isDisjoint(with: environment.capabilities) { return false }
            if let minimum = excludes.minKernel.flatMap(parseKernel), environment.kernel >= minimum { return false }
        }
        return true
    }

    static func action(_ name: String, errnoRet: UInt32?, context: String,
                       source: String) throws(SandboxError) -> Action {
        switch name {
        case "SCMP_ACT_ALLOW": return .allow
        case "SCMP_ACT_ERRNO": return .errno(errnoRet ?? UInt32(EPERM))
        case "SCMP_ACT_KILL_PROCESS": return .killProcess
        // Docker's SCMP_ACT_KILL is libseccomp's kill-thread.
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return .killThread
        case "SCMP_ACT_TRAP": return .trap
        case "SCMP_ACT_LOG": return .log
        case "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE":
            throw SandboxError(.invalidSeccompProfile, "\(context): \(name) needs a supervisor the sandbox does not run",
                               path: source, hint: "use SCMP_ACT_ERRNO or SCMP_ACT_KILL_PROCESS instead")
        default:
            throw SandboxError(.invalidSeccompProfile, "\(context): unknown action '\(name)'", path: source)
        }
    }

    /// "6.18.0-foo" -> (6, 18).
    static func parseKernel(_ text: String) -> (Int, Int)? {
        let parts = text.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        return (parts[0], parts[1])
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, context):
            "missing '\(key.stringValue)' at \(path(context.codingPath))"
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            "wrong type at \(path(context.codingPath))"
        case let DecodingError.dataCorrupted(context):
            context.codingPath.isEmpty ? "invalid JSON" : "invalid value at \(path(context.codingPath))"
        default:
            "\(error)"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }

    /// The JSON document as written.
    struct Document: Decodable {
        struct Filter: Decodable {
            var arches: [String]?
            var caps: [String]?
            var minKernel: String?
        }
        struct Argument: Decodable {
            var index: UInt32
            var value: UInt64
            var valueTwo: UInt64?
            var op: String
        }
        struct Syscall: Decodable {
            var names: [String]?
            var name: String?
            var action: String
            var errnoRet: UInt32?
            var args: [Argument]?
            var includes: Filter?
            var excludes: Filter?
        }
        var defaultAction: String
        var defaultErrnoRet: UInt32?
        var syscalls: [Syscall]?
    }
}
