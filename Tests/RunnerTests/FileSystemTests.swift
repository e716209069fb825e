import Foundation
import Glibc
@testable import Runner
import Sandbox
import SystemPackage
import Testing

/// The runner's small file helpers.
@Suite struct FileSystemTests {
    let root = FilePath(NSTemporaryDirectory()).appending("syft-fs-\(UUID().uuidString)")

    private func kind(_ path: FilePath) -> mode_t? {
        var info = stat()
        return lstat(path.string, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    @Test func makeDirectoriesMakesTheMissingParentsWithTheMode() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        let deep = root.appending("a/b/c")
        try FileSystem.makeDirectories(deep, mode: 0o700)
        for path in [root, root.appending("a"), root.appending("a/b"), deep] {
            #expect(kind(path) == S_IFDIR, "\(path)")
            var info = stat()
            #expect(stat(path.string, &info) == 0 && info.st_mode & 0o777 == 0o700 & ~umaskValue(), "\(path)")
        }
        // Existing: nothing to do, no error.
        try FileSystem.makeDirectories(deep)
        try FileSystem.makeDirectories(root.appending("a"))
        try FileSystem.makeDirectories(FilePath("/"))
    }

    @Test func makeDirectoriesBelowAFileFailsNamingThePath() throws {
        defer { try? FileManager.default.removeItem(atPath: root.string) }
        try FileSystem.makeDirectories(root)
        let file = root.appending("file")
        #expect(FileManager.default.createFile(atPath: file.string, contents: Data()))
        let error = try #require(throws: SandboxError.self) { try FileSystem.makeDirectories(file.appending("x/y")) }
        #expect(error.errno == .notDirectory)
        #expect(error.path?.hasPrefix(file.string) == true)
    }

    /// The process's umask, read without changing it (other tests run meanwhile).
    private func umaskValue() -> mode_t {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Umask:") }
        return line.flatMap { mode_t($0.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) } ?? 0o022
    }
}
