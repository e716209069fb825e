import Hummingbird
import MultipartKit
import NIOCore
import Sandbox

/// `POST /jobs`'s body, `multipart/form-data`, streamed to disk as it
/// arrives: the `spec` field (JSON, kept in memory, at most 64 KiB) and
/// the files of `code_files` and `input_files`, each written into the
/// staging folder under its sanitised name. Nothing is buffered whole.
///
/// Refused: another content type (415); a body longer than `maxBytes`,
/// whatever Content-Length said (413); a body that ends inside a part or
/// before the closing boundary, as one that claimed more bytes than it
/// sent does (400); a file without a name, or with a name that is absolute,
/// holds `..`, a control character, … (400).
struct MultipartUpload {
    static let specLimit = 64 << 10

    let staging: UploadStaging
    let maxBytes: Int

    /// The `spec` field's bytes (nil when there was none).
    func receive(_ request: Request) async throws -> [UInt8]? {
        guard let type = request.headers[.contentType], let boundary = Self.boundary(of: type) else {
            throw APIError(.unsupportedMediaType, "send multipart/form-data with a boundary (fields spec, code_files, input_files)")
        }
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxBytes {
            throw APIError(.contentTooLarge, "the upload is \(declared) bytes; this daemon takes at most \(maxBytes) (--max-upload)")
        }
        let parser = MultipartParser(boundary: boundary)
        let state = PartState(staging: staging)
        parser.onHeader = { name, value in state.header(name, value) }
        parser.onBody = { buffer in state.body(&buffer) }
        parser.onPartComplete = { state.complete() }
        var received = 0
        do {
            for try await chunk in request.body {
                received += chunk.readableBytes
                guard received <= maxBytes else {
                    throw APIError(.contentTooLarge, "the upload is larger than \(maxBytes) bytes (--max-upload)")
                }
                try parser.execute(chunk)
                if let error = state.error { throw error }
            }
        } catch let error as APIError {
            throw error
        } catch let error as SandboxError {
            throw error
        } catch {
            throw APIError.badRequest("the multipart body could not be read (\(error)); was it cut short?")
        }
        guard state.partsCompleted > 0, !state.inPart else {
            throw APIError.badRequest("the multipart body ended before its closing boundary")
        }
        try staging.finish()
        return state.spec
    }

    static func boundary(of contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for part in parts.dropFirst() where part.lowercased().hasPrefix("boundary=") {
            var value = part.dropFirst("boundary=".count)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            return value.isEmpty || value.count > 200 ? nil : String(value)
        }
        return nil
    }

    /// The parser's callbacks cannot throw: the first error is kept here
    /// and thrown after the chunk.
    final class PartState {
        let staging: UploadStaging
        var headers: [(String, String)] = []
        var inPart = false
        var started = false
        var field: String?
        var isFile = false
        var spec: [UInt8]?
        var partsCompleted = 0
        var error: (any Error)?

        init(staging: UploadStaging) { self.staging = staging }

        func header(_ name: String, _ value: String) {
            if !inPart { inPart = true; headers = []; started = false; field = nil; isFile = false }
            headers.append((name, value))
        }

        func body(_ buffer: inout ByteBuffer) {
            guard error == nil else { return }
            if !inPart { inPart = true; headers = [] }
            do {
                if !started { try start() }
                if isFile {
                    try buffer.withUnsafeReadableBytes { try staging.write($0) }
                } else if field == "spec" {
                    guard (spec?.count ?? 0) + buffer.readableBytes <= MultipartUpload.specLimit else {
                        throw APIError(.contentTooLarge, "the spec field is larger than 64 KiB")
                    }
                    spec = (spec ?? []) + buffer.readableBytesView
                }
            } catch {
                self.error = error
            }
        }

        func complete() {
            guard error == nil else { return }
            do {
                if !started { try start() }
                if isFile { try staging.finish() }
            } catch {
                self.error = error
            }
            partsCompleted += 1
            inPart = false
        }

        private func start() throws {
            started = true
            let disposition = headers.first { $0.0.lowercased() == "content-disposition" }?.1 ?? ""
            let parameters = ContentDisposition.parameters(disposition)
            field = parameters["name"]
            switch field {
            case "spec":
                spec = spec ?? []
            case "code_files", "input_files":
                guard let filename = parameters["filename*"] ?? parameters["filename"], !filename.isEmpty else {
                    throw APIError.badRequest("a \(field!) part has no filename")
                }
                do {
                    try staging.begin(field == "code_files" ? .code : .input, name: try UploadPath(filename))
                } catch let error as SandboxError {
                    throw APIError.badRequest("\(field!): \(error.message)")
                }
                isFile = true
            default:
                throw APIError.badRequest("unknown form field '\(field ?? "")'; POST /jobs takes spec, code_files and input_files")
            }
        }
    }
}

/// `form-data; name="code_files"; filename="main.py"`: the parameters,
/// quoted strings unescaped, `filename*=UTF-8''…` percent-decoded.
enum ContentDisposition {
    static func parameters(_ value: String) -> [String: String] {
        var result: [String: String] = [:]
        var scalars = Substring(value)
        // Skip the disposition type.
        scalars = scalars.drop { $0 != ";" }
        while !scalars.isEmpty {
            scalars = scalars.drop { $0 == ";" || $0 == " " || $0 == "\t" }
            let name = scalars.prefix { $0 != "=" && $0 != ";" }.trimmingCharacters(in: " \t").lowercased()
            scalars = scalars.dropFirst(scalars.prefix { $0 != "=" && $0 != ";" }.count)
            guard scalars.first == "=" else { continue }
            scalars = scalars.dropFirst()
            var parsed = ""
            if scalars.first == "\"" {
                scalars = scalars.dropFirst()
                while let character = scalars.first {
                    scalars = scalars.dropFirst()
                    if character == "\"" { break }
                    if character == "\\", let next = scalars.first {
                        parsed.append(next)
                        scalars = scalars.dropFirst()
                    } else {
                        parsed.append(character)
                    }
                }
            } else {
                let raw = scalars.prefix { $0 != ";" }
                parsed = raw.trimmingCharacters(in: " \t")
                scalars = scalars.dropFirst(raw.count)
            }
            if name == "filename*" {
                // RFC 5987: charset'language'percent-encoded
                let pieces = parsed.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                guard pieces.count == 3, pieces[0].lowercased() == "utf-8",
                      let decoded = pieces[2].removingPercentEncodingStrictly() else { continue }
                parsed = decoded
            }
            result[name] = parsed
        }
        return result
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        return String(drop { characters.contains($0) }.reversed().drop { characters.contains($0) }.reversed())
    }
}
