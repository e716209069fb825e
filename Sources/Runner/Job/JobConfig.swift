import Yams

/// What the runner reads of a job's config.yaml (syft-job's
/// JobSubmissionMetadata); everything else in the file is kept as is.
public struct JobConfig: Sendable, Hashable {
    public var name: String?
    /// "bash" or "python" in syft-job; any string is kept.
    public var type: String?

    public init(name: String? = nil, type: String? = nil) {
        self.name = name
        self.type = type
    }

    /// Parses config.yaml. Throws a message saying what is wrong; callers
    /// of the one-shot CLI turn it into a warning and use the defaults.
    public static func parse(_ bytes: [UInt8]) throws -> JobConfig {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError("config.yaml is not valid UTF-8")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text, .default, .default, .utf8)
        } catch {
            throw ConfigError("config.yaml is not valid YAML: \(error)")
        }
        guard let node else { return JobConfig() }
        guard let mapping = node.mapping else { throw ConfigError("config.yaml is not a mapping of keys to values") }
        func scalar(_ key: String) throws -> String? {
            guard let value = mapping[Node(key)] else { return nil }
            if value.tagName == .null { return nil }
            guard let scalar = value.scalar else { throw ConfigError("config.yaml: '\(key)' is not a plain value") }
            return scalar.string
        }
        return JobConfig(name: try scalar("name"), type: try scalar("type"))
    }

    public struct ConfigError: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
