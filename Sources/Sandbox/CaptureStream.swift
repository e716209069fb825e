import CSandbox
import Glibc

/// Moves one output pipe into its file, up to a byte limit.
///
/// Without a live sink the bytes go pipe-to-file with splice(2) and never
/// enter user space; with a sink (live logs) they are read in 64 KiB chunks,
/// written to the file and handed to the sink. Past the limit nothing more
/// is written: the stream is marked truncated (the supervisor then stops
/// the job) and the rest is drained and dropped so the job never blocks.
///
/// Splicing a pipe into a file copies the bytes while holding the pipe's
/// lock, and the job's write(2) copies into the pipe holding the same lock:
/// the two would take turns (a job printing 1 GiB spent half its time
/// spinning on that lock). So the bytes first move into a relay pipe of the
/// stream's own (page references, no copy, the lock held briefly), and are
/// copied from there into the file while the job goes on writing.
final class CaptureStream {
    let name: OutputChannel
    let pipe: Int32
    let file: Int32
    let limit: UInt64
    private(set) var kept: UInt64 = 0
    private(set) var finished = false
    private(set) var truncated = false
    /// A write to the file failed (disk full, ...): the rest is dropped.
    private(set) var writeError: Int32 = 0
    private var spliceWorks = true
    private var buffer: UnsafeMutableRawBufferPointer?
    /// The relay pipe, made when the first bytes are spliced (nil: not yet,
    /// or it could not be made: then the pipe is spliced into the file directly).
    private var relay: (read: Int32, write: Int32)?
    private var relayUnavailable = false
    /// Bytes in the relay, not yet in the file.
    private var relayed: UInt64 = 0

    var overLimit: Bool { truncated }

    init(name: OutputChannel, pipe: Int32, file: Int32, limit: UInt64) {
        self.name = name
        self.pipe = pipe
        self.file = file
        self.limit = limit
    }

    deinit {
        buffer?.deallocate()
        if let relay {
            close(relay.read)
            close(relay.write)
        }
    }

    /// Moves everything the pipe holds now; returns on EAGAIN or EOF.
    func pump(sink: (@Sendable (OutputChannel, [UInt8]) -> Void)?) {
        while !finished {
            if relayed > 0 {
                flushRelay()
                continue
            }
            if sink == nil, spliceWorks, writeError == 0, kept < limit {
                let want = Int(min(limit - kept, 1 << 20))
                let target = holdsBytes ? relayPipe() : nil
                let moved = target.map { csb_splice_pipes(pipe, $0, want) } ?? csb_splice_to_file(pipe, file, want)
                if moved > 0 {
                    if target != nil { relayed += UInt64(moved) } else { kept += UInt64(moved) }
                    continue
                }
                if moved == 0 {
                    finished = true
                    return
                }
                switch errno {
                case EAGAIN: return
                case EINTR: continue
                case let error where Self.spliceRefused(error): spliceWorks = false // e.g. an O_APPEND file: copy instead
                default: writeError = errno
                }
                continue
            }
            if !readChunk(sink: sink) { return }
        }
    }

    /// splice(2)'s answer for a file it cannot write to (then the bytes are copied).
    private static func spliceRefused(_ error: Int32) -> Bool {
        error == EINVAL || error == ENOSYS || error == EBADF
    }

    /// The 64 KiB buffer of the copying paths, made at first use.
    private func chunkBuffer() -> UnsafeMutableRawBufferPointer {
        if let buffer { return buffer }
        let made = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        buffer = made
        return made
    }

    /// True once the relay exists, or while the job's pipe holds bytes: a
    /// job that writes nothing to a stream gets no relay pipe for it (its
    /// only pump is at EOF). Bytes that arrive between this look and the
    /// splice go straight into the file, correct but without the relay.
    private var holdsBytes: Bool {
        if relay != nil { return true }
        var count: Int32 = 0
        return ioctl(pipe, UInt(FIONREAD), &count) != 0 || count > 0
    }

    private func relayPipe() -> Int32? {
        if let relay { return relay.write }
        guard !relayUnavailable else { return nil }
        var readEnd: Int32 = -1, writeEnd: Int32 = -1
        guard csb_capture_pipe(&readEnd, &writeEnd) == 0 else {
            relayUnavailable = true
            return nil
        }
        relay = (readEnd, writeEnd)
        return writeEnd
    }

    /// Copies the relay's bytes into the file: spliced, else (a file that
    /// takes no splice) read and written; dropped once a write has failed.
    private func flushRelay() {
        guard let relay else { return }
        while relayed > 0 {
            if spliceWorks, writeError == 0 {
                let moved = csb_splice_to_file(relay.read, file, Int(min(relayed, 1 << 20)))
                if moved > 0 {
                    relayed -= UInt64(moved)
                    kept += UInt64(moved)
                    continue
                }
                if moved < 0, errno == EINTR { continue }
                if moved < 0, Self.spliceRefused(errno) {
                    spliceWorks = false
                    continue
                }
                writeError = moved < 0 ? errno : EIO
            }
            let chunk = chunkBuffer()
            let count = read(relay.read, chunk.baseAddress, min(chunk.count, Int(relayed)))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { // cannot happen: the relay holds `relayed` bytes
                relayed = 0
                return
            }
            relayed -= UInt64(count)
            if writeError == 0, writeAll(UnsafeRawBufferPointer(rebasing: chunk[..<count])) { kept += UInt64(count) }
        }
    }

    /// One read/write round; false when the pipe is empty for now.
    private func readChunk(sink: (@Sendable (OutputChannel, [UInt8]) -> Void)?) -> Bool {
        let chunk = chunkBuffer()
        let count = read(pipe, chunk.baseAddress, chunk.count)
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
            finished = true
            return false
        }
        if count < 0 { return errno == EINTR }
        let keep = writeError == 0 ? Int(min(UInt64(count), limit - kept)) : 0
        if keep > 0 {
            if writeAll(UnsafeRawBufferPointer(rebasing: chunk[..<keep])) {
                kept += UInt64(keep)
                sink?(name, Array(UnsafeRawBufferPointer(rebasing: chunk[..<keep])))
            }
        }
        if keep < count, writeError == 0 { truncated = true }
        return true
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = write(file, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                writeError = errno
                return false
            }
            offset += n
        }
        return true
    }

    /// Ends the file with a marker line when output was cut.
    func finish() {
        guard truncated else { return }
        let marker = "\n[syft-sandbox-run: \(name.rawValue) truncated at \(limit) bytes; the job was stopped]\n"
        var bytes = Array(marker.utf8)
        _ = bytes.withUnsafeMutableBytes { writeAll(UnsafeRawBufferPointer($0)) }
    }
}
