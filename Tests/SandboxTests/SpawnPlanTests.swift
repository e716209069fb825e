import Foundation
import CSandbox
@testable import Sandbox
import SystemPackage
import Testing

@Suite struct RootFilesystemTests {
    @Test func assembledRootMirrorsTheHostsTopLevelLinks() throws {
        let plan = try RootFilesystem.assembled(skeleton: RootSkeleton(files: []), network: .none, tmpBytes: 1 << 20)
        #expect(plan.first?.target == "/usr")
        if case let .bind(source, _, _) = plan[0].kind { #expect(source == "/usr") } else { Issue.record("no /usr bind") }
        #expect(plan[0].attributes.contains(.readOnly) && plan[0].attributes.contains(.noSetuid)
            && plan[0].attributes.contains(.noDevices))
        // This machine has a merged /usr: /bin is a link, recreated as one.
        let bin = plan.first { $0.target == "/bin" }
        #expect(bin?.kind == .symlink(destination: "usr/bin"))
        #expect(plan.contains { $0.target == "/tmp" && $0.kind == .tmpfs(sizeBytes: 1 << 20, mode: 0o1777) })
        // One proc mount: its knobs and masks are the shim's (proc.c), and
        // with the attributes of the one PID 1 makes before the plan comes.
        #expect(plan.filter { $0.target.hasPrefix("/proc") }.map(\.kind) == [.proc])
        #expect(plan.first { $0.kind == .proc }?.attributes.rawValue == UInt32(CSB_PROC_ATTR))
    }

    @Test func hostNetworkGetsTheHostsResolverConfiguration() throws {
        let skeleton = RootSkeleton(files: [.init(path: "/etc/resolv.conf", contents: Array("# none\n".utf8))])
        let isolated = try RootFilesystem.assembled(skeleton: skeleton, network: .none, tmpBytes: 1 << 20)
        let host = try RootFilesystem.assembled(skeleton: skeleton, network: .host, tmpBytes: 1 << 20)
        #expect(isolated.filter { $0.target == "/etc/resolv.conf" }.count == 1)
        #expect(host.filter { $0.target == "/etc/resolv.conf" }.count == 1)
        #expect(isolated.first { $0.target == "/etc/resolv.conf" }?.kind == .file(contents: Array("# none\n".utf8), mode: 0o644))
    }

    /// The host's small /etc files come in by content (written into the
    /// root's tmpfs, no bind mount in PID 1's assembly), with their mode;
    /// a larger one stays a read-only bind, and so does a directory. (The
    /// fallback for a file the runner cannot read is not covered here: as
    /// root, the test can read every file.)
    @Test func smallHostEtcFilesAreCopiedLargerOnesBound() throws {
        let host = FilePath("/tmp/syft-root-test-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        defer { _ = try? FileManager.default.removeItem(atPath: host.string) }
        try FileManager.default.createDirectory(atPath: host.string + "/etc/ssl", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: host.string + "/usr", withIntermediateDirectories: true)
        let services = Array("http 80/tcp\n".utf8)
        FileManager.default.createFile(atPath: host.string + "/etc/services", contents: Data(services),
                                       attributes: [.posixPermissions: 0o640])
        let large = [UInt8](repeating: 7, count: RootFilesystem.copiedFileLimit + 1)
        FileManager.default.createFile(atPath: host.string + "/etc/ld.so.cache", contents: Data(large))
        let plan = try RootFilesystem.assembled(skeleton: RootSkeleton(files: []), network: .none, tmpBytes: 1 << 20,
                                                hostRoot: host)
        #expect(plan.first { $0.target == "/etc/services" }?.kind == .file(contents: services, mode: 0o640))
        let cache = plan.first { $0.target == "/etc/ld.so.cache" }
        if case let .bind(source, _, _) = cache?.kind { #expect(source == host.appending("etc/ld.so.cache")) } else {
            Issue.record("a file over the limit was not bound: \(String(describing: cache?.kind))")
        }
        #expect(cache?.attributes.contains(.readOnly) == true)
        let ssl = plan.first { $0.target == "/etc/ssl" }
        if case .bind = ssl?.kind {} else { Issue.record("a directory was not bound: \(String(describing: ssl?.kind))") }
    }

    @Test func preparedRootAsksForItsMountPoints() {
        let plan = RootFilesystem.prepared("/srv/root", tmpBytes: 1 << 20, mountPoints: ["job"])
        #expect(plan[0].target == "/")
        if case let .bind(_, options, points) = plan[0].kind {
            #expect(points == ["proc", "dev", "tmp", "job"])
            #expect(options.contains(.recursive))
        } else {
            Issue.record("the prepared root is not a bind")
        }
    }
}

@Suite struct ResultStatusTests {
    @Test func shellStatusFollowsTheContract() {
        func result(_ termination: SandboxResult.Termination, _ limit: SandboxResult.LimitHit) -> SandboxResult {
            SandboxResult(termination: termination, limitHit: limit, wallTime: .zero, userCPUTime: .zero,
                          systemCPUTime: .zero, maxRSSKilobytes: 0, stdoutBytes: 0, stderrBytes: 0,
                          outputTruncated: false, idmapFallbacks: 0)
        }
        #expect(result(.exited(0), .none).shellStatus == 0)
        #expect(result(.exited(42), .none).shellStatus == 42)
        #expect(result(.signaled(9), .none).shellStatus == 137)
        #expect(result(.signaled(9), .timeout).shellStatus == 124)
        #expect(result(.signaled(9), .output).shellStatus == 137)
    }
}

/// What the plan refuses before anything is cloned: paths that are not
/// absolute or that step through "." or "..".
@Suite struct SpawnPlanValidationTests {
    private func plan(_ mounts: [Mount]) throws {
        let profile = try SeccompProfile.parse(Array(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#.utf8), source: "allow.json")
        let configuration = SandboxConfiguration(
            mounts: mounts, executable: "/bin/true", arguments: [], environment: [], workingDirectory: "/",
            seccomp: try SeccompProgram(profile, source: "allow.json"), cgroups: .unavailable(reason: "test"))
        _ = try SpawnPlan(configuration, stdout: -1, stderr: -1)
    }

    @Test func targetsAndRebindSourcesMustBePlainAbsolutePaths() throws {
        for target in ["job", "", "/job/../etc", "/job/./x", "/..", "/job/..", "/.", "/job/.", "/a//./b", "/a/../"] {
            #expect(throws: SandboxError.self, "\(target)") { try plan([Mount(.directory(mode: 0o755), at: target)]) }
        }
        #expect(throws: SandboxError.self) { try plan([Mount(.rebind(source: "/a/../b"), at: "/b")]) }
        // Names that only begin with dots are names.
        try plan([Mount(.directory(mode: 0o755), at: "/job/..hidden/.x"), Mount(.rebind(source: "/usr/...lib"), at: "/y"),
                  Mount(.directory(mode: 0o755), at: "/a./b.."), Mount(.directory(mode: 0o755), at: "/c/.../d/"),
                  Mount(.directory(mode: 0o755), at: "/")])
    }
}
