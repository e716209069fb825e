#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Sandbox
import SystemPackage
import Yams

extension SandboxError.Code {
    /// A job's state.yaml cannot be read or written.
    public static let invalidJobState = Self(rawValue: "invalid_job_state")
}

/// A job's `review/.../state.yaml` (syft-job's `JobState`): where the job
/// stands, who reviewed it, how it ended.
///
/// syft-job reads these files with pydantic, which ignores keys it does not
/// know and fills missing ones with defaults, and writes them with PyYAML's
/// `yaml.dump(..., default_flow_style=False)`: every field, `null` for
/// the unset ones, keys sorted, ISO timestamps in single quotes. This type
/// reads the same way (both protocols, missing keys, nulls) and writes by
/// updating the document it read: every key present is kept in its place,
/// unknown ones included (the client itself drops them when it rewrites
/// the file), known values left unchanged keep their text, changed ones
/// and missing fields (added where the client's sorted order puts them)
/// are formatted as the client formats them. Unknown values keep their
/// scalars' quoting; their lists and maps come out in block style, as the
/// client's `yaml.dump` writes any. A state written from scratch, or a
/// client's file updated, is byte for byte what the client would write.
public struct JobState: Sendable, Hashable {
    /// syft-job's `JobStatus`. A value it does not define is kept (and
    /// written back unchanged): a newer client may have written it.
    public enum Status: Sendable, Hashable, CustomStringConvertible {
        /// Files arrived, not yet validated.
        case received
        /// Validated, awaiting the owner's review.
        case pending
        /// Approved, to be run.
        case approved
        /// Rejected by the owner, or at receipt.
        case rejected
        /// Being run.
        case running
        /// Ran and exited 0, or the owner deposited a result.
        case done
        /// Ran and failed (or timed out, or was refused).
        case failed
        case unknown(String)

        public init(rawValue: String) {
            switch rawValue {
            case "received": self = .received
            case "pending": self = .pending
            case "approved": self = .approved
            case "rejected": self = .rejected
            case "running": self = .running
            case "done": self = .done
            case "failed": self = .failed
            default: self = .unknown(rawValue)
            }
        }

        public var rawValue: String {
            switch self {
            case .received: "received"
            case .pending: "pending"
            case .approved: "approved"
            case .rejected: "rejected"
            case .running: "running"
            case .done: "done"
            case .failed: "failed"
            case let .unknown(value): value
            }
        }

        public var description: String { rawValue }
    }

    /// `approval_method`: "manual" (the owner's `approve()`) or "auto".
    public enum ApprovalMethod: Sendable, Hashable, CustomStringConvertible {
        case manual
        case auto
        case unknown(String)

        public init(rawValue: String) {
            switch rawValue {
            case "manual": self = .manual
            case "auto": self = .auto
            default: self = .unknown(rawValue)
            }
        }

        public var rawValue: String {
            switch self {
            case .manual: "manual"
            case .auto: "auto"
            case let .unknown(value): value
            }
        }

        public var description: String { rawValue }
    }

    /// From the job's path: protocol 1 files carry `canonical_name` and
    /// `version`, protocol 0 files never do.
    public var protocolVersion: JobProtocol
    /// `received` when the file has no `status` (pydantic's default).
    public var status: Status = .received
    public var receivedAt: JobTimestamp?
    public var approvedBy: String?
    public var approvedAt: JobTimestamp?
    public var approvalMethod: ApprovalMethod?
    public var rejectedBy: String?
    public var rejectedAt: JobTimestamp?
    /// The reason given at review (approval or rejection), or why the job
    /// was rejected at receipt or refused.
    public var reviewReason: String?
    public var completedAt: JobTimestamp?
    /// The job's exit status; -1 when it timed out or could not be run.
    public var returnCode: Int?

    /// The document this state was read from; nil for a new state.
    private var source: SourceDocument?
    /// The client-format value of each known key present in `source`, to
    /// tell the values that changed (rewritten) from those that did not
    /// (their node kept as it was).
    private var sourceValues: [String: Value] = [:]

