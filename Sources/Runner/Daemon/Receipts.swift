#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Sandbox
import SystemPackage

/// What the daemon recorded when it received a job: the fingerprint of
/// the submission as it was first seen complete (the code that must be the
/// code that runs), and what an approval rule granted.
public struct Receipt: Codable, Sendable, Hashable {
    public var fingerprint: String
    public var receivedAt: String
    /// The approval rule that approved it automatically, if one did.
    public var rule: String?
    public var maxTimeoutSeconds: Int64?
    public var maxMemoryBytes: UInt64?
    public var shareOutputs: Bool
    public var shareLogs: Bool

    enum CodingKeys: String, CodingKey {
        case fingerprint, receivedAt = "received_at", rule, maxTimeoutSeconds = "max_timeout_seconds",
             maxMemoryBytes = "max_memory_bytes", shareOutputs = "share_outputs", shareLogs = "share_logs"
    }
}

/// Receipts in the daemon's state folder, one small JSON file per job
/// (`receipts/v1/DS/JOB.json`), written atomically and durably: a
/// restarted daemon still knows what it received.
public struct ReceiptStore: Sendable {
    public let directory: FilePath

    public init(stateDirectory: FilePath) {
        directory = stateDirectory.appending("receipts")
    }

    func path(of job: InboxJob) -> FilePath {
        directory.appending(job.protocolVersion == .v1 ? "v1" : "v0").appending(job.submitter)
            .appending(job.name + ".json")
    }

    public func read(_ job: InboxJob) -> Receipt? {
        guard let bytes = try? FileSystem.readRegularFile(path(of: job), limit: 64 << 10) else { return nil }
        return try? JSONDecoder().decode(Receipt.self, from: Data(bytes))
    }

    public func write(_ receipt: Receipt, for job: InboxJob) throws {
        let file = path(of: job)
        try FileSystem.makeDirectories(file.removingLastComponent(), mode: 0o700)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeAtomically(Array(try encoder.encode(receipt)), to: file, mode: 0o600, durable: true)
    }
}
