import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
@testable import Runner
import Sandbox
import SystemPackage
import Testing

@Suite struct MultipartUploadTests {
    let folder = FilePath(NSTemporaryDirectory()).appending("syft-upload-\(UUID().uuidString)")

    func request(_ body: [UInt8], boundary: String = "XyZ", contentType: String? = nil,
                 contentLength: Int? = nil, chunk: Int = 7) -> Request {
        var head = HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/jobs")
        head.headerFields[.contentType] = contentType ?? "multipart/form-data; boundary=\(boundary)"
        if let contentLength { head.headerFields[.contentLength] = String(contentLength) }
        // Small chunks: a boundary or a header split across reads must not matter.
        let chunks = stride(from: 0, to: body.count, by: chunk).map { ByteBuffer(bytes: body[$0..<min(body.count, $0 + chunk)]) }
        let stream = AsyncStream<ByteBuffer> { continuation in
            for chunk in chunks { continuation.yield(chunk) }
            continuation.finish()
        }
        return Request(head: head, body: RequestBody(asyncSequence: stream))
    }

    static func body(_ parts: [(name: String, filename: String?, content: String)], boundary: String = "XyZ",
                     close: Bool = true) -> [UInt8] {
        var text = ""
        for part in parts {
            text += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let filename = part.filename { text += "; filename=\"\(filename)\"" }
            text += "\r\nContent-Type: application/octet-stream\r\n\r\n\(part.content)\r\n"
        }
        if close { text += "--\(boundary)--\r\n" }
        return Array(text.utf8)
    }

    func staging() throws -> UploadStaging {
        try FileSystem.makeDirectories(folder, mode: 0o700)
        return try UploadStaging(folder.appending("stage"))
    }

    @Test func filesStreamToDiskAndTheSpecIsKept() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder.string) }
        let staging = try staging()
        let payload = String(repeating: "0123456789", count: 10_000) + "\r\n-- XyZ is not the boundary\r\n"
        let spec = try await MultipartUpload(staging: staging, maxBytes: 1 << 20).receive(request(Self.body([
            ("spec", nil, #"{"entry":"main.py"}"#), ("code_files", "main.py", "print(1)\n"),
            ("code_files", "pkg/mod.py", payload), ("input_files", "data.csv", ""),
        ])))
        #expect(spec.map { String(decoding: $0, as: UTF8.self) } == #"{"entry":"main.py"}"#)
        #expect(staging.codeFiles == ["main.py", "pkg/mod.py"] && staging.inputFiles == ["data.csv"])
        let job = staging.path.appending("job")
        #expect(try String(contentsOfFile: job.appending("code/pkg/mod.py").string, encoding: .utf8) == payload)
        #expect(try String(contentsOfFile: job.appending("input/data.csv").string, encoding: .utf8) == "")
    }

    @Test func badUploadsAreRefusedWithTheirStatusAndLeaveNothing() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder.string) }
        let ok: [(String, String?, String)] = [("spec", nil, "{}"), ("code_files", "main.py", "x")]
        let cases: [(String, Request, HTTPResponse.Status)] = [
            ("not multipart", request(Self.body(ok), contentType: "application/json"), .unsupportedMediaType),
            ("no boundary", request(Self.body(ok), contentType: "multipart/form-data"), .unsupportedMediaType),
            ("declared too large", request(Self.body(ok), contentLength: 10 << 20), .contentTooLarge),
            ("larger than declared", request(Self.body([("code_files", "big", String(repeating: "x", count: 5000))])),
             .contentTooLarge),
            ("cut short", request(Self.body(ok, close: false)), .badRequest),
            ("cut inside a part", request(Array(Self.body(ok).dropLast(30))), .badRequest),
            ("traversal", request(Self.body([("code_files", "../../etc/cron.d/x", "x")])), .badRequest),
            ("absolute", request(Self.body([("code_files", "/etc/passwd", "x")])), .badRequest),
            ("twice", request(Self.body([("code_files", "a.py", "1"), ("code_files", "a.py", "2")])), .badRequest),
            ("file over folder", request(Self.body([("code_files", "a", "1"), ("code_files", "a/b.py", "2")])), .badRequest),
            ("no filename", request(Self.body([("code_files", nil, "x")])), .badRequest),
            ("unknown field", request(Self.body([("secrets", nil, "x")])), .badRequest),
            ("spec too large", request(Self.body([("spec", nil, String(repeating: " ", count: 70_000))]),
                                       chunk: 4096), .contentTooLarge),
        ]
        for (name, request, status) in cases {
            var stage: UploadStaging? = try staging()
            let path = stage!.path
            do {
                _ = try await MultipartUpload(staging: stage!, maxBytes: name == "larger than declared" ? 4096 : 1 << 20)
                    .receive(request)
                Issue.record("\(name): accepted")
            } catch let error as APIError {
                #expect(error.status == status, "\(name): \(error.message)")
            }
            stage = nil // a refused upload's folder goes with its staging
            #expect(!FileManager.default.fileExists(atPath: path.string), "\(name)")
        }
    }

    @Test func contentDispositionParametersAreParsed() {
        let plain = ContentDisposition.parameters(#"form-data; name="code_files"; filename="a \"b\".py""#)
        #expect(plain["name"] == "code_files" && plain["filename"] == #"a "b".py"#)
        let extended = ContentDisposition.parameters("form-data; name=code_files; filename*=UTF-8''d%C3%A9j%C3%A0.py")
        #expect(extended["name"] == "code_files" && extended["filename*"] == "déjà.py")
    }
}
