import Foundation
@testable import Sandbox
import SystemPackage
import Testing

/// How PID 1 makes mount targets in the new root: it keeps the last parent
/// folder open for the next target in it and makes a missing target
/// before opening it. Neither may put a mount or a file anywhere but where
/// the plan says, as the job then sees it.
@Suite struct MountTargetTests {
    /// A sandbox with `mounts` added fails its setup, naming `target`, and nothing runs.
    func expectSetupFailure(_ mounts: [Mount], naming target: String) async throws {
        var configuration = try TestSupport.shellConfiguration("echo ran")
        configuration.mounts += mounts
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

    func file(_ text: String, at target: String) -> Mount {
        Mount(.file(contents: Array(text.utf8), mode: 0o644), at: target)
    }

    func tmpfs(at target: String) -> Mount {
        Mount(.tmpfs(sizeBytes: 1 << 20, mode: 0o755), at: target)
    }

    /// What `script` prints in a sandbox with `mounts` added to the root's; it must exit 0.
    func output(of script: String, with mounts: [Mount]) async throws -> String {
        var config = try TestSupport.shellConfiguration(script)
        config.mounts += mounts
        let files = try CaptureFiles()
        defer { files.remove() }
        let result = try await Sandbox.run(config, output: files.output())
        #expect(result.termination == .exited(0), "\(files.text())")
        return files.text()
    }

    /// A mount on the kept folder hides what was made in it before; what
    /// the plan makes in that folder afterwards is in the mounted
    /// filesystem, where the job sees it (kept, the old descriptor would
    /// put it under the mount, out of sight).
    @Test func aMountOnTheKeptFolderIsWhereLaterTargetsGo() async throws {
        let text = try await output(of: "ls -A /x; cat /x/b; ls -A /x/d", with: [
            file("a\n", at: "/x/a"), tmpfs(at: "/x"), file("b\n", at: "/x/b"),
            Mount(.symlink(destination: "b"), at: "/x/c"), tmpfs(at: "/x/d"), file("e\n", at: "/x/d/e"),
        ])
        #expect(text == "b\nc\nd\nb\ne\n", "\(text)")
    }

    /// The same for a mount on a folder above the kept one.
    @Test func aMountAboveTheKeptFolderHidesIt() async throws {
        let text = try await output(of: "ls -A /y; ls -A /y/z", with: [
            file("a\n", at: "/y/z/a"), tmpfs(at: "/y"), file("b\n", at: "/y/z/b"),
        ])
        #expect(text == "z\nb\n", "\(text)")
    }

    /// A file bind whose target is a symlink in the new root fails; it
    /// never lands on the symlink's destination (here a file beside it; a
    /// relative link with enough `..` would reach the host's directories).
    @Test func aFileTargetThatIsASymlinkFails() async throws {
        try await expectSetupFailure([
            file("g\n", at: "/w/g"), Mount(.symlink(destination: "g"), at: "/w/f"), .bind(FilePath("/etc/hostname"), at: "/w/f"),
        ], naming: "/w/f")
    }

    /// The same for a directory target (a tmpfs on a symlink to a
    /// directory beside it).
    @Test func aDirectoryTargetThatIsASymlinkFails() async throws {
        try await expectSetupFailure([
            Mount(.directory(mode: 0o755), at: "/w/e"), Mount(.symlink(destination: "e"), at: "/w/d"), tmpfs(at: "/w/d"),
        ], naming: "/w/d")
    }

    /// A target that exists already (a file of the root made earlier in
    /// the plan) is mounted on, not replaced or refused.
    @Test func anExistingFileTargetIsMountedOn() async throws {
        let text = try await output(of: "cat /v/f", with: [file("under\n", at: "/v/f"), .bind(FilePath("/etc/hostname"), at: "/v/f")])
        #expect(text == (try String(contentsOfFile: "/etc/hostname", encoding: .utf8)), "\(text)")
    }

    /// A plan's own masks: files hidden by the mask source, folders by an
    /// empty read-only folder; the second of each kind (a clone of the
    /// first) as well as the first. A path made read-only stays so.
    @Test func aPlansMasksHideFilesAndFoldersAndReadOnlyHolds() async throws {
        let mask = Mount.Kind.mask(source: "/dev/null")
        let text = try await output(of: """
            cat /m/a /m/b; ls -A /m/d /m/e
            touch /m/d/x 2>/dev/null && echo wrote-d; touch /m/r/x 2>/dev/null && echo wrote-r; ls -A /m/r
            """, with: [
                file("secret a\n", at: "/m/a"), file("secret b\n", at: "/m/b"),
                file("f\n", at: "/m/d/f"), file("g\n", at: "/m/e/g"), tmpfs(at: "/m/r"), file("kept\n", at: "/m/r/k"),
                Mount(mask, at: "/m/a"), Mount(mask, at: "/m/d"), Mount(mask, at: "/m/b"), Mount(mask, at: "/m/e"),
                Mount(mask, at: "/m/missing"), Mount(.readOnly, at: "/m/r"),
            ])
        #expect(text == "/m/d:\n\n/m/e:\nk\n", "\(text)")
    }
}
