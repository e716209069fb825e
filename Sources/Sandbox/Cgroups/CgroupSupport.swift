import CSandbox
import Glibc
import Synchronization
import SystemPackage

/// Where per-job cgroups can be made on this machine, found once.
///
/// - cgroup v2 (what current distributions run): a delegated subtree with
///   the memory and pids controllers. The runner's own cgroup becomes the
///   parent of the jobs' groups; because a v2 group with processes cannot
///   hand controllers to children, the runner first moves itself into a
///   leaf of its own (`supervisor-PID`), as nsjail and crun do.
/// - cgroup v1: one hierarchy per controller (memory, pids; freezer and
///   cpuacct when mounted); the jobs' groups go under `syft-sandbox-run/`
///   in the runner's own group of each.
/// - neither: limits fall back to rlimits, and result.json says so.
public enum CgroupSupport: Sendable, CustomStringConvertible {
    case v2(parent: FilePath)
    case v1(hierarchies: [Hierarchy])
    case unavailable(reason: String)

    /// One v1 hierarchy: its controller and the parent of the jobs' groups.
    public struct Hierarchy: Sendable, Hashable {
        public var controller: String
        public var parent: FilePath
    }

    /// Controllers the limits need (v2 reads CPU time from `cpu.stat`,
    /// which every v2 group has, controller enabled or not).
    static let required = ["memory", "pids"]

    public var description: String {
        switch self {
        case let .v2(parent): "cgroup v2 at \(parent)"
        case let .v1(hierarchies): "cgroup v1 (\(hierarchies.map(\.controller).joined(separator: ", ")))"
        case let .unavailable(reason): "no cgroups (\(reason))"
        }
    }

    /// This process's answer, found on first use (for v2 that may move the
    /// runner into a leaf group of its own, once).
    public static let detected: CgroupSupport = detect()

    public var isAvailable: Bool {
        if case .unavailable = self { return false }
        return true
    }

    /// Finds (and prepares, for v2) the place for job cgroups. v2 first.
    public static func detect(procRoot: FilePath = "/proc") -> CgroupSupport {
        guard let mountinfo = try? CgroupFiles.read(procRoot.appending("self/mountinfo")),
              let membership = try? CgroupFiles.read(procRoot.appending("self/cgroup")) else {
            return .unavailable(reason: "cannot read /proc/self/mountinfo or /proc/self/cgroup")
        }
        let mounts = CgroupMount.parse(mountinfo: mountinfo)
        let groups = CgroupMembership.parse(membership)
        var reasons: [String] = []
        switch prepareV2(mounts: mounts, groups: groups) {
        case let .success(parent): return .v2(parent: parent)
        case let .failure(reason): reasons.append("v2: " + reason.text)
        }
        switch prepareV1(mounts: mounts, groups: groups) {
        case let .success(hierarchies): return .v1(hierarchies: hierarchies)
        case let .failure(reason): reasons.append("v1: " + reason.text)
        }
        return .unavailable(reason: CgroupFiles.joined(reasons, "; "))
    }

    /// True when /sys/fs/cgroup itself is a cgroup2 filesystem (a unified
    /// hierarchy: what current distributions run), found with one statfs.
    /// A hint for the order of a sandbox's start (its cgroup first, to clone
    /// into it); `detect` decides where groups go.
    static var unifiedHierarchyMounted: Bool {
        var type: UInt64 = 0
        return csb_filesystem_type("/sys/fs/cgroup", &type) == 0 && type == 0x6367_7270 // CGROUP2_SUPER_MAGIC
    }

    private static let swept = Atomic<Bool>(false)

    /// Removes the groups runners that are gone left behind, the first time
    /// this process asks (its first sandbox, once the job runs: not on the
    /// way to it). Bounded: a group whose processes are still dying is left
    /// to the next sweep. `ownGroups`: how many groups this process has in
    /// each v1 parent now; a parent with no other subfolder is not read.
    func sweepStaleGroupsOnce(ownGroups: Int) {
        guard !Self.swept.exchange(true, ordering: .relaxed) else { return }
        switch self {
        case let .v2(parent): Self.sweepStaleGroups(in: parent)
        case let .v1(hierarchies):
            for hierarchy in hierarchies where Self.subfolderCount(hierarchy.parent).map({ $0 > ownGroups }) ?? true {
                Self.sweepStaleGroups(in: hierarchy.parent)
            }
        case .unavailable: break
        }
    }

