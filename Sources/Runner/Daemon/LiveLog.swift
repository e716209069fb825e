#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import Sandbox
import Synchronization

/// The output of one run as it happens, for any number of followers
/// (`GET /jobs/{id}/logs/stream`): every chunk in the order the job wrote
/// it, then how the run ended.
///
/// The job's capture thread appends; appending never waits on a follower.
/// Followers read at their own pace from their own position, so one that
/// joins late first gets everything already written, and a slow one slows
/// only itself. Only followers that have caught up are woken. Memory is
/// bounded by the output caps (each stream stops at `--max-output`).
public final class LiveLog: Sendable {
    public struct Chunk: Sendable, Hashable {
        public var channel: OutputChannel
        public var bytes: [UInt8]
    }

    /// How the run ended, as the end event says it.
    public struct Ending: Sendable, Hashable, Codable {
        public var status: String
        public var exitCode: Int?
        public var returnCode: Int?
        public var limitHit: String?
        public var reason: String?

        public init(status: String, exitCode: Int? = nil, returnCode: Int? = nil, limitHit: String? = nil,
                    reason: String? = nil) {
            self.status = status
            self.exitCode = exitCode
            self.returnCode = returnCode
            self.limitHit = limitHit
            self.reason = reason
        }

        enum CodingKeys: String, CodingKey {
            case status, exitCode = "exit_code", returnCode = "return_code", limitHit = "limit_hit", reason
        }

        /// Every key, `null` for what is unknown (the SSE end event's body).
        public func encode(to encoder: any Encoder) throws {
            var values = encoder.container(keyedBy: CodingKeys.self)
            try values.encode(status, forKey: .status)
            try values.encode(exitCode, forKey: .exitCode)
            try values.encode(returnCode, forKey: .returnCode)
            try values.encode(limitHit, forKey: .limitHit)
            try values.encode(reason, forKey: .reason)
        }
    }

    private struct State {
        var chunks: [Chunk] = []
        var ending: Ending?
        var endedAt: ContinuousClock.Instant?
        var runID: String?
        var startedAt: Date?
        /// Chunks already turned into their wire form (Server-Sent Events),
        /// once for every follower, and the decoders' state after them.
        var rendered: [ByteBuffer] = []
        var carry: [OutputChannel: UTF8Carry] = [.stdout: UTF8Carry(), .stderr: UTF8Carry()]
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    public let jobID: JobID

    public init(jobID: JobID) {
        self.jobID = jobID
    }

    /// The run this log belongs to, once it started.
    public var runID: String? { state.withLock { $0.runID } }
    public var startedAt: Date? { state.withLock { $0.startedAt } }

    func started(run: String) {
        state.withLock { state in
            state.runID = run
            state.startedAt = Date()
        }
    }

    /// Called by the capture thread for every chunk written to a log file.
    public func append(_ channel: OutputChannel, _ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.ending == nil else { return [] }
            state.chunks.append(Chunk(channel: channel, bytes: bytes))
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The run ended (or never ran): followers get `ending` after the last chunk.
    public func finish(_ ending: Ending) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.ending == nil else { return [] }
            state.ending = ending
            state.endedAt = .now
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    public var ending: Ending? { state.withLock { $0.ending } }

    func endedLongerAgo(than duration: Duration) -> Bool {
        state.withLock { state in state.endedAt.map { $0.duration(to: .now) > duration } ?? false }
    }

    /// Chunks from position `index` on (at most `limit`), and the ending
    /// once every chunk has been read.
    public func read(from index: Int, limit: Int = 256) -> (chunks: [Chunk], ending: Ending?) {
        state.withLock { state in
            let start = min(max(0, index), state.chunks.count)
            let end = min(state.chunks.count, start + limit)
            return (Array(state.chunks[start..<end]), end == state.chunks.count ? state.ending : nil)
        }
    }

    /// The chunks from position `index` on (at most `limit`), each rendered
    /// by `render` (position, stream, its text decoded as UTF-8 across chunk
    /// boundaries) exactly once whoever asks, and the ending once every
    /// chunk has been read. A hundred followers cost one rendering.
    public func rendered(from index: Int, limit: Int = 256,
                         render: (Int, OutputChannel, String) -> ByteBuffer) -> (events: [ByteBuffer], ending: Ending?) {
        state.withLock { state in
            let start = min(max(0, index), state.chunks.count)
            let end = min(state.chunks.count, start + limit)
            while state.rendered.count < end {
                let position = state.rendered.count
                let chunk = state.chunks[position]
                let text = state.carry[chunk.channel, default: UTF8Carry()].decode(chunk.bytes[...], final: false)
                state.rendered.append(render(position, chunk.channel, text))
            }
            return (Array(state.rendered[start..<end]), end == state.chunks.count ? state.ending : nil)
        }
    }

    /// Everything written so far, per stream.
    public func snapshot() -> (stdout: [UInt8], stderr: [UInt8], chunks: Int) {
        state.withLock { state in
            var out: [UInt8] = []
            var err: [UInt8] = []
            for chunk in state.chunks {
                if chunk.channel == .stdout { out += chunk.bytes } else { err += chunk.bytes }
            }
            return (out, err, state.chunks.count)
        }
    }

    /// Returns once there is a chunk at `index`, the run ended, or the task was cancelled.
    public func waitForChunk(at index: Int) async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.chunks.count > index || state.ending != nil || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Followers waiting now (tests, metrics).
    public var waitingFollowers: Int { state.withLock { $0.waiters.count } }
}

/// The live logs of the jobs queued, running, or ended a short while ago,
/// by job id. An ended log stays `retention` long so that a follower
/// joining just after the end still sees the output in the order it came;
/// after that the log files serve.
public final class LiveLogs: Sendable {
    private let logs = Mutex<[JobID: LiveLog]>([:])
    private let retention: Duration

    public init(retention: Duration = .seconds(300)) {
        self.retention = retention
    }

    /// A new log for the job's next run (replacing the last one's).
    @discardableResult
    public func open(_ job: JobID) -> LiveLog {
        let log = LiveLog(jobID: job)
        logs.withLock { logs in
            logs = logs.filter { !$0.value.endedLongerAgo(than: retention) }
            logs[job] = log
        }
        return log
    }

    public func log(of job: JobID) -> LiveLog? {
        logs.withLock { $0[job] }
    }
}

/// UTF-8 decoding across chunk boundaries: an incomplete sequence at the
/// end of a chunk waits for the next; invalid bytes become U+FFFD.
public struct UTF8Carry: Sendable {
    private var carry: [UInt8] = []

    public init() {}

    public mutating func decode(_ bytes: ArraySlice<UInt8>, final: Bool) -> String {
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
                    if needed > back {
                        carry = Array(all[start...])
                        all.removeSubrange(start...)
                    }
                    break
                }
            }
        }
        return String(decoding: all, as: UTF8.self)
    }
}
