import Sandbox
import Yams

extension SandboxError.Code {
    /// A submission (a job folder in the inbox) is not one the daemon takes.
    public static let invalidSubmission = Self(rawValue: "invalid_submission")
}

/// A submission's `config.yaml` (syft-job's `JobSubmissionMetadata`),
/// written by the submitter: protocol 1 files start with
/// `canonical_name: JobSubmissionMetadata` and `version: '1'`, protocol 0
/// files have neither; the fields are the same.
///
/// Read leniently, as pydantic does: missing keys take the client's
/// defaults, `null` lists and maps are empty, numbers are taken as their
/// text, unknown keys are ignored. A value of the wrong shape (a list
/// where a string belongs, a map of lists that is not one) is an error
/// naming the key, which the owner reads as the rejection reason. Nothing
/// here says who submitted the job or for whom: that comes from the path.
public struct SubmissionMetadata: Sendable, Hashable {
    /// One `datasets` entry: the owner whose datasets the job asks for.
    public struct DatasetRequest: Sendable, Hashable {
        public var owner: String
        public var names: [String]

        public init(owner: String, names: [String]) {
            self.owner = owner
            self.names = names
        }
    }

    /// "JobSubmissionMetadata" in protocol 1 files, nil in protocol 0.
    public var canonicalName: String?
    /// "1" in protocol 1 files, nil in protocol 0.
    public var version: String?
    /// The name the submitter gave; the job's name is its folder's.
    public var name: String?
    /// "python" (the client's default) or "bash"; other values kept.
    public var type: String = "python"
    public var submittedAt: JobTimestamp?
    /// A python job's entry point, relative to `code/`.
    public var entrypoint: String?
    /// Packages a python job's run.sh installs.
    public var dependencies: [String] = []
    /// The submitter's manifest of `code/` (informational: the folder is
    /// what counts).
    public var files: [String] = []
    public var isFolderSubmission = false
    /// Where the code was on the submitter's machine (informational).
    public var codePath: String?
    /// "local" (the default) or "enclave".
    public var jobType: String = "local"
    /// `{owner_email: [dataset_name, ...]}`, in file order; nil when the
    /// job asks for none (`null` or absent).
    public var datasets: [DatasetRequest]?
    /// Extensible metadata; scalar values as their text, nulls left out.
    public var headers: [String: String] = [:]

    public init() {}

    /// A config.yaml is a few hundred bytes; the submission check caps it.
    public static func parse(_ bytes: [UInt8]) throws -> SubmissionMetadata {
        func failure(_ message: String) -> SandboxError {
            SandboxError(.invalidSubmission, "config.yaml" + message)
        }
        let pairs: [(key: Node, value: Node)]
        do {
            pairs = try ClientYAML.mapping(bytes).pairs
        } catch {
            throw failure(" " + error.message)
        }
        /// The last value of `key` (PyYAML keeps the last of duplicates),
        /// nil when absent or null.
        func value(_ key: String) -> Node? {
            guard let node = pairs.last(where: { $0.key.scalar != nil && $0.key.string == key })?.value,
                  node.tagName != .null else { return nil }
            return node
        }
        func string(_ key: String) throws -> String? {
            guard let node = value(key) else { return nil }
            guard let scalar = node.scalar else { throw failure(": '\(key)' must be a single value, not a list or a map") }
            return scalar.string
        }
        func strings(_ node: Node?, _ context: String) throws -> [String] {
            guard let node else { return [] }
            guard let items = node.sequence else { throw failure(": '\(context)' must be a list of strings") }
            return try items.map { item in
                guard item.tagName != .null, let scalar = item.scalar else {
                    throw failure(": '\(context)' must be a list of strings")
                }
                return scalar.string
            }
        }

        var metadata = SubmissionMetadata()
        metadata.canonicalName = try string("canonical_name")
        metadata.version = try string("version")
        metadata.name = try string("name")
        metadata.type = try string("type") ?? metadata.type
        metadata.submittedAt = try string("submitted_at").map(JobTimestamp.init(text:))
        metadata.entrypoint = try string("entrypoint")
        metadata.dependencies = try strings(value("dependencies"), "dependencies")
        metadata.files = try strings(value("files"), "files")
        if let flag = value("is_folder_submission") {
            guard let bool = flag.scalar.flatMap({ Self.bool($0, tag: flag.tagName) }) else {
                throw failure(": 'is_folder_submission' must be true or false")
            }
            metadata.isFolderSubmission = bool
        }
        metadata.codePath = try string("code_path")
        metadata.jobType = try string("job_type") ?? metadata.jobType
        if let node = value("datasets") {
            guard let mapping = node.mapping else {
                throw failure(": 'datasets' must map owner emails to lists of dataset names")
            }
            var requests: [DatasetRequest] = []
            for (key, names) in mapping {
                guard key.tagName != .null, let owner = key.scalar?.string else {
                    throw failure(": 'datasets' must map owner emails to lists of dataset names")
                }
                let list = try strings(names.tagName == .null ? nil : names, "datasets.\(owner)")
                if let existing = requests.firstIndex(where: { $0.owner == owner }) {
                    requests[existing].names = list
                } else {
                    requests.append(DatasetRequest(owner: owner, names: list))
                }
            }
            metadata.datasets = requests
        }
        if let node = value("headers") {
            guard let mapping = node.mapping else { throw failure(": 'headers' must be a map of names to values") }
            for (key, entry) in mapping {
                guard key.tagName != .null, let name = key.scalar?.string else {
                    throw failure(": 'headers' must be a map of names to values")
                }
                if entry.tagName == .null { continue }
                guard let text = entry.scalar?.string else {
                    throw failure(": 'headers.\(name)' must be a single value, not a list or a map")
                }
                metadata.headers[name] = text
            }
        }
        return metadata
    }

    /// YAML 1.1 booleans as PyYAML reads them, and the strings pydantic
    /// takes for a bool.
    private static func bool(_ scalar: Node.Scalar, tag: Tag.Name) -> Bool? {
        if tag == .bool {
            return ["yes", "true", "on"].contains(scalar.string.lowercased())
        }
        switch scalar.string.lowercased() {
        case "true", "yes", "on", "1", "t", "y": return true
        case "false", "no", "off", "0", "f", "n": return false
        default: return nil
        }
    }
}
