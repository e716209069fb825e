import Foundation
@testable import Runner
import Sandbox
import SystemPackage
import Testing

/// The daemon's cached reads of state.yaml must see every change the
/// client makes, however small, and report what JobState.read reports.
@Suite struct JobStateCacheTests {
    let folder = NSTemporaryDirectory() + "syft-state-cache-\(UUID().uuidString)"
    var file: String { folder + "/state.yaml" }

    init() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    func write(_ text: String) throws {
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }

    @Test func everyChangeIsSeenAndUnchangedFilesReadTheSame() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = JobStateCache()
        try write("status: pending\n")
        #expect(try cache.read(from: FilePath(file), protocolVersion: .v1)?.status == .pending)
        // Same size, same second: only the bytes tell.
        try write("status: running\n")
        #expect(try cache.read(from: FilePath(file), protocolVersion: .v1)?.status == .running)
        let again = try cache.read(from: FilePath(file), protocolVersion: .v1)
        #expect(again == (try JobState.read(from: FilePath(file), protocolVersion: .v1)))
        try FileManager.default.removeItem(atPath: file)
        #expect(try cache.read(from: FilePath(file), protocolVersion: .v1) == nil)
        try write("status: [unclosed\n")
        #expect {
            _ = try cache.read(from: FilePath(file), protocolVersion: .v1)
        } throws: { error in
            (error as? SandboxError)?.path == file
        }
    }
}
