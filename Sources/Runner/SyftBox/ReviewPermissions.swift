import Glibc
import Sandbox
import Synchronization
import SystemPackage
import Yams

extension SandboxError.Code {
    /// A `syft.pub.yaml` on the way to a job's review folder cannot be read
    /// as syft_permissions reads it, or cannot be written.
    public static let invalidPermissionFile = Self(rawValue: "invalid_permission_file")
}

/// The permission rules syft-job's runner writes for the jobs it runs, in
/// the owner's `syft.pub.yaml` files, written as syft_perms writes them.
///
/// For every job it runs, syft-job's runner (`_prepare_outputs_dir`, before
/// the job starts) grants the owner read on the job's review `outputs/`
/// folder through syft_perms (`SyftFolder.grant_read_access`): a rule with
/// the owner alone in `read`, more specific than the `**` read rule that
/// `setup_ds_job_folder_as_do` gave the submitter in `review/DS/`, so the
/// outputs stay hidden from the submitter until the owner shares them. The
/// rule goes into the nearest permission file above `outputs/` (normally
/// `review/DS/syft.pub.yaml`), its pattern relative to that file's folder
/// (`v1/JOB/outputs/**`, `JOB/outputs/**` for protocol 0); with no file
/// above, into `outputs/syft.pub.yaml` as `**`.
///
/// The file is rewritten as syft_permissions' `RuleSet.save` writes it:
/// every rule kept in its place, the new one appended, a rule with the same
/// pattern reused (so a rerun adds nothing), unknown keys and comments
/// dropped, every field written, PyYAML's `safe_dump` layout with keys
/// sorted. A file syft_permissions could not load is not touched: the
/// update throws, and the job is not run (its outputs could not be hidden).
public enum ReviewPermissions {
    /// syft_permissions' `PERMISSION_FILE_NAME`.
    public static let fileName = "syft.pub.yaml"

    /// A permission file is a few rules per job; past this it is not one.
    public static let maxFileBytes = 16 << 20

    /// The rules of one `syft.pub.yaml`, as syft_permissions' `RuleSet`
    /// model holds them.
    public struct RuleSet: Sendable, Hashable {
        public struct Rule: Sendable, Hashable {
            public var pattern: String
            public var admin: [String] = []
            public var write: [String] = []
            public var read: [String] = []

            public init(pattern: String, admin: [String] = [], write: [String] = [], read: [String] = []) {
                self.pattern = pattern
                self.admin = admin
                self.write = write
                self.read = read
            }
        }

        public var rules: [Rule] = []
        /// A terminal file governs everything below it: deeper files are
        /// not consulted.
        public var terminal = false

        public init(rules: [Rule] = [], terminal: Bool = false) {
            self.rules = rules
            self.terminal = terminal
        }
    }

    public enum AccessLevel: String, Sendable {
        case admin, write, read
    }

    // MARK: The runner's rule

    /// What syft-job's runner writes for a job it runs: read for the owner
    /// only on the job's review `outputs/`. Call it before the outputs
    /// reach the review folder, as syft-job does, so that the submitter
    /// never sees them before the owner shares them; and again once they
    /// are there: the owner's client may have rewritten the file meanwhile
    /// from an older copy (syft_perms does not lock), and with no file
    /// above, the rule lives in `outputs/` itself, which collecting the
    /// outputs replaces. Returns the file written, nil when it already
    /// said so (a rerun, the second call).
    @discardableResult
    public static func hideOutputs(of job: InboxJob, in layout: SyftBoxLayout) throws -> FilePath? {
        let outputs = ["app_data", "job", "review"] + job.relativePath.components.map(\.string) + ["outputs"]
        // syft-job empties outputs/ before it looks: a permission file there
        // (the previous run's outputs) does not count.
        return try grant(.read, to: layout.owner, folder: outputs, in: layout.root.appending(layout.owner),
                         consultingFolderItself: false)
    }

    /// What syft-job's runner does with `share_outputs_with_submitter` and
    /// `share_logs_with_submitter` after a run (`JobInfo.share_outputs`,
    /// `share_logs`): the submitter added to the outputs' read rule, and
    /// read rules for stdout.txt, stderr.txt and returncode.txt. Returns the
    /// files written.
    @discardableResult
    public static func share(_ job: InboxJob, in layout: SyftBoxLayout, outputs: Bool, logs: Bool) throws -> [FilePath] {
        let review = ["app_data", "job", "review"] + job.relativePath.components.map(\.string)
        let datasite = layout.root.appending(layout.owner)
        var written: [FilePath?] = []
        if outputs {
            written.append(try grant(.read, to: job.submitter, folder: review + ["outputs"], in: datasite))
        }
        if logs {
            for name in ["stdout.txt", "stderr.txt", "returncode.txt"] {
                written.append(try grant(.read, to: job.submitter, file: review + [name], in: datasite))
            }
        }
        return written.compactMap { $0 }
    }

