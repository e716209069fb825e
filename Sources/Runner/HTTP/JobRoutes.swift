#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import HTTPTypes
import Hummingbird
import NIOCore
import Sandbox
import SystemPackage

/// The jobs themselves (the FastAPI runner's API, plus a listing):
/// `POST /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/logs`,
/// `GET /jobs/{id}/logs/stream`, `GET /jobs/{id}/artifacts/{path}`, `GET /api/jobs`.
struct JobRoutes {
    let environment: APIEnvironment

    func register(on router: Router<APIRequestContext>) {
        router.post("/jobs") { request, _ in try await submit(request) }
        router.get("/api/jobs") { request, _ in
            let source = request.text("source")
            guard source == nil || source == "syftbox" || source == "api" else {
                throw APIError.badRequest("source must be syftbox or api")
            }
            return try JSONBody.response(JobListJSON(jobs: try await environment.catalog.list(
                status: request.text("status"), source: source)))
        }
        router.get("/jobs/:id") { _, context in
            let found = try await environment.catalog.find(context.parameters.require("id"))
            let job = try await environment.catalog.view(found, detail: true)
            let logs = environment.catalog.logs(found)
            let lines = logs.stdout.count(where: { $0 == 0x0A }) + logs.stderr.count(where: { $0 == 0x0A })
            return try JSONBody.response(JobEnvelopeJSON(job: job, logLines: lines))
        }
        router.get("/jobs/:id/logs") { request, context in
            try await logs(context.parameters.require("id"), stream: request.text("stream"))
        }
        router.get("/jobs/:id/logs/stream") { request, context in
            try await stream(context.parameters.require("id"), request: request)
        }
        router.get("/jobs/:id/artifacts/**") { _, context in
            try await artifact(context.parameters.require("id"), path: context.parameters.getCatchAll())
        }
    }

    func submit(_ request: Request) async throws -> Response {
        guard let store = await environment.service.apiJobStore else {
            throw SandboxError(.daemonStopping, "the runner is not ready")
        }
        let staging = try store.stage()
        guard let specBytes = try await MultipartUpload(staging: staging, maxBytes: environment.options.maxUploadBytes)
            .receive(request) else {
            throw APIError(.unprocessableContent, "the spec field is missing (JSON: entry, args, timeout_sec, net_policy, env)")
        }
        let spec: APIJobSpec
        do {
            spec = try JSONDecoder().decode(APIJobSpec.self, from: Data(specBytes))
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw APIError.badRequest("spec is not valid JSON")
        } catch {
            throw APIError(.unprocessableContent, "spec: \(Self.describe(error))")
        }
        let options = environment.service.configuration
        let resolved = try spec.resolve(limits: options.limits, network: options.network)
        let job = try store.commit(staging, spec: spec, resolved: resolved)
        try await environment.service.submit(job)
        return try JSONBody.response(JobActionJSON(jobID: job.id.rawValue, status: "queued"), status: .created,
                                     headers: [.location: "/jobs/\(job.id.rawValue)"])
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\(path.isEmpty ? "the spec" : path) has the wrong type (\(context.debugDescription))"
        case let DecodingError.keyNotFound(key, _):
            return "\(key.stringValue) is missing"
        default:
            return "\(error)"
        }
    }

    /// The logs as text: stdout then stderr (`stream=` for one), or, while
    /// the job runs, both as they were written.
    func logs(_ id: String, stream: String?) async throws -> Response {
        let found = try await environment.catalog.find(id)
        var text: [UInt8]
        switch stream {
        case "stdout": text = environment.catalog.logs(found).stdout
        case "stderr": text = environment.catalog.logs(found).stderr
        case nil:
            if let live = environment.liveLogs.log(of: found.id), live.runID != nil {
                text = []
                var position = 0
                while true {
                    let (chunks, _) = live.read(from: position, limit: 4096)
                    if chunks.isEmpty { break }
                    for chunk in chunks { text += chunk.bytes }
                    position += chunks.count
                }
            } else {
                let logs = environment.catalog.logs(found)
                text = logs.stdout + logs.stderr
            }
        default:
            throw APIError.badRequest("stream must be stdout or stderr")
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
    }

    func stream(_ id: String, request: Request) async throws -> Response {
        let found = try await environment.catalog.find(id)
        let resume = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap(Int.init)
        if let live = environment.liveLogs.log(of: found.id) {
            return LogStream.response(live: live, files: ([], []), currentStatus: LiveLog.Ending(status: ""),
                                      resumeAfter: resume)
        }
        let job = try await environment.catalog.view(found, detail: false)
        return LogStream.response(live: nil, files: environment.catalog.logs(found),
                                  currentStatus: LiveLog.Ending(status: job.status, exitCode: job.exitCode,
                                                                returnCode: job.returnCode, limitHit: job.limitHit,
                                                                reason: job.error),
                                  resumeAfter: resume)
    }

    /// A file of the job's outputs, as a download.
    func artifact(_ id: String, path raw: [Substring]) async throws -> Response {
        let components = try OutputsAccess.components(raw)
        let found = try await environment.catalog.find(id)
        guard let root = environment.catalog.outputsFolder(found),
              let (fd, size) = try OutputsAccess.open(components, below: root) else {
            throw APIError.notFound("no such artifact")
        }
        let name = components.last!
        var headers: HTTPFields = [
            .contentType: Self.contentType(of: name),
            .contentDisposition: "attachment; filename*=UTF-8''\(Self.percentEncoded(name))",
            // A job's file must never run as a page of this origin (the dashboard holds the token).
            .contentSecurityPolicy: "sandbox; default-src 'none'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ]
        headers[.cacheControl] = "no-store"
        // Closed when the body is released: written or not (a HEAD request,
        // a client gone before the body), the descriptor is not leaked.
        let file = ClosingDescriptor(fd)
        let body = ResponseBody(contentLength: Int(size)) { writer in
            let fd = file.descriptor
            var offset: Int64 = 0
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while offset < size {
                let count = try buffer.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: offset, into: $0) }
                if count == 0 { break }
                try await writer.write(ByteBuffer(bytes: buffer[..<count]))
                offset += Int64(count)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    static func contentType(of name: String) -> String {
        let types = ["json": "application/json", "txt": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8",
                     "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
                     "svg": "image/svg+xml", "pdf": "application/pdf", "parquet": "application/vnd.apache.parquet"]
        let ext = name.split(separator: ".").last.map { $0.lowercased() } ?? ""
        return types[ext] ?? "application/octet-stream"
    }

    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
                result.unicodeScalars.append(UnicodeScalar(byte))
            default:
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return result
    }
}

/// A descriptor closed when the last reference goes.
final class ClosingDescriptor: Sendable {
    let descriptor: SystemPackage.FileDescriptor
    init(_ descriptor: SystemPackage.FileDescriptor) { self.descriptor = descriptor }
    deinit { try? descriptor.close() }
}
