#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Sandbox

/// An error the API answers with: its status and `{"error": "..."}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Self.response(status: status, message: message, headers: headers)
    }

    static func response(status: HTTPResponse.Status, message: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let body = (try? encoder.encode(["error": message])) ?? Data("{\"error\":\"error\"}".utf8)
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func notFound(_ what: String) -> APIError { APIError(.notFound, what) }
    static func badRequest(_ what: String) -> APIError { APIError(.badRequest, what) }
}

/// Every error leaves as `{"error": "..."}` with the status that fits:
/// the router's 404/405, the runner's `SandboxError` codes, anything else 500
/// (logged, its text not shown).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return APIError.response(status: error.status, message: error.message, headers: error.headers)
        } catch let error as SandboxError {
            let status = Self.status(of: error)
            guard status != .internalServerError else {
                // Host paths and errnos stay in the owner's log.
                context.logger.error("request failed: \(error)", metadata: ["path": "\(request.uri.path)"])
                return APIError.response(status: status, message: "internal error; see the daemon's log")
            }
            return APIError.response(status: status, message: error.description)
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound ? "no such route" : error.status.reasonPhrase)
            return APIError.response(status: error.status, message: message, headers: error.headers)
        } catch let error as any HTTPResponseError {
            return APIError.response(status: error.status, message: error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed: \(error)", metadata: ["path": "\(request.uri.path)"])
            return APIError.response(status: .internalServerError, message: "internal error; see the daemon's log")
        }
    }

    static func status(of error: SandboxError) -> HTTPResponse.Status {
        switch error.code {
        case .jobNotFound: .notFound
        case .jobStateConflict: .conflict
        case .invalidJobSpec: .unprocessableContent
        case .invalidUpload, .invalidInput: .badRequest
        case .daemonStopping: .serviceUnavailable
        default: .internalServerError
        }
    }
}