    /// syft_perms' `add_permission_for_user(path, level, user)` for a file:
    /// the rule's pattern is the file's path relative to the governing
    /// permission file (found among its folders), with no `/**`; with no
    /// file above, the file's own folder gets one.
    @discardableResult
    public static func grant(_ level: AccessLevel, to user: String, file: [String], in datasite: FilePath) throws -> FilePath? {
        try update(level, user: user, target: file, isFolder: false, in: datasite, consultingFolderItself: false)
    }

    /// syft_perms' `add_permission_for_user(path, level, user, is_folder:
    /// true)`: `user` added to `level` of the rule for `folder` (its path
    /// components inside `datasite`) in the permission file that governs
    /// it. `consultingFolderItself: false` leaves out `folder`'s own
    /// permission file when looking for the governing one. Returns the
    /// file written, nil when nothing changed.
    @discardableResult
    public static func grant(_ level: AccessLevel, to user: String, folder: [String], in datasite: FilePath,
                             consultingFolderItself: Bool = true) throws -> FilePath? {
        try update(level, user: user, target: folder, isFolder: true, in: datasite,
                   consultingFolderItself: consultingFolderItself)
    }

    private static func update(_ level: AccessLevel, user: String, target folder: [String], isFolder: Bool,
                               in datasite: FilePath, consultingFolderItself: Bool) throws -> FilePath? {
        try updates.withLock { _ in
            let deepest = consultingFolderItself ? folder.count : folder.count - 1
            var governing: (depth: Int, rules: RuleSet, bytes: [UInt8])?
            if deepest >= 0 {
                for depth in 0...deepest {
                    let file = path(datasite, folder.prefix(depth)).appending(fileName)
                    guard let bytes = try readIfPresent(file) else { continue }
                    let rules = try parse(bytes, path: file)
                    governing = (depth, rules, bytes)
                    // A terminal file stops the walk (syft_permissions' ACLTree).
                    if rules.terminal, depth < folder.count { break }
                }
            }
            let depth = governing?.depth ?? (isFolder ? folder.count : folder.count - 1)
            let rest = folder[depth...].joined(separator: "/")
            let pattern = isFolder ? (rest.isEmpty ? "**" : rest + "/**") : rest
            var rules = governing?.rules ?? RuleSet()
            rules.add(user, to: level, pattern: pattern)
            let bytes = try serialize(rules)
            if let governing, governing.bytes == bytes { return nil }
            let directory = path(datasite, folder.prefix(depth))
            let file = directory.appending(fileName)
            // Already so (a folder's own file left out of the walk): no new
            // file, no fsync (a job's outputs get theirs before and after it runs).
            if governing == nil, let existing = try? readIfPresent(file), existing == bytes { return nil }
            if governing == nil { try FileSystem.makeDirectories(directory) }
            try FileSystem.writeAtomically(bytes, to: file, mode: 0o644, durable: true)
            return file
        }
    }

    /// One update at a time: jobs run concurrently and share the file.
    private static let updates = Mutex(())

    private static func path(_ datasite: FilePath, _ components: ArraySlice<String>) -> FilePath {
        components.reduce(datasite) { $0.appending($1) }
    }

