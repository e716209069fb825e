import Glibc
import SystemPackage

/// Directory reading by descriptor, names as raw bytes.
enum DirectoryEntries {
    /// Calls `body` with each name in the directory `directory` (not "."
    /// nor ".."), NUL-terminated, as the bytes `getdents` gave. Reads
    /// through a new open file description of the same directory, so the
    /// caller's descriptor (and its offset) is untouched. `body` returns
    /// false to stop early. Throws the errno of a failed open or read.
    static func forEach(in directory: CInt, _ body: ([CChar]) throws -> Bool) throws {
        let fd = openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        guard let stream = fdopendir(fd) else {
            let error = Errno(rawValue: errno)
            close(fd)
            throw error
        }
        defer { closedir(stream) }
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw Errno(rawValue: errno) }
                return
            }
            let name = Self.name(of: entry)
            if isDot(name) { continue }
            guard try body(name) else { return }
        }
    }

    /// True when the directory holds anything but "." and "..".
    static func hasEntries(_ directory: CInt) throws -> Bool {
        var found = false
        try forEach(in: directory) { _ in
            found = true
            return false
        }
        return found
    }

    /// d_name read up to its NUL inside the record: a record may be shorter
    /// than `struct dirent`, so the fixed-size array is never copied whole.
    static func name(of entry: UnsafeMutablePointer<dirent>) -> [CChar] {
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        let start = (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self)
        let length = strnlen(start, MemoryLayout<dirent>.size - offset)
        return Array(UnsafeBufferPointer(start: start, count: length)) + [0]
    }

    static func isDot(_ name: [CChar]) -> Bool {
        name == [0x2E, 0] || name == [0x2E, 0x2E, 0]
    }

    /// A name that stays inside its directory when created with `*at`
    /// calls: not empty, not "." or "..", no "/" and no NUL before the end,
    /// at most NAME_MAX bytes. getdents never returns anything else; this is
    /// checked anyway because the tree is hostile.
    static func isSafe(_ name: [CChar]) -> Bool {
        guard let last = name.last, last == 0, name.count >= 2, name.count - 1 <= Int(NAME_MAX) else { return false }
        let bytes = name.dropLast()
        return !isDot(name) && !bytes.contains(0x2F) && !bytes.contains(0)
    }

    /// The name's bytes, without the terminating NUL.
    static func bytes(_ name: [CChar]) -> [UInt8] {
        name.dropLast().map { UInt8(bitPattern: $0) }
    }
}