    /// A cgroupfs folder's subfolders, from its link count (kernfs keeps it
    /// at two plus their number): one stat instead of reading the folder.
    static func subfolderCount(_ directory: FilePath) -> Int? {
        var info = stat()
        guard stat(directory.string, &info) == 0, info.st_nlink >= 2 else { return nil }
        return Int(info.st_nlink) - 2
    }

    struct Reason: Error { var text: String; init(_ text: String) { self.text = text } }

    static func prepareV2(mounts: [CgroupMount], groups: CgroupMembership) -> Result<FilePath, Reason> {
        guard let mount = mounts.first(where: { $0.isV2 }) else { return .failure(Reason("no cgroup2 mount")) }
        guard let path = groups.unified else { return .failure(Reason("no cgroup2 entry in /proc/self/cgroup")) }
        let own = path.below(mount.point)
        let available = CgroupFiles.words((try? CgroupFiles.read(own.appending("cgroup.controllers"))) ?? "")
        let missing = required.filter { !available.contains($0) }
        guard missing.isEmpty else {
            return .failure(Reason("\(own) lacks the \(CgroupFiles.joined(missing, " and ")) controller"))
        }
        let enable = CgroupFiles.joined(required.map { "+" + $0 }, " ")
        // The root group may hold processes and children at once; any other
        // must be emptied first: move the runner into a leaf of its own.
        if let error = CgroupFiles.write(enable, to: own.appending("cgroup.subtree_control")) {
            guard error == .resourceBusy else {
                return .failure(Reason("cannot enable \(enable) in \(own): \(error.symbolicName)"))
            }
            let leaf = own.appending("supervisor-\(getpid())")
            if mkdir(leaf.string, 0o755) != 0, errno != EEXIST {
                return .failure(Reason("cannot create \(leaf): \(Errno(rawValue: errno).symbolicName)"))
            }
            if let error = CgroupFiles.write("0", to: leaf.appending("cgroup.procs")) {
                return .failure(Reason("cannot move the runner into \(leaf): \(error.symbolicName)"))
            }
            if let error = CgroupFiles.write(enable, to: own.appending("cgroup.subtree_control")) {
                return .failure(Reason("cannot enable \(enable) in \(own): \(error.symbolicName)"))
            }
        }
        return .success(own)
    }

    /// Removes the groups a runner that is gone left behind (killed with
    /// SIGKILL, it could not clean up): `job-PID-…` and `supervisor-PID`
    /// whose PID no longer exists. Their sandboxes died with the runner
    /// (PID 1 exits when its parent does); anything left is killed first.
    static func sweepStaleGroups(in parent: FilePath) {
        guard let directory = opendir(parent.string) else { return }
        var stale: [FilePath] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let parts = name.split(separator: "-")
            guard parts.count >= 2, parts[0] == "job" || parts[0] == "supervisor", let pid = pid_t(parts[1]),
                  pid > 0, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            stale.append(parent.appending(name))
        }
        closedir(directory)
        for group in stale { JobCgroup.removeStale(group) }
    }

    /// v1 controllers used when present: the freezer (to kill the group
    /// at once; the PID namespace kills everything anyway) and cpuacct (the
    /// job's CPU time across all its processes; without it the CPU limit
    /// is RLIMIT_CPU per process).
    static let optionalV1 = ["freezer", "cpuacct"]

    static func prepareV1(mounts: [CgroupMount], groups: CgroupMembership) -> Result<[Hierarchy], Reason> {
        var hierarchies: [Hierarchy] = []
        for controller in required + optionalV1 {
            guard let mount = mounts.first(where: { !$0.isV2 && $0.controllers.contains(controller) }),
                  let path = groups.v1[controller] else {
                if optionalV1.contains(controller) { continue }
                return .failure(Reason("no \(controller) hierarchy"))
            }
            let parent = path.below(mount.point).appending("syft-sandbox-run")
            // Two controllers co-mounted in one hierarchy share one group;
            // the first one's entry stands for both.
            if hierarchies.contains(where: { $0.parent == parent }) { continue }
            if mkdir(parent.string, 0o755) != 0, errno != EEXIST {
                return .failure(Reason("cannot create \(parent): \(Errno(rawValue: errno).symbolicName)"))
            }
            hierarchies.append(Hierarchy(controller: controller, parent: parent))
        }
        return .success(hierarchies)
    }
}

