#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird
import Logging
import NIOCore
import Sandbox
import ServiceLifecycle
import Synchronization
import SystemPackage

/// How the daemon's HTTP API listens (`--http`, `--max-upload`).
public struct APIServerOptions: Sendable {
    public var host: String
    public var port: Int
    /// The largest `POST /jobs` body taken.
    public var maxUploadBytes: Int

    public static let defaultMaxUploadBytes = 100 << 20

    public init(host: String = "127.0.0.1", port: Int = 8080, maxUploadBytes: Int = defaultMaxUploadBytes) {
        self.host = host
        self.port = port
        self.maxUploadBytes = maxUploadBytes
    }

    /// `HOST:PORT`, `[V6]:PORT` or `PORT` (loopback).
    public static func parse(_ text: String) -> (host: String, port: Int)? {
        if let port = Int(text), (0...65535).contains(port) { return ("127.0.0.1", port) }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    /// True for 127.0.0.0/8, ::1 and localhost.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The port the server listens on, once it does.
final class BoundPort: Sendable {
    let value = Mutex<Int?>(nil)
}

/// What every route needs.
struct APIEnvironment: Sendable {
    let service: JobQueueService
    let catalog: JobCatalog
    let options: APIServerOptions
    /// The port bound (the one asked for, unless that was 0).
    let boundPort = BoundPort()
    let token: APIToken
    let startedAt: Date
    let version: String
    var history: HistoryStore { catalog.history }
    var layout: SyftBoxLayout { catalog.layout }
    var liveLogs: LiveLogs { catalog.liveLogs }
}

/// The daemon's HTTP API and dashboard (Hummingbird), a service beside
/// the job queue: it starts serving once the queue has its state folder.
public struct APIServer: Service {
    let service: JobQueueService
    let options: APIServerOptions
    let version: String
    let logger: Logger
    /// Called with the bound port once the server listens (tests bind port 0).
    let onListening: @Sendable (Int) async -> Void

    public init(service: JobQueueService, options: APIServerOptions, version: String, logger: Logger,
                onListening: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.service = service
        self.options = options
        self.version = version
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        await service.waitUntilReady()
        guard let history = await service.historyStore, let apiStore = await service.apiJobStore,
              let liveLogs = service.liveLogs else {
            throw SandboxError(.invalidInput, "the job queue runs without live logs; the HTTP API needs them")
        }
        let configuration = service.configuration
        let token = try APIToken.loadOrCreate(stateDirectory: configuration.stateDirectory)
        if token.isNew {
            logger.notice("a new API token was made; it is shown once, and kept in \(token.path)",
                          metadata: ["token": "\(token.value)"])
        } else {
            logger.info("the API token is in \(token.path)")
        }
        let environment = APIEnvironment(
            service: service,
            catalog: JobCatalog(service: service, history: history, layout: configuration.layout, liveLogs: liveLogs,
                                receipts: ReceiptStore(stateDirectory: configuration.stateDirectory), apiStore: apiStore),
            options: options, token: token, startedAt: Date(), version: version)
        let router = Self.router(environment)
        let listening = onListening
        let logger = self.logger
        let options = self.options
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "syft-sandbox-run"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? options.port
                environment.boundPort.value.withLock { $0 = port }
                logger.info("HTTP API listening", metadata: ["address": "\(options.host):\(port)",
                                                             "dashboard": "http://\(options.host):\(port)/"])
                await listening(port)
            },
            logger: logger)
        try await app.run()
    }

    static func router(_ environment: APIEnvironment) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: OwnerAuthMiddleware(token: environment.token, loopbackOnly: environment.options.isLoopback,
                                                   boundHost: environment.options.host))
        StatusRoutes(environment: environment).register(on: router)
        HistoryRoutes(environment: environment).register(on: router)
        JobRoutes(environment: environment).register(on: router)
        ReviewRoutes(environment: environment).register(on: router)
        DashboardRoutes(environment: environment).register(on: router)
        return router
    }
}

/// Query parameters, checked.
extension Request {
    func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = text(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.badRequest("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// A query parameter as a form sends it: `+` is a space, then
    /// percent-decoding (`%2B` is a plus). Empty counts as absent.
    func text(_ name: String) -> String? {
        guard let query = uri.query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts[0] == name else { continue }
            let raw = parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: " ") : ""
            guard let value = Substring(raw).removingPercentEncodingStrictly() else { return nil }
            return value.isEmpty ? nil : value
        }
        return nil
    }
}
