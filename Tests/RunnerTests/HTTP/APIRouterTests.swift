import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
@testable import Runner
import Sandbox
import SystemPackage
import Testing

/// The API's router against a real job queue (in this process, on a
/// temporary SyftBox folder): who may do what, what errors look like, and
/// that /openapi.json names exactly the routes there are.
@Suite struct APIRouterTests {
    final class Fixture: @unchecked Sendable {
        let root = FilePath(NSTemporaryDirectory()).appending("syft-api-\(UUID().uuidString)")
        let service: JobQueueService
        let task: Task<Void, any Error>
        let environment: APIEnvironment

        init(loopback: Bool = true) async throws {
            try FileSystem.makeDirectories(root.appending("syftbox"))
            let layout = try SyftBoxLayout(root: root.appending("syftbox"), owner: "do@example.com")
            var options = DaemonOptions(layout: layout, stateDirectory: root.appending("state"),
                                        seccomp: try BuiltinPolicies.seccompProgram(), skeleton: BuiltinPolicies.skeleton)
            options.settleDelay = .milliseconds(20)
            let logger = Logger(label: "test")
            service = JobQueueService(options: options, logger: logger, liveLogs: LiveLogs())
            let service = service
            task = Task { try await service.run() }
            await service.waitUntilReady()
            let history = try #require(await service.historyStore)
            let store = try #require(await service.apiJobStore)
            environment = APIEnvironment(
                service: service,
                catalog: JobCatalog(service: service, history: history, layout: layout, liveLogs: service.liveLogs!,
                                    receipts: ReceiptStore(stateDirectory: options.stateDirectory), apiStore: store),
                options: APIServerOptions(host: loopback ? "127.0.0.1" : "0.0.0.0", port: 0),
                token: try APIToken.loadOrCreate(stateDirectory: options.stateDirectory), startedAt: Date(),
                version: "test")
        }

        func stop() async {
            task.cancel()
            _ = await task.result
            try? FileManager.default.removeItem(atPath: root.string)
        }

        func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            let app = Application(router: APIServer.router(environment))
            try await app.test(.router) { client in try await body(client) }
        }

        var bearer: HTTPFields { [.authorization: "Bearer \(environment.token.value)"] }