/// A cgroup filesystem mount, from /proc/self/mountinfo.
struct CgroupMount: Hashable {
    var point: FilePath
    var isV2: Bool
    /// v1: the controllers of the hierarchy (the super options, in order:
    /// an array, not a Set, for the reason `CgroupMembership` gives).
    var controllers: [String]

    static func parse(mountinfo: String) -> [CgroupMount] {
        // Over the bytes, by index: the generic split and search of a
        // String's UTF-8 view took 0.07 ms for 21 lines, on the way to the
        // job's placement.
        Array(mountinfo.utf8).withUnsafeBufferPointer { bytes in
            ByteLines.lines(bytes).compactMap { line in parse(line: line, in: bytes) }
        }
    }

    /// ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS.
    /// Fields hold no space (mountinfo escapes it).
    private static func parse(line: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) -> CgroupMount? {
        let fields = ByteLines.fields(of: line, in: bytes, separatedBy: UInt8(ascii: " "))
        guard let dash = fields.firstIndex(where: { ByteLines.text(bytes, $0) == "-" }), dash >= 5,
              fields.count >= dash + 4 else { return nil }
        let type = ByteLines.text(bytes, fields[dash + 1])
        guard type == "cgroup" || type == "cgroup2" else { return nil }
        let point = FilePath(unescape(ByteLines.text(bytes, fields[4])))
        if type == "cgroup2" { return CgroupMount(point: point, isV2: true, controllers: []) }
        let controllers = ByteLines.fields(of: fields[dash + 3], in: bytes, separatedBy: UInt8(ascii: ","))
            .map { ByteLines.text(bytes, $0) }
        return CgroupMount(point: point, isV2: false, controllers: controllers)
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescape(_ text: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            if byte == UInt8(ascii: "\\"), input.count >= 3,
               let value = UInt8(String(decoding: input.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                input = input.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The runner's own groups, from /proc/self/cgroup.
///
/// (No Dictionary or Set on the path of a one-shot run: the first use of
/// one keyed by String makes the Swift runtime scan every protocol
/// conformance of the binary for String's Hashable, 0.1–0.3 ms; a handful
/// of entries are searched in an array as fast.)
struct CgroupMembership: Hashable {
    /// The v2 path ("0::/path"), relative to the v2 mount.
    var unified: RelativeGroupPath?
    /// v1 paths by controller ("4:memory:/path").
    var v1 = ControllerPaths()

    struct ControllerPaths: Hashable {
        private var entries: [Entry] = []
        private struct Entry: Hashable {
            var controller: String
            var path: RelativeGroupPath
        }

        subscript(controller: String) -> RelativeGroupPath? {
            get { entries.first { $0.controller == controller }?.path }
            set {
                entries.removeAll { $0.controller == controller }
                if let newValue { entries.append(Entry(controller: controller, path: newValue)) }
            }
        }
    }

    static func parse(_ text: String) -> CgroupMembership {
        var result = CgroupMembership(unified: nil)
        Array(text.utf8).withUnsafeBufferPointer { bytes in
            for line in ByteLines.lines(bytes) {
                // "ID:CONTROLLERS:PATH"; the path may hold ':'.
                guard let first = bytes[line].firstIndex(of: UInt8(ascii: ":")),
                      let second = bytes[(first + 1)..<line.upperBound].firstIndex(of: UInt8(ascii: ":")) else { continue }
                let path = RelativeGroupPath(ByteLines.text(bytes, (second + 1)..<line.upperBound))
                let controllers = (first + 1)..<second
                if ByteLines.text(bytes, line.lowerBound..<first) == "0" && controllers.isEmpty {
                    result.unified = path
                } else {
                    for controller in ByteLines.fields(of: controllers, in: bytes, separatedBy: UInt8(ascii: ",")) {
                        result.v1[ByteLines.text(bytes, controller)] = path
                    }
                }
            }
        }
        return result
    }
}

/// Lines and fields of a small text file by byte offsets (mountinfo,
/// /proc/self/cgroup), without the generic collection algorithms.
enum ByteLines {
    /// The lines, without their newlines; empty ones left out.
    static func lines(_ bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        fields(of: 0..<bytes.count, in: bytes, separatedBy: UInt8(ascii: "\n"))
    }

    /// The non-empty runs of `range` between `separator`s.
    static func fields(of range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>,
                       separatedBy separator: UInt8) -> [Range<Int>] {
        fields(of: range, in: bytes) { $0 == separator }
    }

    /// The non-empty runs of `range` between bytes that are separators.
    static func fields(of range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>,
                       separatedBy isSeparator: (UInt8) -> Bool) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var index = range.lowerBound
        while index < range.upperBound {
            while index < range.upperBound && isSeparator(bytes[index]) { index += 1 }
            let start = index
            while index < range.upperBound && !isSeparator(bytes[index]) { index += 1 }
            if start < index { result.append(start..<index) }
        }
        return result
    }

    static func text(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// A group's path below its hierarchy's mount, without leading "/".
struct RelativeGroupPath: Hashable {
    var components: [FilePath.Component]

    init(_ text: String) {
        components = Array(text.utf8).withUnsafeBufferPointer { bytes in
            ByteLines.fields(of: 0..<bytes.count, in: bytes, separatedBy: UInt8(ascii: "/")).compactMap { range in
                FilePath.Component(ByteLines.text(bytes, range)).flatMap { $0.kind == .regular ? $0 : nil }
            }
        }
    }

    /// The group's folder below `mount`. (Spelled out: FilePath's generic
    /// `appending(_:)` of components costs a conformance scan per process.)
    func below(_ mount: FilePath) -> FilePath {
        var text = mount.string
        for component in components {
            if !text.hasSuffix("/") { text += "/" }
            text += component.string
        }
        return FilePath(text)
    }
}

/// Reading and writing the small control files of cgroupfs.
enum CgroupFiles {
    static func read(_ path: FilePath) throws -> String {
        let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        defer { try? fd.close() }
        guard let text = read(fd.rawValue) else { throw Errno(rawValue: errno) }
        return text
    }

    /// One write() of `text`; the errno when the kernel refused it.
    @discardableResult
    static func write(_ text: String, to path: FilePath) -> Errno? {
        let fd = open(path.string, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return Errno(rawValue: errno) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        let n = Glibc.write(fd, &bytes, bytes.count)
        return n == bytes.count ? nil : Errno(rawValue: n < 0 ? errno : EIO)
    }

    /// The whole content of an open control file (at most 4 MiB), read
    /// from its start (cgroupfs and procfs make it afresh for a read at
    /// offset 0: the same descriptor can be read again later, and reads at
    /// the offsets where the last one ended go on without starting over);
    /// nil for -1 or a failed read. `oneRecord`: a file that the kernel
    /// makes in one piece (a cgroup control file: one seq_file record, not
    /// a line per entry as mountinfo), which a read returns whole or up to
    /// the buffer's end: a short read is its end, and no second read is
    /// needed to see it.
    static func read(_ fd: Int32, oneRecord: Bool = false) -> String? {
        guard fd >= 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 4 << 10)
        var length = 0
        while true {
            if length == bytes.count {
                guard bytes.count < 4 << 20 else { break }
                bytes += [UInt8](repeating: 0, count: bytes.count)
            }
            let wanted = bytes.count - length
            let n = bytes.withUnsafeMutableBytes { buffer in
                pread(fd, buffer.baseAddress! + length, wanted, off_t(length))
            }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { return nil }
            length += n
            if n == 0 || (oneRecord && n < wanted) { break }
        }
        return String(decoding: bytes[..<length], as: UTF8.self)
    }

    /// "key value" lines (memory.events, pids.events, cpu.stat).
    static func keyedValues(_ path: FilePath) -> KeyedValues {
        guard let text = try? read(path) else { return KeyedValues() }
        return keyedValues(in: text)
    }

    static func keyedValues(in text: String) -> KeyedValues { KeyedValues(text: text) }

    /// A control file's "key value" lines, looked up by key. The text is
    /// scanned at each lookup (a few short lines): no split into arrays of
    /// substrings and pairs, whose types' metadata a process instantiates
    /// from their mangled names on first use, on the way from a job's end
    /// to its results.
    struct KeyedValues {
        var text = ""

        subscript(key: String) -> UInt64? {
            var found: UInt64?
            forEachPair { name, value in
                if found == nil, name.elementsEqual(key.utf8) { found = value }
            }
            return found
        }

        /// The keys, in the file's order.
        var keys: [String] {
            var keys: [String] = []
            forEachPair { name, _ in keys.append(String(decoding: name, as: UTF8.self)) }
            return keys
        }

        /// Each line of exactly two space-separated words whose second is a
        /// decimal number.
        private func forEachPair(_ body: (UnsafeBufferPointer<UInt8>, UInt64) -> Void) {
            var text = text
            text.withUTF8 { bytes in
                var lineStart = 0
                while lineStart < bytes.count {
                    var lineEnd = lineStart
                    while lineEnd < bytes.count, bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                    var index = lineStart
                    var first: Range<Int>?, second: Range<Int>?, count = 0
                    while index < lineEnd {
                        while index < lineEnd, bytes[index] == UInt8(ascii: " ") { index += 1 }
                        guard index < lineEnd else { break }
                        let start = index
                        while index < lineEnd, bytes[index] != UInt8(ascii: " ") { index += 1 }
                        count += 1
                        if count == 1 { first = start..<index } else if count == 2 { second = start..<index }
                    }
                    if count == 2, let first, let second,
                       let value = CgroupFiles.decimal(UnsafeBufferPointer(rebasing: bytes[second])) {
                        body(UnsafeBufferPointer(rebasing: bytes[first]), value)
                    }
                    lineStart = lineEnd + 1
                }
            }
        }
    }

    /// Decimal digits only, as a number (nil: empty, another byte, overflow).
    static func decimal(_ digits: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
        }
        return value
    }

    /// Whitespace-separated words (cgroup.controllers).
    static func words(_ text: String) -> [String] {
        Array(text.utf8).withUnsafeBufferPointer { bytes in
            ByteLines.fields(of: 0..<bytes.count, in: bytes) { byte in
                byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t")
            }.map { ByteLines.text(bytes, $0) }
        }
    }

    /// `parts` with `separator` between them. (Array's generic `joined`
    /// looks its conformances up at run time: a scan per process.)
    static func joined(_ parts: [String], _ separator: String) -> String {
        var text = ""
        for (index, part) in parts.enumerated() {
            if index > 0 { text += separator }
            text += part
        }
        return text
    }

    static func number(_ path: FilePath) -> UInt64? {
        (try? read(path)).flatMap(leadingNumber)
    }

    /// The first whitespace-separated word as a decimal number ("123\n",
    /// "123 456"), nil when it is anything else ("max"). Over UTF-8 bytes,
    /// without splitting: Character splitting segments graphemes first.
    static func leadingNumber(_ text: String) -> UInt64? {
        func isSpace(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
        }
        var text = text
        return text.withUTF8 { bytes in
            var start = 0
            while start < bytes.count, isSpace(bytes[start]) { start += 1 }
            var end = start
            while end < bytes.count, !isSpace(bytes[end]) { end += 1 }
            return decimal(UnsafeBufferPointer(rebasing: bytes[start..<end]))
        }
    }
}
