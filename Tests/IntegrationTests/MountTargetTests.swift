import Foundation
@testable import Sandbox
import SystemPackage
import Testing

/// How PID 1 makes mount targets in the new root: it keeps the last parent
/// folder open for the next target in it and makes a missing target
/// before opening it. Neither may put a mount or a file anywhere but where
/// the plan says, as the job then sees it.
@Suite struct MountTargetTests {
    func run(_ configuration: SandboxConfiguration) async throws -> (SandboxResult, String) {
        let files = try CaptureFiles()
        defer { files.remove() }
        let result = try await Sandbox.run(configuration, output: files.output())
        return (result, files.text())
    }

    func expectSetupFailure(_ configuration: SandboxConfiguration, naming target: String) async throws {
        let files = try CaptureFiles()
        defer { files.remove() }
        await #expect {
            _ = try await Sandbox.run(configuration, output: files.output())
        } throws: { error in
            guard let failure = error as? SandboxError else { return false }
            return failure.code == .setupFailed && "\(failure)".contains(target)
        }
        #expect(files.text() == "", "the job ran")
    }

    /// A mount on the kept folder hides what was made in it before; what
    /// the plan makes in that folder afterwards is in the mounted
    /// filesystem, where the job sees it (kept, the old descriptor would
    /// put it under the mount, out of sight).
    @Test func aMountOnTheKeptFolderIsWhereLaterTargetsGo() async throws {
        var config = try TestSupport.shellConfiguration("ls -A /x; cat /x/b; ls -A /x/d")
        config.mounts += [
            Mount(.file(contents: Array("a\n".utf8), mode: 0o644), at: "/x/a"),
            Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: "/x"),
            Mount(.file(contents: Array("b\n".utf8), mode: 0o644), at: "/x/b"),
            Mount(.symlink(destination: "b"), at: "/x/c"),
            Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: "/x/d"),
            Mount(.file(contents: Array("e\n".utf8), mode: 0o644), at: "/x/d/e"),
        ]
        let (result, text) = try await run(config)
        #expect(result.termination == .exited(0))
        #expect(text == "b\nc\nd\nb\ne\n", "\(text)")
    }

    /// The same for a mount on a folder above the kept one.
    @Test func aMountAboveTheKeptFolderHidesIt() async throws {
        var config = try TestSupport.shellConfiguration("ls -A /y; ls -A /y/z")
        config.mounts += [
            Mount(.file(contents: Array("a\n".utf8), mode: 0o644), at: "/y/z/a"),
            Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: "/y"),
            Mount(.file(contents: Array("b\n".utf8), mode: 0o644), at: "/y/z/b"),
        ]
        let (result, text) = try await run(config)
        #expect(result.termination == .exited(0))
        #expect(text == "z\nb\n", "\(text)")
    }

    /// A file bind whose target is a symlink in the new root fails; it
    /// never lands on the symlink's destination (here a file beside it; a
    /// relative link with enough `..` would reach the host's directories).
    @Test func aFileTargetThatIsASymlinkFails() async throws {
        var config = try TestSupport.shellConfiguration("echo ran")
        config.mounts += [
            Mount(.file(contents: Array("g\n".utf8), mode: 0o644), at: "/w/g"),
            Mount(.symlink(destination: "g"), at: "/w/f"),
            .bind(FilePath("/etc/hostname"), at: "/w/f"),
        ]
        try await expectSetupFailure(config, naming: "/w/f")
    }

    /// The same for a directory target (a tmpfs on a symlink to a
    /// directory beside it).
    @Test func aDirectoryTargetThatIsASymlinkFails() async throws {
        var config = try TestSupport.shellConfiguration("echo ran")
        config.mounts += [
            Mount(.directory(mode: 0o755), at: "/w/e"),
            Mount(.symlink(destination: "e"), at: "/w/d"),
            Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: "/w/d"),
        ]
        try await expectSetupFailure(config, naming: "/w/d")
    }

    /// A target that exists already (a file of the root made earlier in
    /// the plan) is mounted on, not replaced or refused.
    @Test func anExistingFileTargetIsMountedOn() async throws {
        var config = try TestSupport.shellConfiguration("cat /v/f")
        config.mounts += [
            Mount(.file(contents: Array("under\n".utf8), mode: 0o644), at: "/v/f"),
            .bind(FilePath("/etc/hostname"), at: "/v/f"),
        ]
        let (result, text) = try await run(config)
        #expect(result.termination == .exited(0))
        #expect(text == (try String(contentsOfFile: "/etc/hostname", encoding: .utf8)), "\(text)")
    }
}