        /// An API job that ran, with an output file and a symlink pointing out.
        func finishedJob() async throws -> JobID {
            let staging = try environment.catalog.apiStore.stage()
            try staging.begin(.code, name: UploadPath("main.sh"))
            try Array("echo hi; echo secret > outputs/a.txt; ln -s /etc/passwd outputs/link\n".utf8)
                .withUnsafeBytes { try staging.write($0) }
            try staging.finish()
            let spec = APIJobSpec(entry: "main.sh")
            let job = try environment.catalog.apiStore.commit(
                staging, spec: spec, resolved: try spec.resolve(limits: ResourceLimits(), network: .none))
            try await service.submit(job)
            for _ in 0..<400 {
                if await service.apiJob(job.id)?.phase == .finished { return job.id }
                try await Task.sleep(for: .milliseconds(25))
            }
            Issue.record("the job did not finish")
            return job.id
        }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test func changesNeedTheOwnersTokenAndAWrongTokenIsRefusedEverywhere() async throws {
        let fixture = try await Fixture()
        try await fixture.test { client in
            for (method, uri) in [(HTTPRequest.Method.post, "/jobs"), (.post, "/api/jobs/0123456789abcdef/approve"),
                                  (.post, "/api/jobs/0123456789abcdef/stop"), (.delete, "/api/v1/jobs/history/cleanup?older_than=1")] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .unauthorized, "\(method) \(uri)")
                    #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                    #expect((try? Self.json(response))?["error"] is String)
                }
            }
            try await client.execute(uri: "/api/status", method: .get, headers: [.authorization: "Bearer nope"]) {
                #expect($0.status == .unauthorized)
            }
            try await client.execute(uri: "/api/status", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/v1/jobs/history/cleanup?older_than=30", method: .delete,
                                     headers: fixture.bearer) { response in
                #expect(response.status == .ok)
                #expect((try? Self.json(response))?["deleted"] as? Int == 0)
            }
        }
        await fixture.stop()
    }

    @Test func aLoopbackAPIAnswersOnlyToLoopbackHostNames() {
        for host in ["localhost:8080", "LOCALHOST", "127.0.0.1:8080", "[::1]:8080", "127.0.0.2", "app.localhost"] {
            #expect(OwnerAuthMiddleware.isLoopbackHost(host, bound: "127.0.0.1"), "\(host)")
        }
        // A page whose name was rebound to 127.0.0.1 (DNS rebinding) gets nothing.
        for host in ["attacker.example:8080", "127.0.0.1.nip.io", "localhost.evil.com", "127.0.0.1:80@evil", "0x7f.1",
                     "127.1", "[::ffff:127.0.0.1]"] {
            #expect(!OwnerAuthMiddleware.isLoopbackHost(host, bound: "127.0.0.1"), "\(host)")
        }
    }

    @Test func beyondLoopbackLogsAndArtifactsNeedTheTokenOrTheDashboardsCookie() async throws {
        let fixture = try await Fixture(loopback: false)
        let job = try await fixture.finishedJob()
        let token = fixture.environment.token.value
        try await fixture.test { client in
            for uri in ["/jobs/\(job)/logs", "/jobs/\(job)/logs/stream", "/jobs/\(job)/artifacts/a.txt"] {
                try await client.execute(uri: uri, method: .get) { #expect($0.status == .unauthorized, "\(uri)") }
                try await client.execute(uri: uri, method: .get, headers: fixture.bearer) { #expect($0.status == .ok, "\(uri)") }
                try await client.execute(uri: uri, method: .get, headers: [.cookie: "theme=dark; syft_sandbox_token=\(token)"]) {
                    #expect($0.status == .ok, "\(uri)")
                }
            }
            // The cookie never authorises a change (a cross-site form could send it).
            try await client.execute(uri: "/api/jobs/\(job)/restart", method: .post,
                                     headers: [.cookie: "syft_sandbox_token=\(token)"]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/jobs/\(job)", method: .get) { #expect($0.status == .ok) }
        }
        await fixture.stop()
    }

    @Test func artifactsAreServedFromTheOutputsOnlyAsDownloads() async throws {
        let fixture = try await Fixture()
        let job = try await fixture.finishedJob()
        // A planted link inside the outputs (collection never copies one; here it is put there by hand).
        let run = try #require(await fixture.service.apiJob(job)?.lastRunID)
        let outputs = try #require(fixture.environment.history.folder(ofRun: run)).appending("outputs")
        symlink("/etc/passwd", outputs.appending("planted").string)
        mkdir(outputs.appending("sub").string, 0o755)
        try await fixture.test { client in
            try await client.execute(uri: "/jobs/\(job)/artifacts/a.txt", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "secret\n")
                #expect(response.headers[.contentDisposition]?.hasPrefix("attachment") == true)
                #expect(response.headers[.contentSecurityPolicy]?.contains("sandbox") == true)
            }
            for (path, status) in [("..%2Fjob.json", HTTPResponse.Status.badRequest), ("%2E%2E/x", .badRequest),
                                   ("a.txt%00", .badRequest), ("%2Fetc%2Fpasswd", .badRequest),
                                   ("planted", .forbidden), ("sub", .forbidden), ("missing", .notFound),
                                   ("link", .notFound)] {
                try await client.execute(uri: "/jobs/\(job)/artifacts/\(path)", method: .get) { response in
                    #expect(response.status == status, "\(path)")
                    #expect(!String(buffer: response.body).contains("root:"), "\(path)")
                }
            }
        }
        await fixture.stop()
    }

    /// The artifact's descriptor is closed whether or not its body is
    /// written (HEAD sends none): no descriptor of the process is left on it.
    @Test func anArtifactsDescriptorIsClosedWithItsResponse() async throws {
        let fixture = try await Fixture()
        let job = try await fixture.finishedJob()
        let run = try #require(await fixture.service.apiJob(job)?.lastRunID)
        let artifact = try #require(fixture.environment.history.folder(ofRun: run)).appending("outputs/a.txt")
        try await fixture.test { client in
            for method in [HTTPRequest.Method.head, .get] {
                try await client.execute(uri: "/jobs/\(job)/artifacts/a.txt", method: method) { response in
                    #expect(response.status == .ok, "\(method)")
                }
            }
        }
        #expect(Self.openDescriptors(on: artifact).isEmpty)
        await fixture.stop()
    }

    static func openDescriptors(on file: FilePath) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == file.string }
    }

    @Test func errorsAreJSONWithTheRightStatus() async throws {
        let fixture = try await Fixture()
        try await fixture.test { client in
            let cases: [(HTTPRequest.Method, String, HTTPResponse.Status)] = [
                (.get, "/no/such/route", .notFound), (.get, "/jobs/0123456789abcdef", .notFound),
                (.get, "/jobs/\(UUID().uuidString.lowercased())", .notFound),
                (.get, "/api/v1/jobs/history?limit=0", .badRequest), (.get, "/api/v1/jobs/history?sort=evil", .badRequest),
                (.get, "/api/v1/jobs/history?order=up", .badRequest), (.get, "/api/jobs?source=ftp", .badRequest),
                (.get, "/api/v1/jobs/history/not-a-run/logs", .notFound),
                (.delete, "/api/v1/jobs/history/cleanup", .badRequest),
                (.delete, "/api/v1/jobs/history/cleanup?older_than=soon", .badRequest),
                (.post, "/api/jobs/0123456789abcdef/approve", .notFound),
            ]
            for (method, uri, status) in cases {
                try await client.execute(uri: uri, method: method, headers: fixture.bearer) { response in
                    #expect(response.status == status, "\(method) \(uri)")
                    #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, "\(uri)")
                    #expect((try? Self.json(response))?["error"] is String, "\(uri)")
                }
            }
        }
        await fixture.stop()
    }

    /// /openapi.json documents exactly the routes the router has.
    @Test func theOpenAPIDocumentNamesEveryRouteAndNoOther() async throws {
        let fixture = try await Fixture()
        let router = APIServer.router(fixture.environment)
        let routed = Set(router.routes.filter { $0.method != .head }.map { route in
            let path = route.path.description.split(separator: "/").map { part -> String in
                if part == "**" { return "{path}" }
                return part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
            }
            return "\(route.method.rawValue) /" + path.joined(separator: "/")
        })
        let document = try #require(EmbeddedResources.files["assets/openapi.json"])
        let object = try #require(JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
        let paths = try #require(object["paths"] as? [String: [String: Any]])
        let documented = Set(paths.flatMap { path, operations in
            operations.keys.filter { ["get", "post", "put", "delete", "patch"].contains($0) }.map { "\($0.uppercased()) \(path)" }
        })
        #expect(routed.subtracting(documented).isEmpty, "routes not in /openapi.json: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented but not routed: \(documented.subtracting(routed).sorted())")
        await fixture.stop()
    }
}
