#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Sandbox
import SystemPackage

/// A job submitted with `POST /jobs`, as stored in the state folder.
public struct APIJob: Codable, Sendable, Hashable {
    public var id: JobID
    public var spec: APIJobSpec
    public var name: String
    public var createdAt: Date
    public var codeFiles: [String]
    public var inputFiles: [String]

    enum CodingKeys: String, CodingKey {
        case id, spec, name, createdAt = "created_at", codeFiles = "code_files", inputFiles = "input_files"
    }
}

/// The jobs submitted through the API: `state/api-jobs/ID/` holds
/// `job.json` (the spec and the file lists) and `job/`, a complete job
/// folder (`run.sh`, `config.yaml`, `code/`, `input/`) the sandbox mounts
/// read-only at /job. The folder can be run by hand with the one-shot CLI.
///
/// A submission is assembled in a staging folder (`.staging-*`) and renamed
/// into place whole: a body cut short or refused leaves nothing behind.
public struct APIJobStore: Sendable {
    public let folder: FilePath
    public static let maxFiles = 1000

    public init(stateDirectory: FilePath) throws {
        folder = stateDirectory.appending("api-jobs")
        try FileSystem.makeDirectories(folder, mode: 0o700)
        // Staging folders of a daemon that died mid-upload.
        if let names = try? FileManager.default.contentsOfDirectory(atPath: folder.string) {
            for name in names where name.hasPrefix(".staging-") { try? ArtifactCollector.removeTree(folder.appending(name)) }
        }
    }

    public func jobFolder(of id: JobID) -> FilePath { folder.appending(id.rawValue).appending("job") }

    /// A private folder the upload writes into.
    public func stage() throws -> UploadStaging {
        try UploadStaging(folder.appending(".staging-\(JobID.random().rawValue)"))
    }

    /// The staged files become job `id`: run.sh and config.yaml written
    /// from the spec, then the folder renamed into place.
    public func commit(_ staging: UploadStaging, spec: APIJobSpec, resolved: APIJobSpec.Resolved) throws -> APIJob {
        guard staging.codeFiles.contains(resolved.entry.description) else {
            throw SandboxError(.invalidJobSpec, "entry: '\(resolved.entry)' is not among the code files",
                               hint: "upload it in a code_files part")
        }
        let job = APIJob(id: .random(), spec: spec, name: resolved.name, createdAt: Date(),
                         codeFiles: staging.codeFiles, inputFiles: staging.inputFiles)
        let jobFolder = staging.path.appending("job")
        try FileSystem.writeAtomically(Array(Self.runScript(resolved).utf8), to: jobFolder.appending("run.sh"),
                                       durable: false)
        let config = "# Written by syft-sandbox-run for a job submitted with POST /jobs.\nname: \(Self.yamlQuoted(job.name))\n"
            + "type: \(resolved.interpreter == .python3 ? "python" : "bash")\n"
        try FileSystem.writeAtomically(Array(config.utf8), to: jobFolder.appending("config.yaml"), durable: false)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileSystem.writeAtomically(Array(try encoder.encode(job)), to: staging.path.appending("job.json"), mode: 0o600)
        try FileSystem.rename(staging.path, to: folder.appending(job.id.rawValue))
        staging.committed()
        return job
    }

    /// Every stored job (a folder without a readable job.json is skipped).
    public func loadAll() -> [APIJob] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.string) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return names.compactMap { name -> APIJob? in
            guard JobID(rawValue: name) != nil,
                  let bytes = try? FileSystem.readRegularFile(folder.appending(name).appending("job.json"), limit: 1 << 20)
            else { return nil }
            return try? decoder.decode(APIJob.self, from: Data(bytes))
        }
    }

    public func remove(_ id: JobID) {
        try? ArtifactCollector.removeTree(folder.appending(id.rawValue))
    }

    /// `cd code`, then the interpreter on the entry with the arguments,
    /// each single-quoted (a quote inside becomes '\'').
    static func runScript(_ resolved: APIJobSpec.Resolved) -> String {
        let words = [resolved.interpreter.rawValue, resolved.entry.description] + resolved.arguments
        return """
            # Written by syft-sandbox-run for a job submitted with POST /jobs.
            cd code || exit 126
            exec \(words.map(shellQuoted).joined(separator: " "))

            """
    }

    static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func yamlQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// The folder an upload is written into, file by file, as the multipart
/// body streams in: `job/code/…` and `job/input/…`. Each file is created
/// new (O_EXCL, O_NOFOLLOW) below folders this process made; a name given
/// twice is refused. Removed on deinit unless committed.
public final class UploadStaging: @unchecked Sendable {
    public let path: FilePath
    public private(set) var codeFiles: [String] = []
    public private(set) var inputFiles: [String] = []
    private var isCommitted = false
    private var current: FileDescriptor?

    public enum Area: String, Sendable {
        case code, input
    }

    init(_ path: FilePath) throws {
        self.path = path
        try FileSystem.makeDirectories(path, mode: 0o700)
        for area in ["job", "job/code", "job/input"] {
            guard mkdir(path.appending(area).string, 0o755) == 0 || errno == EEXIST else {
                throw SandboxError(.io, "cannot create the upload folder", path: path.appending(area).string,
                                   errno: Errno(rawValue: errno))
            }
        }
    }

    deinit {
        try? current?.close()
        if !isCommitted { try? ArtifactCollector.removeTree(path) }
    }

    func committed() { isCommitted = true }

    /// Starts the file `name` (an uploaded file's name) in `area`.
    public func begin(_ area: Area, name: UploadPath) throws {
        try finish()
        guard codeFiles.count + inputFiles.count < APIJobStore.maxFiles else {
            throw SandboxError(.invalidUpload, "more than \(APIJobStore.maxFiles) files")
        }
        var directory = path.appending("job").appending(area.rawValue)
        for component in name.components.dropLast() {
            directory.append(component)
            guard mkdir(directory.string, 0o755) == 0 || errno == EEXIST, FileSystem.lstatKind(directory) == S_IFDIR else {
                throw SandboxError(.invalidUpload, "'\(name)' needs a folder where a file of that name was uploaded")
            }
        }
        let file = directory.appending(name.components.last!)
        let fd = open(file.string, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if errno == EEXIST { throw SandboxError(.invalidUpload, "'\(name)' is uploaded twice") }
            throw SandboxError(.io, "cannot create the uploaded file", path: file.string, errno: Errno(rawValue: errno))
        }
        current = FileDescriptor(rawValue: fd)
        switch area {
        case .code: codeFiles.append(name.description)
        case .input: inputFiles.append(name.description)
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let current else { return }
        do {
            _ = try current.writeAll(bytes)
        } catch {
            throw SandboxError(.io, "cannot write an uploaded file", path: path.string, errno: error as? Errno)
        }
    }

    /// Ends the file being written.
    public func finish() throws {
        guard let fd = current else { return }
        current = nil
        try fd.close()
    }
}
