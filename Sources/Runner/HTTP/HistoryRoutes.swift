#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird
import NIOCore
import Sandbox

/// The history of runs (the seed runner's API):
/// `GET /api/v1/jobs/history`, `GET /api/v1/jobs/stats`,
/// `GET /api/v1/jobs/history/{id}/logs`, `DELETE /api/v1/jobs/history/cleanup`.
struct HistoryRoutes {
    let environment: APIEnvironment
    let cache = ResponseCache()

    func register(on router: Router<APIRequestContext>) {
        router.get("/api/v1/jobs/history") { request, _ in try await page(request) }
        router.get("/api/v1/jobs/stats") { _, _ in
            let history = environment.history
            let bytes = try await cache.bytes(for: "stats", generation: history.currentGeneration) {
                ByteBuffer(bytes: try JSONBody.encode(StatsJSON(try await history.stats())))
            }
            return JSONBody.response(bytes: bytes)
        }
        router.get("/api/v1/jobs/history/:id/logs") { _, context in
            try await logs(context.parameters.require("id"))
        }
        router.delete("/api/v1/jobs/history/cleanup") { request, _ in try await cleanup(request) }
    }

    /// `status`, `q` (name, submitter, path), `source`, `sort` (finished_at,
    /// started_at, duration, name, status, submitter), `order` (asc, desc),
    /// `limit` (1-500, default 50), `offset`.
    func page(_ request: Request) async throws -> Response {
        var query = HistoryQuery(status: request.text("status"), text: request.text("q"), source: request.text("source"))
        if let sort = request.text("sort") {
            guard let parsed = HistoryQuery.Sort(rawValue: sort) else {
                throw APIError.badRequest("sort must be one of "
                                          + HistoryQuery.Sort.allCases.map(\.rawValue).joined(separator: ", "))
            }
            query.sort = parsed
        }
        switch request.text("order") {
        case nil, "desc": query.ascending = false
        case "asc": query.ascending = true
        default: throw APIError.badRequest("order must be asc or desc")
        }
        if let text = query.text, text.utf8.count > 200 { throw APIError.badRequest("q is longer than 200 bytes") }
        if let source = query.source, source != "syftbox", source != "api" {
            throw APIError.badRequest("source must be syftbox or api")
        }
        let limit = try request.integer("limit", default: 50, in: 1...500)
        let offset = try request.integer("offset", default: 0, in: 0...Int(Int32.max))
        let history = environment.history
        let key = "\(query.status ?? "")\u{0}\(query.text ?? "")\u{0}\(query.source ?? "")\u{0}\(query.sort.rawValue)"
            + "\u{0}\(query.ascending)\u{0}\(limit)\u{0}\(offset)"
        let bytes = try await cache.bytes(for: key, generation: history.currentGeneration) {
            let page = try await history.page(query, limit: limit, offset: offset)
            return ByteBuffer(bytes: try JSONBody.encode(
                HistoryPageJSON(runs: page.runs.map { RunJSON($0) }, total: page.total, limit: limit, offset: offset)))
        }
        return JSONBody.response(bytes: bytes)
    }

    /// A run's full logs: its own copy, kept in the state folder.
    func logs(_ id: String) async throws -> Response {
        guard RunID.isValid(id), let run = try await environment.history.run(id: id) else {
            throw APIError.notFound("no such run in the history")
        }
        let logs = JobCatalog.readLogs(in: environment.history.folder(ofRun: run.id))
        return try JSONBody.response(RunLogsJSON(
            id: run.id, jobID: run.jobID, stdout: String(decoding: logs.stdout, as: UTF8.self),
            stderr: String(decoding: logs.stderr, as: UTF8.self), stdoutBytes: logs.stdout.count,
            stderrBytes: logs.stderr.count))
    }

    struct CleanupJSON: Encodable {
        var deleted: Int
        var olderThanSeconds: Int64
        var before: Date
        enum CodingKeys: String, CodingKey { case deleted, olderThanSeconds = "older_than_seconds", before }
    }

    /// `older_than`: a number of days (`30`), or with a unit (`90s`, `15m`, `12h`, `7d`).
    func cleanup(_ request: Request) async throws -> Response {
        guard let text = request.text("older_than") else {
            throw APIError.badRequest("say older_than: days (30), or with a unit (90s, 15m, 12h, 7d)")
        }
        guard let seconds = Self.parseAge(text) else {
            throw APIError.badRequest("older_than '\(text)' is not a number of days, nor a number with s, m, h or d")
        }
        let cutoff = Date(timeIntervalSinceNow: -Double(seconds))
        let deleted = try environment.history.prune(finishedBefore: cutoff)
        return try JSONBody.response(CleanupJSON(deleted: deleted, olderThanSeconds: seconds, before: cutoff))
    }

    static func parseAge(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = Substring(text)
        var unit: Int64 = 86_400
        if let last = text.last, let scale = units[last] {
            unit = scale
            number = number.dropLast()
        }
        guard let value = Int64(number), value >= 0, value <= 100 * 365 * 86_400 / unit else { return nil }
        return value * unit
    }
}
