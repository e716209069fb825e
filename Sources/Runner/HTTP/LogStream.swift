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

    struct Event: Encodable {
        var stream: String
        var text: String
    }

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
        var position = 0
        var decoders: [OutputChannel: UTF8Carry] = [.stdout: UTF8Carry(), .stderr: UTF8Carry()]
        while true {
            let (chunks, ending) = live.read(from: position)
            var buffer = ByteBuffer()
            for chunk in chunks {
                let text = decoders[chunk.channel]!.decode(chunk.bytes[...], final: false)
                if position >= start { buffer.writeImmutableBuffer(event(id: position, channel: chunk.channel, text: text)) }
                position += 1
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
            if let ending {
                try await writer.write(end(ending))
                return
            }
            if chunks.isEmpty {
                let woke = await waitForChunk(live, at: position)
                if !woke { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
            }
        }
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

    static func event(id: Int, channel: OutputChannel, text: String) -> ByteBuffer {
        let json = (try? JSONEncoder().encode(Event(stream: channel.rawValue, text: text))) ?? Data("{}".utf8)
        var buffer = ByteBuffer(string: "id: \(id)\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }

    static func end(_ ending: LiveLog.Ending) -> ByteBuffer {
        let encoder = JSONEncoder()
        let json = (try? encoder.encode(EndJSON(ending))) ?? Data("{}".utf8)
        var buffer = ByteBuffer(string: "event: end\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }

    /// The end event's body, every key present.
    struct EndJSON: Encodable {
        var ending: LiveLog.Ending
        init(_ ending: LiveLog.Ending) { self.ending = ending }
        enum CodingKeys: String, CodingKey { case status, exitCode = "exit_code", returnCode = "return_code", limitHit = "limit_hit", reason }
        func encode(to encoder: any Encoder) throws {
            var values = encoder.container(keyedBy: CodingKeys.self)
            try values.encode(ending.status, forKey: .status)
            try values.encode(ending.exitCode, forKey: .exitCode)
            try values.encode(ending.returnCode, forKey: .returnCode)
            try values.encode(ending.limitHit, forKey: .limitHit)
            try values.encode(ending.reason, forKey: .reason)
        }
    }
}

/// UTF-8 decoding across chunk boundaries: an incomplete sequence at the
/// end of a chunk waits for the next; invalid bytes become U+FFFD.
struct UTF8Carry {
    private var carry: [UInt8] = []

    mutating func decode(_ bytes: ArraySlice<UInt8>, final: Bool) -> String {
        var all = carry + bytes
        carry = []
        if !final {
            // Keep back a trailing sequence that is not complete yet (at most 3 bytes).
            var start = all.count
            var back = 0
            while start > 0, back < 4 {
                start -= 1
                back += 1
                let byte = all[start]
                if byte & 0xC0 != 0x80 {
                    let needed = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                    if needed > back { carry = Array(all[start...]); all.removeSubrange(start...) }
                    break
                }
            }
        }
        return String(decoding: all, as: UTF8.self)
    }
}