    /// A new state with nothing set: status `received`.
    public init(protocolVersion: JobProtocol) {
        self.protocolVersion = protocolVersion
    }

    // MARK: Predicates

    /// Approved and not yet picked up: the runner's cue (also after the
    /// client's `rerun()`, which moves a done or failed job back here).
    public var isApproved: Bool { status == .approved }

    /// Rejected, done or failed: nothing left for the runner, unless the
    /// owner reruns it. An unknown status is not terminal but is not to be
    /// acted on either.
    public var isTerminal: Bool {
        switch status {
        case .rejected, .done, .failed: true
        default: false
        }
    }

    /// The owner's `accept_by_depositing_result()` on a pending job: `done`
    /// with `return_code` 0, `approved_by`/`approved_at` filled in, but no
    /// `approval_method` (which `approve()` always sets). A result deposited
    /// on an already approved job keeps that approval's method and cannot
    /// be told from state.yaml alone; there is no `returncode.txt` then.
    public var isDepositedResult: Bool { status == .done && approvalMethod == nil }

    // MARK: Transitions

    /// Received and valid, awaiting review (syft-job's `receive_job`).
    public func markPending(at time: JobTimestamp = .now()) -> JobState {
        var state = self
        state.status = .pending
        state.receivedAt = receivedAt ?? time
        return state
    }

    /// Rejected, at receipt or by the owner: syft-job's `reject()` sets
    /// these three; at receipt it also sets `received_at` to the same time.
    public func markRejected(reason: String?, by owner: String, at time: JobTimestamp = .now()) -> JobState {
        var state = self
        state.status = .rejected
        state.receivedAt = receivedAt ?? time
        state.rejectedBy = owner
        state.rejectedAt = time
        state.reviewReason = reason
        return state
    }

    /// Approved (syft-job's `approve()`), which also replaces
    /// `review_reason` with the approval's reason, nil included.
    public func markApproved(by owner: String, method: ApprovalMethod, reason: String? = nil,
                             at time: JobTimestamp = .now()) -> JobState {
        var state = self
        state.status = .approved
        state.approvedBy = owner
        state.approvedAt = time
        state.approvalMethod = method
        state.reviewReason = reason
        return state
    }

    /// Being run: syft-job's runner changes the status only.
    public func markRunning() -> JobState {
        var state = self
        state.status = .running
        return state
    }

    /// Ran: `done` for exit status 0, `failed` otherwise (-1 for a timeout,
    /// as syft-job writes), with `completed_at` and `return_code`.
    public func markFinished(returnCode: Int, at time: JobTimestamp = .now()) -> JobState {
        var state = self
        state.status = returnCode == 0 ? .done : .failed
        state.completedAt = time
        state.returnCode = returnCode
        return state
    }

    /// Killed at the time limit: failed with -1.
    public func markTimedOut(at time: JobTimestamp = .now()) -> JobState {
        markFinished(returnCode: Self.timedOutReturnCode, at: time)
    }

    /// Not run, for `reason` (e.g. the submission changed after it was
    /// received): failed with -1, as syft-job's runner records a job it
    /// could not execute, and the reason in `review_reason` where the
    /// client shows it.
    public func markFailed(reason: String, at time: JobTimestamp = .now()) -> JobState {
        var state = markFinished(returnCode: Self.timedOutReturnCode, at: time)
        state.reviewReason = reason
        return state
    }

    /// The return code syft-job records for a timeout or a job it could
    /// not run.
    public static let timedOutReturnCode = -1

    // MARK: Reading

