import CSandbox
import Foundation
import Glibc
@testable import Sandbox
import Testing

/// The capture of one output pipe into its file: every byte in order,
/// through the relay pipe or the read/write fallback, and a cap that cuts
/// exactly.
@Suite struct CaptureStreamTests {
    static let payload: [UInt8] = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }

    /// Writes `payload` into a fresh capture pipe from another thread and
    /// pumps it into a file opened with `flags`; returns the file's bytes.
    private func capture(flags: Int32, limit: UInt64) throws -> (bytes: [UInt8], truncated: Bool) {
        let path = NSTemporaryDirectory() + "capture-\(UUID().uuidString)"
        defer { unlink(path) }
        let file = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0o600)
        try #require(file >= 0)
        defer { close(file) }
        var readEnd: Int32 = -1, writeEnd: Int32 = -1
        try #require(csb_capture_pipe(&readEnd, &writeEnd) == 0)
        let writer = Thread { [writeEnd] in
            Self.payload.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = write(writeEnd, bytes.baseAddress! + offset, bytes.count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
            close(writeEnd)
        }
        writer.start()
        let stream = CaptureStream(name: .stdout, pipe: readEnd, file: file, limit: limit)
        while !stream.finished {
            var descriptor = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 1000)
            stream.pump(sink: nil)
        }
        close(readEnd)
        return (Array(try Data(contentsOf: URL(fileURLWithPath: path))), stream.overLimit)
    }

    @Test func everyByteArrivesInOrderThroughTheRelay() throws {
        let (bytes, truncated) = try capture(flags: 0, limit: 1 << 30)
        #expect(bytes == Self.payload)
        #expect(!truncated)
    }

    @Test func aFileThatTakesNoSpliceGetsEveryByteByCopy() throws {
        // splice(2) refuses a file opened O_APPEND (EINVAL): read and write instead.
        let (bytes, _) = try capture(flags: O_APPEND, limit: 1 << 30)
        #expect(bytes == Self.payload)
    }

    @Test func aCapInsideABatchKeepsExactlyTheBytesBeforeIt() throws {
        for (flags, limit) in [(Int32(0), UInt64(1_500_007)), (O_APPEND, UInt64(1_500_007)), (0, 1)] {
            let (bytes, truncated) = try capture(flags: flags, limit: limit)
            #expect(bytes == Array(Self.payload.prefix(Int(limit))), "flags \(flags), limit \(limit)")
            #expect(truncated)
        }
    }
}
