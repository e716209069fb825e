#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Hummingbird
import NIOCore
import Sandbox

/// `GET /jobs/{id}/logs/stream`: the job's output as Server-Sent Events.
///
/// Each chunk the job wrote is one event, `id: N` (its position, for
/// `Last-Event-ID`) and `data: {"stream": "stdout", "text": "…"}`; then
/// `event: end` with `data: {"status": …, "exit_code": …, …}`. A follower
/// joining late first gets everything already written, in the order it was
/// written. A job not running (pending, finished long ago) gets its log
/// files' content, then the end. A comment line every 15 s keeps proxies
/// from closing a quiet stream.
enum LogStream {
    static let heartbeat: Duration = .seconds(15)
    static let coalescing: Duration = .milliseconds(20)
    static let batch = 1024

    static func response(live: LiveLog?, files: (stdout: [UInt8], stderr: [UInt8]), currentStatus: LiveLog.Ending,
                         resumeAfter: Int?) -> Response {
        var headers: HTTPFields = [:]
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        let body = ResponseBody { writer in
            if let live {
                try await follow(live, from: resumeAfter.map { $0 + 1 } ?? 0, writer: &writer)
            } else {
                var position = 0
                for (channel, bytes) in [(OutputChannel.stdout, files.stdout), (.stderr, files.stderr)] {
                    var decoder = UTF8Carry()
                    var offset = 0
                    while offset < bytes.count {
                        let end = min(bytes.count, offset + (64 << 10))
                        let text = decoder.decode(bytes[offset..<end], final: end == bytes.count)
                        if position > (resumeAfter ?? -1) {
                            try await writer.write(event(id: position, channel: channel, text: text))
                        }
                        position += 1
                        offset = end
                    }
                }
                try await writer.write(end(currentStatus))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    private static func follow(_ live: LiveLog, from start: Int, writer: inout any ResponseBodyWriter) async throws {
        var position = start
        while true {
            // Each chunk's event is rendered once for all followers; here it is only written.
            let (events, ending) = live.rendered(from: position, limit: batch, render: event)
            if !events.isEmpty { try await writer.write(joined(events)) }
            position += events.count
            if let ending {
                try await writer.write(end(ending))
                return
            }
            if events.count == batch { continue } // a backlog (a late follower): no pause
            if events.isEmpty, !(await waitForChunk(live, at: position)) {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                continue
            }
            // Let a chatty job's lines gather: one write per follower every
            // 20 ms at most, not one per line (a human reads no faster, and a
            // hundred followers then cost the job next to nothing).
            try await Task.sleep(for: coalescing)
        }
    }

    /// The events in one buffer: one write (one HTTP chunk) for the batch,
    /// not one per line through the channel pipeline.
    static func joined(_ events: [ByteBuffer]) -> ByteBuffer {
        guard events.count > 1 else { return events[0] }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(events.reduce(0) { $0 + $1.readableBytes })
        for event in events { buffer.writeImmutableBuffer(event) }
        return buffer
    }

    /// True when a chunk or the end came, false after a heartbeat's wait.
    private static func waitForChunk(_ live: LiveLog, at position: Int) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await live.waitForChunk(at: position)
                return true
            }
            group.addTask {
                try? await Task.sleep(for: heartbeat)
                return false
            }
            let first = await group.next() ?? true
            group.cancelAll()
            return first
        }
    }

    /// `id: N` and `data: {"stream":"…","text":"…"}`, the JSON written
    /// directly (a chunk can be 64 KiB: no encoder round trip).
    static func event(id: Int, channel: OutputChannel, text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(text.utf8.count + 64)
        buffer.writeString("id: \(id)\ndata: {\"stream\":\"\(channel.rawValue)\",\"text\":")
        JSONText.write(text, to: &buffer)
        buffer.writeString("}\n\n")
        return buffer
    }

    static func end(_ ending: LiveLog.Ending) -> ByteBuffer {
        let encoder = JSONEncoder()
        let json = (try? encoder.encode(ending)) ?? Data("{}".utf8)
        var buffer = ByteBuffer(string: "event: end\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }
}

/// A JSON string literal, written straight into a buffer: `"`, `\\` and
/// control characters escaped, everything else (valid UTF-8) as it is.
enum JSONText {
    static func write(_ text: String, to buffer: inout ByteBuffer) {
        let hex = Array("0123456789abcdef".utf8)
        buffer.writeInteger(UInt8(ascii: "\""))
        var pending = text.utf8.startIndex
        let utf8 = text.utf8
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                buffer.writeSubstring(Substring(utf8[pending..<index]))
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 0x0A: buffer.writeStaticString("\\n")
                case 0x0D: buffer.writeStaticString("\\r")
                case 0x09: buffer.writeStaticString("\\t")
                default: buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                            hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
                pending = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        buffer.writeSubstring(Substring(utf8[pending..<utf8.endIndex]))
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
