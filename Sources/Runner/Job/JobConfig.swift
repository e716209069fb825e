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
        try FlatConfigYAML.read(bytes) ?? parseWithYams(bytes)
    }

    /// Any YAML: as the client's other files are read (PyYAML's types,
    /// without Yams' regular expressions); an empty or null document is no keys.
    static func parseWithYams(_ bytes: [UInt8]) throws -> JobConfig {
        let pairs: [(key: Node, value: Node)]
        do {
            pairs = try ClientYAML.mapping(bytes).pairs
        } catch {
            throw ConfigError("config.yaml " + error.message)
        }
        func scalar(_ key: String) throws -> String? {
            guard let value = pairs.last(where: { $0.key.tagName == .str && $0.key.scalar?.string == key })?.value,
                  value.tagName != .null else { return nil }
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
