import CSandbox
import Glibc
import Sandbox
import SystemPackage

/// Watches directory trees with inotify, down to a depth, and reports
/// where something changed. Directories created later are watched as they
/// appear (and reported, since files may land in them before the watch).
///
/// Events arrive on `events`, fed by a thread of the watcher's own that
/// blocks in poll(): nothing polls on a timer. When the kernel's queue
/// overflows, `.overflow` asks the caller to rescan everything.
public final class DirectoryWatcher: @unchecked Sendable {
    public enum Event: Sendable, Hashable {
        /// Something changed in `directory`: `name` was created, written,
        /// moved or deleted (nil: the directory itself).
        case changed(directory: FilePath, name: String?)
        /// Events were lost; rescan.
        case overflow
    }

    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let inotify: Int32
    private let stopFD: Int32
    private let maxDepth: Int
    /// Owned by the watcher's thread once it runs.
    private var paths: [Int32: (path: FilePath, depth: Int)] = [:]

    /// Watches `roots` and their subdirectories down to `maxDepth` levels
    /// below them (0: the roots only). Roots that do not exist are skipped.
    public init(roots: [FilePath], maxDepth: Int) throws(SandboxError) {
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else {
            throw SandboxError(.io, "cannot start watching folders (inotify_init1)", errno: Errno(rawValue: errno),
                               hint: "raise fs.inotify.max_user_instances")
        }
        stopFD = csb_eventfd()
        self.maxDepth = maxDepth
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        for root in roots { watchTree(root, depth: 0, report: false) }
        let unmanaged = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let watcher = Unmanaged<DirectoryWatcher>.fromOpaque(raw!).takeRetainedValue()
            watcher.loop()
            return nil
        }, unmanaged.toOpaque())
        guard rc == 0 else {
            unmanaged.release()
            close(inotify)
            close(stopFD)
            throw SandboxError(.io, "cannot start the watcher thread", errno: Errno(rawValue: rc))
        }
        pthread_detach(thread)
    }

    /// Ends the event stream; the thread exits and closes the descriptors.
    public func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
    }

    /// Number of directories watched now (for logs and tests).
    public private(set) var watchCount = 0

    private static let mask = UInt32(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB
                                     | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

    /// Watches `directory` and its subdirectories; never follows a symlink
    /// (IN_DONT_FOLLOW, and entries are examined with lstat).
    private func watchTree(_ directory: FilePath, depth: Int, report: Bool) {
        let wd = inotify_add_watch(inotify, directory.string, Self.mask)
        guard wd >= 0 else { return }
        if paths[wd] == nil { watchCount += 1 }
        paths[wd] = (directory, depth)
        if report { continuation.yield(.changed(directory: directory, name: nil)) }
        guard depth < maxDepth, let stream = opendir(directory.string) else { return }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name != ".", name != "..", let component = FilePath.Component(name) else { continue }
            let child = directory.appending(component)
            var info = stat()
            if lstat(child.string, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
                watchTree(child, depth: depth + 1, report: report)
            }
        }
    }

    private func loop() {
        defer {
            continuation.finish()
            close(inotify)
            close(stopFD)
        }
        let size = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            let count = read(inotify, buffer, size)
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return
            }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = buffer + offset + MemoryLayout<inotify_event>.size
                let length = Int(event.len)
                let name = length == 0 ? nil
                    : String(decoding: UnsafeRawBufferPointer(start: nameStart, count: length).prefix { $0 != 0 },
                             as: UTF8.self)
                handle(event, name: name)
                offset += MemoryLayout<inotify_event>.size + length
            }
        }
    }

    private func handle(_ event: inotify_event, name: String?) {
        if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
            continuation.yield(.overflow)
            return
        }
        if event.mask & UInt32(IN_IGNORED) != 0 {
            if paths.removeValue(forKey: event.wd) != nil { watchCount -= 1 }
            return
        }
        guard let (directory, depth) = paths[event.wd] else { return }
        continuation.yield(.changed(directory: directory, name: name))
        // A new directory: watch it (and what already landed in it).
        if event.mask & UInt32(IN_ISDIR) != 0, event.mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0,
           depth < maxDepth, let name, let component = FilePath.Component(name) {
            watchTree(directory.appending(component), depth: depth + 1, report: true)
        }
    }
}
