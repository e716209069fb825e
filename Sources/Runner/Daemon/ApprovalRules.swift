import Sandbox
import SystemPackage
import Yams

extension SandboxError.Code {
    /// The approval rules file cannot be used.
    public static let invalidApprovalRules = Self(rawValue: "invalid_approval_rules")
}

/// The owner's rules for approving received jobs without a manual review
/// (`--approval-rules`, default `policies/approval.yaml`: none).
public struct ApprovalRules: Sendable, Hashable {
    public struct Rule: Sendable, Hashable {
        public var name: String
        /// Emails, `*@domain`, or `*` (anyone); empty: not a criterion.
        public var requesters: [String]
        public var types: [String]
        public var headers: [String: String]
        /// Submission fingerprints (lowercase hex); empty: not a criterion.
        public var fingerprints: [String]
        public var maxTimeoutSeconds: Int64?
        public var maxMemoryBytes: UInt64?
        public var shareOutputs: Bool
        public var shareLogs: Bool

        public init(name: String, requesters: [String] = [], types: [String] = [], headers: [String: String] = [:],
                    fingerprints: [String] = [], maxTimeoutSeconds: Int64? = nil, maxMemoryBytes: UInt64? = nil,
                    shareOutputs: Bool = false, shareLogs: Bool = false) {
            self.name = name
            self.requesters = requesters
            self.types = types
            self.headers = headers
            self.fingerprints = fingerprints
            self.maxTimeoutSeconds = maxTimeoutSeconds
            self.maxMemoryBytes = maxMemoryBytes
            self.shareOutputs = shareOutputs
            self.shareLogs = shareLogs
        }

        /// True when every criterion the rule names holds for `job`.
        public func matches(_ job: Candidate) -> Bool {
            if !requesters.isEmpty, !requesters.contains(where: { Self.requester($0, matches: job.requester) }) {
                return false
            }
            if !types.isEmpty, !types.contains(job.type ?? "") { return false }
            for (key, value) in headers where job.headers[key] != value { return false }
            if !fingerprints.isEmpty, !fingerprints.contains(job.fingerprint.lowercased()) { return false }
            return true
        }

        /// `*` anyone, `*@domain` that domain exactly (not its subdomains),
        /// else the address itself; emails compare without case.
        static func requester(_ pattern: String, matches email: String) -> Bool {
            let pattern = pattern.lowercased(), email = email.lowercased()
            if pattern == "*" { return true }
            if pattern.hasPrefix("*@") {
                guard let at = email.lastIndex(of: "@") else { return false }
                return email[email.index(after: at)...] == pattern.dropFirst(2)
            }
            return pattern == email
        }
    }

    /// What a rule is matched against: facts from the path (the
    /// requester) and from the received submission.
    public struct Candidate: Sendable, Hashable {
        public var requester: String
        public var type: String?
        public var headers: [String: String]
        public var fingerprint: String

        public init(requester: String, type: String?, headers: [String: String], fingerprint: String) {
            self.requester = requester
            self.type = type
            self.headers = headers
            self.fingerprint = fingerprint
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule] = []) { self.rules = rules }

    /// The first rule that approves `job`, if any.
    public func approvingRule(for job: Candidate) -> Rule? {
        rules.first { $0.matches(job) }
    }

    /// Parses the YAML rules; `source` names the file in errors.
    public static func parse(_ text: String, source: String) throws(SandboxError) -> ApprovalRules {
        func failure(_ what: String) -> SandboxError {
            SandboxError(.invalidApprovalRules, what, path: source, hint: "see policies/approval.yaml for the format")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text, .default, .default, .utf8)
        } catch {
            throw failure("not valid YAML (\(error))")
        }
        guard let root = node?.mapping else {
            if node == nil { return ApprovalRules() }
            throw failure("the file must be a mapping with a 'rules' list")
        }
        guard let list = root["rules"] else { return ApprovalRules() }
        guard let items = list.sequence else { throw failure("'rules' must be a list") }
        var rules: [Rule] = []
        for (index, item) in items.enumerated() {
            guard let fields = item.mapping else { throw failure("rules[\(index)] must be a mapping") }
            let context = "rules[\(index)]"
            let known: Set = ["name", "requesters", "types", "headers", "sha256", "max_timeout_seconds", "max_memory",
                              "share_outputs", "share_logs"]
            for key in fields.keys.compactMap(\.string) where !known.contains(key) {
                throw failure("\(context): unknown key '\(key)'")
            }
            var rule = Rule(name: try scalar(fields["name"], "\(context).name", failure) ?? "rule \(index + 1)")
            rule.requesters = try strings(fields["requesters"], "\(context).requesters", failure)
            rule.types = try strings(fields["types"], "\(context).types", failure)
            rule.fingerprints = try strings(fields["sha256"], "\(context).sha256", failure).map { $0.lowercased() }
            if let headers = fields["headers"], headers.tagName != .null {
                guard let mapping = headers.mapping else { throw failure("\(context).headers must be a mapping") }
                for (key, value) in mapping {
                    guard let key = key.string, let value = value.string else {
                        throw failure("\(context).headers must map names to plain values")
                    }
                    rule.headers[key] = value
                }
            }
            if let text = try scalar(fields["max_timeout_seconds"], "\(context).max_timeout_seconds", failure) {
                guard let seconds = Int64(text), seconds > 0 else {
                    throw failure("\(context).max_timeout_seconds must be a positive whole number")
                }
                rule.maxTimeoutSeconds = seconds
            }
            if let text = try scalar(fields["max_memory"], "\(context).max_memory", failure) {
                guard let bytes = ByteSize.parse(text), bytes > 0 else {
                    throw failure("\(context).max_memory must be a size such as 512M or 2G")
                }
                rule.maxMemoryBytes = bytes
            }
            rule.shareOutputs = try flag(fields["share_outputs"], "\(context).share_outputs", failure)
            rule.shareLogs = try flag(fields["share_logs"], "\(context).share_logs", failure)
            guard !rule.requesters.isEmpty || !rule.fingerprints.isEmpty else {
                throw failure("\(context) names neither 'requesters' nor 'sha256': it would approve anyone's jobs "
                              + "(write requesters: [\"*\"] if that is meant)")
            }
            rules.append(rule)
        }
        return ApprovalRules(rules: rules)
    }

    private static func scalar(_ node: Node?, _ context: String,
                               _ failure: (String) -> SandboxError) throws(SandboxError) -> String? {
        guard let node, node.tagName != .null else { return nil }
        guard let value = node.scalar?.string else { throw failure("\(context) must be a plain value") }
        return value
    }

    private static func strings(_ node: Node?, _ context: String,
                                _ failure: (String) -> SandboxError) throws(SandboxError) -> [String] {
        guard let node, node.tagName != .null else { return [] }
        if let single = node.scalar?.string { return [single] }
        guard let items = node.sequence else { throw failure("\(context) must be a list") }
        var values: [String] = []
        for item in items {
            guard let value = item.scalar?.string else { throw failure("\(context) must list plain values") }
            values.append(value)
        }
        return values
    }

    private static func flag(_ node: Node?, _ context: String,
                             _ failure: (String) -> SandboxError) throws(SandboxError) -> Bool {
        guard let text = try scalar(node, context, failure) else { return false }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw failure("\(context) must be true or false")
        }
    }
}
