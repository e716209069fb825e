import Glibc
import HTTPTypes
import Hummingbird
import Logging
import Sandbox
import SystemPackage

/// The owner's API token: 32 random bytes as hex, kept in the state
/// folder (`api-token`, mode 0600), made at the first start.
public struct APIToken: Sendable {
    public let value: String
    /// True when this start made it (the log then shows it, once).
    public let isNew: Bool
    public let path: FilePath

    public static func loadOrCreate(stateDirectory: FilePath) throws -> APIToken {
        let path = stateDirectory.appending("api-token")
        if let bytes = try? FileSystem.readRegularFile(path, limit: 4096) {
            let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
            guard text.utf8.count >= 32 else {
                throw SandboxError(.invalidInput, "the API token file is too short", path: path.string,
                                   hint: "delete it to have a new token made")
            }
            // Readable by the owner only, whatever a copy or an editor left.
            chmod(path.string, 0o600)
            return APIToken(value: text, isNew: false, path: path)
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = JobID.hex(bytes)
        try FileSystem.writeAtomically(Array((token + "\n").utf8), to: path, mode: 0o600)
        return APIToken(value: token, isNew: true, path: path)
    }

    /// Compares in time independent of where the first difference is.
    func matches(_ candidate: Substring) -> Bool {
        let expected = Array(value.utf8)
        let given = Array(candidate.utf8)
        var difference = UInt8(expected.count == given.count ? 0 : 1)
        for index in expected.indices { difference |= expected[index] ^ (index < given.count ? given[index] : 0) }
        return difference == 0
    }
}

/// Who may do what:
/// - every request other than GET and HEAD needs `Authorization: Bearer TOKEN`
///   (a header, so another site's page cannot forge it: no CSRF);
/// - when the API listens beyond loopback, reading logs and artifacts needs
///   the token too (the header, or the dashboard's cookie, which GETs accept);
/// - a token that is given must be right, whatever the request;
/// - on a loopback address the Host header must name loopback, so a page
///   whose name was rebound to 127.0.0.1 cannot read the API (DNS rebinding).
struct OwnerAuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    static let cookieName = "syft_sandbox_token"

    let token: APIToken
    let loopbackOnly: Bool
    let boundHost: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if loopbackOnly, let host = request.head.authority, !Self.isLoopbackHost(host, bound: boundHost) {
            throw APIError(.forbidden, "this API answers to loopback host names only (Host: \(host))")
        }
        var context = context
        let isRead = request.method == .get || request.method == .head
        if let authorization = request.headers[.authorization] {
            guard authorization.lowercased().hasPrefix("bearer "),
                  token.matches(authorization.dropFirst("bearer ".count).drop(while: { $0 == " " })) else {
                throw Self.unauthorized("the token is not the owner's")
            }
            context.isOwner = true
        } else if isRead, let cookie = Self.cookie(Self.cookieName, in: request.headers[values: .cookie]),
                  token.matches(cookie) {
            context.isOwner = true
        }
        if !context.isOwner {
            if !isRead { throw Self.unauthorized("this needs the owner's token (Authorization: Bearer …)") }
            if !loopbackOnly, Self.isPrivateRead(request.uri.path) {
                throw Self.unauthorized("logs and artifacts need the owner's token when the API listens beyond loopback")
            }
        }
        return try await next(request, context)
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, message + "; the token is in the daemon's state folder, file api-token",
                 headers: [.wwwAuthenticate: "Bearer realm=\"syft-sandbox-run\""])
    }

    /// Logs and artifacts: `/jobs/ID/logs…`, `/jobs/ID/artifacts/…`, `/api/v1/jobs/history/ID/logs`.
    static func isPrivateRead(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.count >= 3, parts[0] == "jobs", parts[2] == "logs" || parts[2] == "artifacts" { return true }
        if parts.count == 6, parts[0] == "api", parts[2] == "jobs", parts[3] == "history", parts[5] == "logs" { return true }
        return false
    }

    static func isLoopbackHost(_ authority: String, bound: String) -> Bool {
        var host = Substring(authority)
        if host.hasPrefix("[") {
            host = host.dropFirst().prefix { $0 != "]" }
        } else if let colon = host.lastIndex(of: ":") {
            // A port is digits; anything else makes the whole a name no loopback has.
            guard host[host.index(after: colon)...].allSatisfy(\.isASCIIDigit) else { return false }
            host = host[..<colon]
        }
        let name = host.lowercased()
        return name == "localhost" || name.hasSuffix(".localhost") || name == "::1" || name == bound.lowercased()
            || (name.hasPrefix("127.") && name.split(separator: ".").count == 4 && name.split(separator: ".").allSatisfy { UInt8($0) != nil })
    }

    static func cookie(_ name: String, in headers: [String]) -> Substring? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop(while: { $0 == " " })
                if trimmed.hasPrefix(name + "=") { return trimmed.dropFirst(name.count + 1) }
            }
        }
        return nil
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    var trimmingWhitespace: String {
        String(self.drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