    /// Parses a state.yaml. An empty file is a new state, as for syft-job
    /// (`yaml.safe_load(f) or {}`). Wrong types for known keys throw: the
    /// client could not load such a file either.
    public static func parse(_ bytes: [UInt8], protocolVersion: JobProtocol) throws -> JobState {
        let text: String
        let pairs: [(key: Node, value: Node)]
        do {
            (text, pairs) = try ClientYAML.mapping(bytes)
        } catch {
            throw SandboxError(.invalidJobState, "state.yaml \(error.message)")
        }
        var state = JobState(protocolVersion: protocolVersion)
        state.source = SourceDocument(text: text, pairs: pairs)
        func value(_ key: String) throws -> Node? {
            guard let node = pairs.last(where: { $0.key.string == key && $0.key.scalar != nil })?.value,
                  node.tagName != .null else { return nil }
            guard node.scalar != nil else {
                throw SandboxError(.invalidJobState, "state.yaml: '\(key)' is not a plain value")
            }
            return node
        }
        func string(_ key: String) throws -> String? { try value(key)?.scalar?.string }
        func timestamp(_ key: String) throws -> JobTimestamp? { try string(key).map(JobTimestamp.init(text:)) }

        if let status = try string("status") { state.status = Status(rawValue: status) }
        state.receivedAt = try timestamp("received_at")
        state.approvedBy = try string("approved_by")
        state.approvedAt = try timestamp("approved_at")
        state.approvalMethod = try string("approval_method").map(ApprovalMethod.init(rawValue:))
        state.rejectedBy = try string("rejected_by")
        state.rejectedAt = try timestamp("rejected_at")
        state.reviewReason = try string("review_reason")
        state.completedAt = try timestamp("completed_at")
        if let code = try string("return_code") {
            // pydantic takes "3" for 3 as well.
            guard let number = Int(code) else {
                throw SandboxError(.invalidJobState, "state.yaml: 'return_code' is not a whole number: \(code)")
            }
            state.returnCode = number
        }
        let present = Set(pairs.compactMap { $0.key.scalar == nil ? nil : $0.key.string })
        for (key, value) in state.clientValues() where present.contains(key) {
            state.sourceValues[key] = value
        }
        // Keep the identity fields as they are, whatever they say.
        for key in ["canonical_name", "version"] where present.contains(key) {
            state.sourceValues[key] = .kept
        }
        return state
    }