    private static func readIfPresent(_ file: FilePath) throws -> [UInt8]? {
        do {
            return try FileSystem.readRegularFile(file, limit: maxFileBytes)
        } catch let error as SandboxError where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return nil
        } catch var error as SandboxError {
            error.message = "cannot read the permission file: \(error.message)"
            throw error
        }
    }

    // MARK: Reading

    /// Reads a permission file as syft_permissions' `RuleSet.load` does
    /// (`yaml.safe_load` or `{}`, then pydantic): unknown keys ignored,
    /// missing ones defaulted, wrong types refused.
    public static func parse(_ bytes: [UInt8], path: FilePath? = nil) throws -> RuleSet {
        func problem(_ message: String) -> SandboxError {
            SandboxError(.invalidPermissionFile, "syft.pub.yaml \(message)", path: path?.string)
        }
        let pairs: [(key: Node, value: Node)]
        do {
            pairs = try ClientYAML.mapping(bytes).pairs
        } catch {
            throw problem(error.message)
        }
        func field(_ pairs: some Sequence<(key: Node, value: Node)>, _ name: String) -> Node? {
            pairs.reversed().first { $0.key.tagName == .str && $0.key.scalar?.string == name }?.value
        }
        func string(_ node: Node, _ what: String) throws -> String {
            guard node.tagName == .str, let text = node.scalar?.string else { throw problem("\(what) is not a string") }
            return text
        }
        var set = RuleSet()
        if let terminal = field(pairs, "terminal") {
            guard let value = pydanticBool(terminal) else { throw problem("'terminal' is not a boolean") }
            set.terminal = value
        }
        if let rules = field(pairs, "rules") {
            guard let sequence = rules.sequence else { throw problem("'rules' is not a list") }
            for (index, item) in sequence.enumerated() {
                let context = "rules[\(index)]"
                guard let fields = item.mapping.map(Array.init) else { throw problem("\(context) is not a mapping") }
                guard let patternNode = field(fields, "pattern") else { throw problem("\(context) has no 'pattern'") }
                var rule = Rule(pattern: try string(patternNode, "\(context).pattern"))
                for template in ["{{.UserHash}}", "{{.Year}}", "{{.Month}}", "{{.Date}}"]
                where rule.pattern.contains(template) {
                    throw problem("\(context).pattern uses the unsupported template \(template)")
                }
                guard let access = field(fields, "access") else { throw problem("\(context) has no 'access'") }
                guard let levels = access.mapping.map(Array.init) else {
                    throw problem("\(context).access is not a mapping")
                }
                for level in [AccessLevel.admin, .write, .read] {
                    guard let node = field(levels, level.rawValue) else { continue }
                    guard let list = node.sequence else { throw problem("\(context).access.\(level) is not a list") }
                    let users = try list.map { try string($0, "an entry of \(context).access.\(level)") }
                    switch level {
                    case .admin: rule.admin = users
                    case .write: rule.write = users
                    case .read: rule.read = users
                    }
                }
                set.rules.append(rule)
            }
        }
        return set
    }

    public typealias Rule = RuleSet.Rule

    /// pydantic's lax booleans, from what `yaml.safe_load` makes of a value.
    private static func pydanticBool(_ node: Node) -> Bool? {
        guard let text = node.scalar?.string else { return nil }
        switch node.tagName {
        case .bool: return ["yes", "true", "on"].contains(text.lowercased())
        case .int:
            switch Int(text.filter { $0 != "_" }) {
            case 0: return false
            case 1: return true
            default: return nil
            }
        case .float:
            switch Double(text.filter { $0 != "_" }) {
            case 0: return false
            case 1: return true
            default: return nil
            }
        case .str:
            switch text.lowercased() {
            case "0", "off", "f", "false", "n", "no": return false
            case "1", "on", "t", "true", "y", "yes": return true
            default: return nil
            }
        default: return nil
        }
    }

    // MARK: Writing

    /// The file as syft_permissions' `RuleSet.save` writes it:
    /// `yaml.safe_dump(model_dump(mode="json"), default_flow_style=False)`.
    public static func serialize(_ set: RuleSet) throws -> [UInt8] {
        func list(_ users: [String]) -> Node { Node(users.map(ClientYAML.string)) }
        let rules = set.rules.map { rule in
            Node([
                (ClientYAML.string("access"), Node([
                    (ClientYAML.string("admin"), list(rule.admin)),
                    (ClientYAML.string("read"), list(rule.read)),
                    (ClientYAML.string("write"), list(rule.write)),
                ])),
                (ClientYAML.string("pattern"), ClientYAML.string(rule.pattern)),
            ])
        }
        do {
            return Array(try ClientYAML.emit([
                (key: ClientYAML.string("rules"), value: Node(rules)),
                (key: ClientYAML.string("terminal"), value: Node(set.terminal ? "true" : "false", ClientYAML.tag(.bool), .plain)),
            ]).utf8)
        } catch {
            throw SandboxError(.invalidPermissionFile, "cannot write syft.pub.yaml: \(error)")
        }
    }
}

extension ReviewPermissions.RuleSet {
    /// syft_perms' `_write_user_to_yaml`: the first rule with exactly this
    /// pattern, or a new one at the end; `user` added unless listed.
    public mutating func add(_ user: String, to level: ReviewPermissions.AccessLevel, pattern: String) {
        let index = rules.firstIndex { $0.pattern == pattern } ?? {
            rules.append(Rule(pattern: pattern))
            return rules.count - 1
        }()
        switch level {
        case .admin: if !rules[index].admin.contains(user) { rules[index].admin.append(user) }
        case .write: if !rules[index].write.contains(user) { rules[index].write.append(user) }
        case .read: if !rules[index].read.contains(user) { rules[index].read.append(user) }
        }
    }
}
