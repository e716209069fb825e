#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird
import NIOCore
import Sandbox

/// `GET /api/status`, `GET /api/version`, `GET /metrics`.
struct StatusRoutes {
    let environment: APIEnvironment

    struct StatusJSON: Encodable {
        struct Config: Encodable {
            var concurrency: Int
            var network: String
            var timeoutSeconds: Int64?
            var memoryBytes: UInt64?
            var processes: UInt64?
            var approvalRules: Int
            var keepHistoryDays: Int64?
            var maxUploadBytes: Int
            var http: String
            enum CodingKeys: String, CodingKey {
                case concurrency, network, timeoutSeconds = "timeout_seconds", memoryBytes = "memory_bytes", processes,
                     approvalRules = "approval_rules", keepHistoryDays = "keep_history_days",
                     maxUploadBytes = "max_upload_bytes", http
            }
            func encode(to encoder: any Encoder) throws {
                var values = encoder.container(keyedBy: CodingKeys.self)
                try values.encode(concurrency, forKey: .concurrency)
                try values.encode(network, forKey: .network)
                try values.encode(timeoutSeconds, forKey: .timeoutSeconds)
                try values.encode(memoryBytes, forKey: .memoryBytes)
                try values.encode(processes, forKey: .processes)
                try values.encode(approvalRules, forKey: .approvalRules)
                try values.encode(keepHistoryDays, forKey: .keepHistoryDays)
                try values.encode(maxUploadBytes, forKey: .maxUploadBytes)
                try values.encode(http, forKey: .http)
            }
        }

        struct Queue: Encodable {
            var waiting: Int
            var running: Int
            var pendingReview: Int
            enum CodingKeys: String, CodingKey { case waiting, running, pendingReview = "pending_review" }
        }

        var state: String
        var version: String
        var startedAt: Date
        var uptimeSeconds: Double
        var owner: String
        var syftbox: String
        var stateDirectory: String
        var config: Config
        var queue: Queue
        enum CodingKeys: String, CodingKey {
            case state, version, startedAt = "started_at", uptimeSeconds = "uptime_seconds", owner, syftbox,
                 stateDirectory = "state_dir", config, queue
        }
    }

    struct VersionJSON: Encodable {
        var name = "syft-sandbox-run"
        var version: String
        var api = "1"
        var syftJob = "0.1.40"
        enum CodingKeys: String, CodingKey { case name, version, api, syftJob = "syft_job" }
    }

    func register(on router: Router<APIRequestContext>) {
        router.get("/api/status") { _, _ in try await status() }
        router.get("/api/version") { _, _ in try JSONBody.response(VersionJSON(version: environment.version)) }
        router.get("/metrics") { _, _ in
            let body = environment.service.metrics.exposition()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    func status() async throws -> Response {
        let snapshot = await environment.service.snapshot()
        let options = environment.service.configuration
        var pending = 0
        for job in (try? environment.layout.scanInbox().jobs) ?? [] {
            if (try? environment.service.states.state(of: job, in: environment.layout))??.status == .pending { pending += 1 }
        }
        let status = StatusJSON(
            state: snapshot.stopping ? "stopping" : "running", version: environment.version,
            startedAt: environment.startedAt, uptimeSeconds: (-environment.startedAt.timeIntervalSinceNow * 10).rounded() / 10,
            owner: options.layout.owner, syftbox: options.layout.root.string, stateDirectory: options.stateDirectory.string,
            config: .init(concurrency: options.concurrency, network: options.network.rawValue,
                          timeoutSeconds: options.limits.wallTime?.components.seconds, memoryBytes: options.limits.memoryBytes,
                          processes: options.limits.processes, approvalRules: options.rules.rules.count,
                          keepHistoryDays: options.keepHistory.map { $0.components.seconds / 86_400 },
                          maxUploadBytes: environment.options.maxUploadBytes,
                          http: "\(environment.options.host):\(environment.boundPort.value.withLock { $0 } ?? environment.options.port)"),
            queue: .init(waiting: snapshot.waiting, running: snapshot.running, pendingReview: pending))
        return try JSONBody.response(status)
    }
}