    /// Reads `path` (a regular file, not followed if a symlink); nil when
    /// there is none: the job has not been received.
    public static func read(from path: FilePath, protocolVersion: JobProtocol) throws -> JobState? {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readRegularFile(path, limit: maxFileBytes)
        } catch let error as SandboxError where error.errno == .noSuchFileOrDirectory {
            return nil
        }
        do {
            return try parse(bytes, protocolVersion: protocolVersion)
        } catch var error as SandboxError {
            error.path = path.string
            throw error
        }
    }

    /// A state.yaml is a few hundred bytes; anything past this is not one.
    public static let maxFileBytes = 1 << 20

    // MARK: Writing

    /// The document to write: the source's keys in their order, known
    /// ones updated, missing known ones inserted in the client's order.
    public func serialized() throws -> [UInt8] {
        var pairs: [(key: Node, value: Node)] = []
        if let source {
            pairs = source.pairs.map {
                (key: $0.key, value: ClientYAML.preserved($0.value))
            }
        }
        let values = clientValues()
        let known = Set(values.map(\.key))
        // Only the last of duplicate known keys counts (as in PyYAML); drop
        // the others so that the file says one thing.
        var seen: Set<String> = []
        var deduplicated: [(key: Node, value: Node)] = []
        for pair in pairs.reversed() {
            if let key = pair.key.scalar?.string, known.contains(key) {
                guard seen.insert(key).inserted else { continue }
            }
            deduplicated.append(pair)
        }
        pairs = deduplicated.reversed()
        // The keys' texts, beside the pairs (reading `Node.string` resolves
        // the key's tag each time).
        var names = pairs.map { $0.key.scalar?.string }
        func index(of key: String) -> Int? { names.firstIndex { $0 == key } }
        // New keys go after the nearest known key before them in the
        // client's order; those before any present key go before the first.
        var cursor = values.lazy.compactMap { index(of: $0.key) }.min() ?? pairs.count
        for (key, value) in values {
            if let position = index(of: key) {
                if sourceValues[key] != value, sourceValues[key] != .kept {
                    pairs[position].value = value.node
                }
                cursor = position + 1
            } else {
                pairs.insert((key: ClientYAML.string(key), value: value.node), at: cursor)
                names.insert(key, at: cursor)
                cursor += 1
            }
        }
        do {
            return Array(try ClientYAML.emit(pairs).utf8)
        } catch {
            throw SandboxError(.invalidJobState, "cannot write state.yaml: \(error)")
        }
    }

    /// Writes atomically (temporary file, fsync, rename): the client and
    /// the sync engine read the file at any moment.
    public func write(to path: FilePath) throws {
        try FileSystem.writeAtomically(try serialized(), to: path, mode: 0o644, durable: true)
    }

    // MARK: Client format

    /// A value as the client writes it.
    enum Value: Hashable {
        case null
        case string(String)
        case int(Int)
        /// A key the client writes but that is kept as read.
        case kept

        var node: Node {
            switch self {
            case .null, .kept: ClientYAML.null
            case let .string(text): ClientYAML.string(text)
            case let .int(number): ClientYAML.int(number)
            }
        }
    }

    /// Every key the client writes for this protocol, in its order
    /// (`yaml.dump` sorts keys), with this state's values.
    func clientValues() -> [(key: String, value: Value)] {
        func text(_ value: String?) -> Value { value.map(Value.string) ?? .null }
        var values: [(key: String, value: Value)] = [
            ("approval_method", text(approvalMethod?.rawValue)),
            ("approved_at", text(approvedAt?.text)),
            ("approved_by", text(approvedBy)),
            ("canonical_name", .string("JobState")),
            ("completed_at", text(completedAt?.text)),
            ("received_at", text(receivedAt?.text)),
            ("rejected_at", text(rejectedAt?.text)),
            ("rejected_by", text(rejectedBy)),
            ("return_code", returnCode.map(Value.int) ?? .null),
            ("review_reason", text(reviewReason)),
            ("status", .string(status.rawValue)),
            ("version", .string("1")),
        ]
        if protocolVersion == .v0 {
            values.removeAll { $0.key == "canonical_name" || $0.key == "version" }
        }
        return values
    }
}

// MARK: - Timestamps

/// A time in state.yaml or config.yaml, kept as the text it was read as.
/// New ones are written as the client writes them: pydantic's ISO 8601 in
/// UTC, `2026-11-25T05:51:17.398502Z`, the fraction left out when it is
/// zero (`2026-01-02T03:04:05Z`).
public struct JobTimestamp: Sendable, Hashable, CustomStringConvertible {
    public var text: String

    public init(text: String) { self.text = text }

