import CSandbox
import Glibc

/// Moves one output pipe into its file, up to a byte limit.
///
/// Without a live sink the bytes go pipe-to-file with splice(2) and never
/// enter user space; with a sink (live logs) they are read in 64 KiB chunks,
/// written to the file and handed to the sink. Past the limit nothing more
/// is written: the stream is marked truncated (the supervisor then stops
/// the job) and the rest is drained and dropped so the job never blocks.
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

    var overLimit: Bool { truncated }

    init(name: OutputChannel, pipe: Int32, file: Int32, limit: UInt64) {
        self.name = name
        self.pipe = pipe
        self.file = file
        self.limit = limit
    }

    deinit { buffer?.deallocate() }

    /// Moves everything the pipe holds now; returns on EAGAIN or EOF.
    func pump(sink: (@Sendable (OutputChannel, [UInt8]) -> Void)?) {
        while !finished {
            if sink == nil, spliceWorks, writeError == 0, kept < limit {
                let want = Int(min(limit - kept, 1 << 20))
                let moved = csb_splice_to_file(pipe, file, want)
                if moved > 0 {
                    kept += UInt64(moved)
                    continue
                }
                if moved == 0 {
                    finished = true
                    return
                }
                switch errno {
                case EAGAIN: return
                case EINTR: continue
                case EINVAL, ENOSYS, EBADF: spliceWorks = false // e.g. an O_APPEND file: copy instead
                default: writeError = errno
                }
                continue
            }
            if !readChunk(sink: sink) { return }
        }
    }

    /// One read/write round; false when the pipe is empty for now.
    private func readChunk(sink: (@Sendable (OutputChannel, [UInt8]) -> Void)?) -> Bool {
        if buffer == nil { buffer = .allocate(byteCount: 64 << 10, alignment: 16) }
        let chunk = buffer!
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
