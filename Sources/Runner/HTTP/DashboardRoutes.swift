import HTTPTypes
import Hummingbird
import NIOCore

/// The dashboard (`GET /`, its script and style under `/assets/`) and the
/// OpenAPI document (`GET /openapi.json`), all compiled into the binary:
/// nothing is fetched from elsewhere, at build or at run time.
struct DashboardRoutes {
    let environment: APIEnvironment

    /// Scripts and styles from this origin only; no inline script; no framing.
    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

    func register(on router: Router<APIRequestContext>) {
        router.get("/") { _, _ in try Self.asset("index.html") }
        router.get("/assets/:name") { _, context in try Self.asset(context.parameters.require("name")) }
        router.get("/openapi.json") { _, _ in try Self.asset("openapi.json") }
    }

    static func asset(_ name: String) throws -> Response {
        guard let text = EmbeddedResources.files["assets/" + name] else { throw APIError.notFound("no such file") }
        let ext = name.split(separator: ".").last.map(String.init) ?? ""
        let types = ["html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                     "css": "text/css; charset=utf-8", "json": "application/json", "svg": "image/svg+xml"]
        var headers: HTTPFields = [.contentType: types[ext] ?? "application/octet-stream",
                                   .contentSecurityPolicy: contentSecurityPolicy,
                                   HTTPField.Name("X-Content-Type-Options")!: "nosniff",
                                   HTTPField.Name("Referrer-Policy")!: "no-referrer"]
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
