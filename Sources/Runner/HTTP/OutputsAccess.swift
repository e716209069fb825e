import CSandbox
import Glibc
import Sandbox
import SystemPackage

/// Read access to a job's outputs folder for the API, never leaving it:
/// listing walks by descriptor without following links, and a download
/// opens its path with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (no
/// `..`, no absolute path, no symlink, no mount crossing), regular files only.
enum OutputsAccess {
    static let maxListed = 1000
    static let maxDepth = 32

    /// Regular files below `root`, sorted by path, at most `maxListed`.
    static func list(_ root: FilePath) -> [ArtifactJSON] {
        let fd = Glibc.open(root.string, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var found: [ArtifactJSON] = []
        walk(fd, prefix: "", depth: 0, into: &found)
        return found.sorted { $0.path < $1.path }
    }

    private static func walk(_ directory: CInt, prefix: String, depth: Int, into found: inout [ArtifactJSON]) {
        guard depth < maxDepth else { return }
        try? DirectoryEntries.forEach(in: directory) { name in
            guard found.count < maxListed, DirectoryEntries.isSafe(name) else { return found.count < maxListed }
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return true }
            let text = String(decoding: DirectoryEntries.bytes(name), as: UTF8.self)
            let path = prefix.isEmpty ? text : prefix + "/" + text
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                found.append(ArtifactJSON(path: path, size: Int64(info.st_size)))
            case S_IFDIR:
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 {
                    walk(child, prefix: path, depth: depth + 1, into: &found)
                    close(child)
                }
            default:
                break
            }
            return true
        }
    }

    /// The components of an artifact path as the request gave it (still
    /// percent-encoded): each decoded on its own, so `%2F` cannot make a
    /// separator; empty, `.`, `..`, NUL or `/` inside a component is refused.
    static func components(_ raw: [Substring]) throws -> [String] {
        guard !raw.isEmpty, raw.count <= maxDepth else { throw APIError.badRequest("an artifact path needs 1 to \(maxDepth) components") }
        return try raw.map { segment in
            guard let decoded = segment.removingPercentEncodingStrictly(), !decoded.isEmpty, decoded != ".", decoded != "..",
                  decoded.utf8.count <= Int(NAME_MAX),
                  !decoded.utf8.contains(UInt8(ascii: "/")), !decoded.utf8.contains(0) else {
                throw APIError.badRequest("'\(segment)' is not a usable path component")
            }
            return decoded
        }
    }

    /// Opens the regular file at `components` below `root`; nil when there is none.
    static func open(_ components: [String], below root: FilePath) throws -> (FileDescriptor, Int64)? {
        let rootFD = Glibc.open(root.string, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { return nil }
        defer { close(rootFD) }
        let fd = csb_open_beneath(rootFD, components.joined(separator: "/"), O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            switch errno {
            case ENOENT, ENOTDIR, ENAMETOOLONG: return nil
            case EXDEV, ELOOP: throw APIError(.forbidden, "the artifact path leads out of the job's outputs")
            default: throw SandboxError(.io, "cannot open the artifact", path: components.joined(separator: "/"),
                                        errno: Errno(rawValue: errno))
            }
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw APIError(.forbidden, "only regular files are served as artifacts")
        }
        return (FileDescriptor(rawValue: fd), Int64(info.st_size))
    }
}

extension Substring {
    /// Percent-decoding that fails on a malformed escape or invalid UTF-8.
    func removingPercentEncodingStrictly() -> String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        func hex(_ byte: UInt8?) -> UInt8? {
            guard let byte else { return nil }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = hex(iterator.next()), let low = hex(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
