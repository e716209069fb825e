#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Sandbox

/// What `POST /jobs` asks for in its `spec` field (the FastAPI runner's
/// `JobSpec`): the entry file among the code files, its arguments, and
/// limits no looser than the daemon's own.
public struct APIJobSpec: Codable, Sendable, Hashable {
    /// The file to run, relative to the code folder: `*.py` runs with
    /// python3, `*.sh` with bash (`runtime` can say which for another name).
    public var entry: String
    public var args: [String]
    public var timeoutSeconds: Int?
    /// `none`, `loopback` or `host` (`outbound` is read as `host`).
    public var netPolicy: String?
    public var env: [String: String]
    /// `python…` or `bash`; otherwise told by the entry's extension.
    public var runtime: String?
    public var memoryLimitMB: Int?
    public var pidsLimit: Int?
    /// Shown in the history and the dashboard (default: the entry).
    public var name: String?

    enum CodingKeys: String, CodingKey {
        case entry, args, timeoutSeconds = "timeout_sec", netPolicy = "net_policy", env, runtime,
             memoryLimitMB = "mem_limit_mb", pidsLimit = "pids_limit", name
    }

    public init(entry: String = "main.py", args: [String] = [], timeoutSeconds: Int? = nil, netPolicy: String? = nil,
                env: [String: String] = [:], runtime: String? = nil, memoryLimitMB: Int? = nil, pidsLimit: Int? = nil,
                name: String? = nil) {
        self.entry = entry
        self.args = args
        self.timeoutSeconds = timeoutSeconds
        self.netPolicy = netPolicy
        self.env = env
        self.runtime = runtime
        self.memoryLimitMB = memoryLimitMB
        self.pidsLimit = pidsLimit
        self.name = name
    }

    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        entry = try values.decodeIfPresent(String.self, forKey: .entry) ?? "main.py"
        args = try values.decodeIfPresent([String].self, forKey: .args) ?? []
        timeoutSeconds = try values.decodeIfPresent(Int.self, forKey: .timeoutSeconds)
        netPolicy = try values.decodeIfPresent(String.self, forKey: .netPolicy)
        env = try values.decodeIfPresent([String: String].self, forKey: .env) ?? [:]
        runtime = try values.decodeIfPresent(String.self, forKey: .runtime)
        memoryLimitMB = try values.decodeIfPresent(Int.self, forKey: .memoryLimitMB)
        pidsLimit = try values.decodeIfPresent(Int.self, forKey: .pidsLimit)
        name = try values.decodeIfPresent(String.self, forKey: .name)
    }

    /// Every key, `null` for the unset ones (as the API shows every body).
    public func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(entry, forKey: .entry)
        try values.encode(args, forKey: .args)
        try values.encode(timeoutSeconds, forKey: .timeoutSeconds)
        try values.encode(netPolicy, forKey: .netPolicy)
        try values.encode(env, forKey: .env)
        try values.encode(runtime, forKey: .runtime)
        try values.encode(memoryLimitMB, forKey: .memoryLimitMB)
        try values.encode(pidsLimit, forKey: .pidsLimit)
        try values.encode(name, forKey: .name)
    }

    public enum Interpreter: String, Sendable {
        case python3, bash
    }

    /// The spec checked against the daemon's limits: what the job gets.
    public struct Resolved: Sendable {
        public var interpreter: Interpreter
        public var entry: UploadPath
        public var arguments: [String]
        public var limits: ResourceLimits
        public var network: NetworkPolicy
        public var environment: [(name: String, value: String)]
        public var name: String
    }

    /// Checks every field; the error says which and why (HTTP 422).
    public func resolve(limits daemonLimits: ResourceLimits, network daemonNetwork: NetworkPolicy) throws -> Resolved {
        func invalid(_ message: String) -> SandboxError { SandboxError(.invalidJobSpec, message) }
        let entryPath: UploadPath
        do {
            entryPath = try UploadPath(entry)
        } catch {
            throw invalid("entry: \(error.message)")
        }
        let interpreter: Interpreter
        switch (runtime?.lowercased(), entry) {
        case let (runtime?, _) where runtime.hasPrefix("python"): interpreter = .python3
        case ("bash"?, _), ("sh"?, _): interpreter = .bash
        case (_?, _): throw invalid("runtime: '\(runtime ?? "")' is not known; use python3 or bash")
        case (nil, let entry) where entry.hasSuffix(".py"): interpreter = .python3
        case (nil, let entry) where entry.hasSuffix(".sh") || entry.hasSuffix(".bash"): interpreter = .bash
        default: throw invalid("entry: '\(entry)' is neither *.py nor *.sh; say the runtime (python3 or bash)")
        }
        guard args.count <= 256 else { throw invalid("args: at most 256 arguments") }
        for argument in args where argument.utf8.count > 4096 || argument.utf8.contains(0) {
            throw invalid("args: an argument is longer than 4096 bytes or holds a NUL byte")
        }
        var limits = daemonLimits
        if let seconds = timeoutSeconds {
            let cap = daemonLimits.wallTime.map { $0.components.seconds } ?? Int64.max
            guard seconds > 0, Int64(seconds) <= cap else {
                throw invalid("timeout_sec: must be between 1 and the daemon's limit, \(cap) s")
            }
            limits.wallTime = .seconds(seconds)
        }
        if let megabytes = memoryLimitMB {
            let bytes = UInt64(max(0, megabytes)) << 20
            let cap = daemonLimits.memoryBytes ?? UInt64.max
            guard megabytes >= 16, bytes <= cap else {
                throw invalid("mem_limit_mb: must be between 16 and the daemon's limit, \(cap >> 20) MiB")
            }
            limits.memoryBytes = bytes
        }
        if let pids = pidsLimit {
            let cap = daemonLimits.processes ?? UInt64.max
            guard pids > 0, UInt64(pids) <= cap else {
                throw invalid("pids_limit: must be between 1 and the daemon's limit, \(cap)")
            }
            limits.processes = UInt64(pids)
        }
        let network: NetworkPolicy
        switch netPolicy ?? "none" {
        case "none": network = .none
        case "loopback": network = .loopback
        case "host", "outbound": network = .host
        case let other: throw invalid("net_policy: '\(other)' is not one of none, loopback, host")
        }
        guard network.rank <= daemonNetwork.rank else {
            throw invalid("net_policy: '\(network.rawValue)' is wider than the daemon allows ('\(daemonNetwork.rawValue)')")
        }
        guard env.count <= 256 else { throw invalid("env: at most 256 variables") }
        var environment: [(name: String, value: String)] = []
        for (name, value) in env.sorted(by: { $0.key < $1.key }) {
            guard Self.isVariableName(name) else { throw invalid("env: '\(name)' is not a variable name") }
            guard !name.hasPrefix("SYFT_"), !name.hasPrefix("SYFTBOX_"), !name.hasPrefix("JOB_") else {
                throw invalid("env: \(name) is set by the runner")
            }
            guard !value.utf8.contains(0), value.utf8.count <= 32768 else {
                throw invalid("env: \(name)'s value holds a NUL byte or is longer than 32 KiB")
            }
            environment.append((name, value))
        }
        let shownName = name ?? entry
        guard shownName.utf8.count <= 200, !shownName.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw invalid("name: at most 200 characters, no control characters")
        }
        return Resolved(interpreter: interpreter, entry: entryPath, arguments: args, limits: limits, network: network,
                        environment: environment, name: shownName)
    }

    static func isVariableName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 128 else { return false }
        func isLetter(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || byte == UInt8(ascii: "_")
        }
        return isLetter(first) && bytes.allSatisfy { isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}