    /// `microseconds` outside 0..<1_000_000 carry into the seconds.
    public init(secondsSinceEpoch seconds: Int64, microseconds: Int = 0) {
        var seconds = seconds + Int64(microseconds / 1_000_000)
        var microseconds = microseconds % 1_000_000
        if microseconds < 0 {
            microseconds += 1_000_000
            seconds -= 1
        }
        // Not gmtime_r: glibc reads /etc/localtime on its first call, UTC or not.
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let clock = seconds - days * 86_400
        let (year, month, day) = Self.civilFromDays(days)
        func padded(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var text = "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))"
            + "T\(padded(clock / 3600, 2)):\(padded(clock / 60 % 60, 2)):\(padded(clock % 60, 2))"
        if microseconds != 0 { text += "." + padded(Int64(microseconds), 6) }
        self.text = text + "Z"
    }

    /// `date` in UTC to the second, `2026-11-30T20:45:29Z`.
    public init(_ date: Date) {
        self.init(secondsSinceEpoch: Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    /// The current time, to the microsecond as Python's datetime has it.
    public static func now() -> JobTimestamp {
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        return JobTimestamp(secondsSinceEpoch: Int64(clock.tv_sec), microseconds: Int(clock.tv_nsec / 1000))
    }

    /// Microseconds since the epoch, for the ISO 8601 forms the client
    /// writes and reads (`YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH[:MM]]`,
    /// without zone taken as UTC, or a date alone); nil for anything else.
    public var microsecondsSinceEpoch: Int64? {
        var bytes = Array(text.utf8)[...]
        func number(_ count: Int) -> Int64? {
            guard bytes.count >= count else { return nil }
            var value: Int64 = 0
            for byte in bytes.prefix(count) {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            bytes = bytes.dropFirst(count)
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard let first = bytes.first, characters.utf8.contains(first) else { return false }
            bytes = bytes.dropFirst()
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        var seconds = Self.daysFromCivil(year: year, month: month, day: day) * 86_400
        var micros: Int64 = 0
        if !bytes.isEmpty {
            guard expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
                  let second = number(2), hour < 24, minute < 60, second < 61 else { return nil }
            seconds += hour * 3600 + minute * 60 + second
            if expect(".") {
                var digits = 0
                while let byte = bytes.first, (0x30...0x39).contains(byte) {
                    if digits < 6 { micros = micros * 10 + Int64(byte - 0x30) }
                    digits += 1
                    bytes = bytes.dropFirst()
                }
                guard digits > 0 else { return nil }
                for _ in digits..<max(digits, 6) { micros *= 10 }
            }
            if expect("Zz") {
            } else if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                bytes = bytes.dropFirst()
                guard let hours = number(2) else { return nil }
                _ = expect(":")
                let minutes = bytes.isEmpty ? 0 : number(2)
                guard let minutes else { return nil }
                let offset = hours * 3600 + minutes * 60
                seconds += sign == UInt8(ascii: "+") ? -offset : offset
            }
            guard bytes.isEmpty else { return nil }
        }
        return seconds * 1_000_000 + micros
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (the inverse
    /// of `daysFromCivil`, after Howard Hinnant's `civil_from_days`).
    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468 // from 0000-03-01
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100) // from March 1
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    public var description: String { text }
}

/// A state.yaml as read: its text, which is what tells two states apart,
/// and its pairs, kept so that writing it back needs no second parse.
/// `@unchecked`: Yams' nodes are values whose tags are classes, but
/// `ClientYAML.mapping` names every tag, so none is ever resolved (written)
/// again.
struct SourceDocument: Hashable, @unchecked Sendable {
    let text: String
    let pairs: [(key: Node, value: Node)]

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.text == rhs.text }
    func hash(into hasher: inout Hasher) { hasher.combine(text) }
}

// MARK: - YAML as the client reads and writes it

/// YAML read and written the way syft-job does with PyYAML: `safe_load`
/// and `yaml.dump(default_flow_style=False)`, which libyaml (under Yams)
/// matches once given PyYAML's YAML 1.1 implicit types and told which
/// strings need quotes.
enum ClientYAML {
    struct Problem: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Yams types plain scalars with regular expressions (slow: see
    /// `ImplicitYAMLTypes`). Composing with this resolver, every plain scalar
    /// Yams types (it hashes mapping keys) gets this marker, by the cheapest
    /// expression there is; `retyped` then gives every untagged plain scalar
    /// PyYAML's type, and leaves explicitly tagged ones as they are. Every
    /// node then has its tag named, so none is resolved (mutated) later.
    private static let implicitMarker = Tag.Name(rawValue: "tag:syft-sandbox-run:implicit")
    private static let composing: Resolver = {
        // A constant pattern: a failure is a programming error.
        try! Resolver.basic.appending(implicitMarker, "^")
    }()

    /// One constructor for every tag: `Constructor.default` builds a new
    /// one, dictionaries and all, each time it is asked for (Yams' default
    /// argument of every `Tag(…)`). Immutable once made.
    nonisolated(unsafe) private static let constructor = Constructor.default

    /// A tag of this name, with the shared constructor.
    static func tag(_ name: Tag.Name) -> Tag { Tag(name, composing, constructor) }

    private static func retyped(_ node: Node) -> Node {
        switch node {
        case var .scalar(scalar):
            let name = scalar.tag.description // the name as parsed: not typed by it
            if name.isEmpty || name == implicitMarker.rawValue {
                scalar.tag = tag(ImplicitYAMLTypes.tag(of: scalar.string))
            }
            return .scalar(scalar)
        case var .sequence(sequence):
            for index in sequence.indices { sequence[index] = retyped(sequence[index]) }
            if sequence.tag.description.isEmpty { sequence.tag = tag(.seq) }
            return .sequence(sequence)
        case var .mapping(mapping):
            for index in mapping.indices {
                mapping[index] = (key: retyped(mapping[index].key), value: retyped(mapping[index].value))
            }
            if mapping.tag.description.isEmpty { mapping.tag = tag(.map) }
            return .mapping(mapping)
        case .alias:
            return node
        }
    }

    /// The top-level mapping of a document, its pairs in file order; no
    /// pairs for an empty document.
    static func mapping(_ bytes: [UInt8]) throws(Problem) -> (text: String, pairs: [(key: Node, value: Node)]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Problem(message: "is not valid UTF-8") }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text, composing, constructor, .utf8).map(retyped)
        } catch {
            throw Problem(message: "is not valid YAML: \(error)")
        }
        // A document of nothing or `null` is PyYAML's None, which the client
        // reads as an empty mapping.
        guard let node, node.tagName != .null else { return (text, []) }
        guard let mapping = node.mapping else { throw Problem(message: "is not a mapping of keys to values") }
        return (text, Array(mapping))
    }

    static var null: Node { Node("null", tag(.null), .plain) }

    static func int(_ value: Int) -> Node { Node(String(value), tag(.int), .plain) }

    /// A string as PyYAML writes it: plain when it would read back as a
    /// string, else in single quotes (`'1'`, `'null'`, `''`, timestamps);
    /// libyaml goes on to double quotes when neither is possible (line
    /// breaks with spaces, non-ASCII: `allow_unicode` is off in both).
    static func string(_ value: String) -> Node {
        Node(value, tag(.str), readsAsString(value) ? .any : .singleQuoted)
    }

    static func readsAsString(_ plain: String) -> Bool {
        ImplicitYAMLTypes.tag(of: plain) == .str
    }

    /// A node read from a file, to be written back: strings that only read
    /// as strings thanks to an explicit tag (`!!str 1`) get quotes instead,
    /// since tags are not written.
    static func preserved(_ node: Node) -> Node {
        switch node {
        case var .scalar(scalar):
            if node.tagName == .str, scalar.style == .plain || scalar.style == .any, !readsAsString(scalar.string) {
                scalar.style = .singleQuoted
            }
            return .scalar(scalar)
        case var .sequence(sequence):
            for index in sequence.indices { sequence[index] = preserved(sequence[index]) }
            return .sequence(sequence)
        case var .mapping(mapping):
            for index in mapping.indices { mapping[index].value = preserved(mapping[index].value) }
            return .mapping(mapping)
        case .alias:
            return node
        }
    }

    static func emit(_ pairs: [(key: Node, value: Node)]) throws -> String {
        try Yams.serialize(node: .mapping(Node.Mapping(pairs)))
    }
}

extension Node {
    /// The tag's name, read without making a `Tag` to compare with (see
    /// `ClientYAML.constructor`).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.description) }
}

extension Date {
    /// ISO 8601 in UTC to the second (`2026-11-30T20:45:29Z`), formatted
    /// without Foundation's calendar machinery (which costs a millisecond
    /// to set up, on the one-shot CLI's path).
    public var iso8601UTC: String { JobTimestamp(self).text }
}
