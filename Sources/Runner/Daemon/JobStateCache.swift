import Sandbox
import Synchronization
import SystemPackage

/// The daemon's reads of state.yaml files, remembered by their bytes: a
/// file read again unchanged costs one read, not a YAML parse. The queue
/// and a job's run look at its state about eight times a run, and the file
/// changes three times (approved, running, done).
///
/// Only parses are cached: every read reads the file, so a change by the
/// client is always seen.
final class JobStateCache: Sendable {
    private let entries = Mutex<[FilePath: (bytes: [UInt8], state: JobState)]>([:])
    /// Past this many files, the cache starts over.
    static let capacity = 4096

    init() {}

    /// `JobReview.state(of:in:)`, parsing only new bytes.
    func state(of job: InboxJob, in layout: SyftBoxLayout) throws -> JobState? {
        try read(from: layout.stateFile(of: job), protocolVersion: job.protocolVersion)
    }

    /// `JobState.read(from:protocolVersion:)`, parsing only new bytes.
    func read(from path: FilePath, protocolVersion: JobProtocol) throws -> JobState? {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readRegularFile(path, limit: JobState.maxFileBytes)
        } catch let error as SandboxError where error.errno == .noSuchFileOrDirectory {
            entries.withLock { _ = $0.removeValue(forKey: path) }
            return nil
        }
        if let known = entries.withLock({ $0[path] }), known.bytes == bytes, known.state.protocolVersion == protocolVersion {
            return known.state
        }
        let state: JobState
        do {
            state = try JobState.parse(bytes, protocolVersion: protocolVersion)
        } catch var error as SandboxError {
            error.path = path.string
            throw error
        }
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[path] = (bytes, state)
        }
        return state
    }
}