extension NetworkPolicy {
    /// none < loopback < host.
    var rank: Int {
        switch self {
        case .none: 0
        case .loopback: 1
        case .host: 2
        }
    }
}

extension SandboxError.Code {
    /// A `POST /jobs` spec that cannot be run as given.
    public static let invalidJobSpec = Self(rawValue: "invalid_job_spec")
    /// An uploaded file's name or the request's body is unusable.
    public static let invalidUpload = Self(rawValue: "invalid_upload")
}

/// A relative path for an uploaded file: 1 to 8 components, each a usable
/// file name (no `.` or `..`, no `/` or `\`, no control characters or
/// NUL, not starting with `-`, at most 255 bytes).
public struct UploadPath: Sendable, Hashable, CustomStringConvertible {
    public let components: [String]

    public init(_ text: String) throws(SandboxError) {
        func refuse(_ why: String) -> SandboxError {
            SandboxError(.invalidUpload, "'\(text.debugDescription.dropFirst().dropLast())' \(why)")
        }
        guard !text.isEmpty else { throw refuse("is empty") }
        guard !text.hasPrefix("/") else { throw refuse("is an absolute path") }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 8 else { throw refuse("is more than 8 folders deep") }
        for part in parts {
            if part.isEmpty { throw refuse("has an empty component") }
            if part == "." || part == ".." { throw refuse("has a '.' or '..' component") }
            if part.utf8.count > 255 { throw refuse("has a component longer than 255 bytes") }
            if part.hasPrefix("-") { throw refuse("has a component starting with '-'") }
            if part.unicodeScalars.contains(where: { $0 == "\\" || $0.value < 0x20 || $0.value == 0x7f }) {
                throw refuse("holds a backslash or a control character")
            }
        }
        components = parts
    }

    public var description: String { components.joined(separator: "/") }
}
