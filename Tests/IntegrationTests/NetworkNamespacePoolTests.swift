import Foundation
import Runner
import Sandbox
import SystemPackage
import Testing

/// The daemon's pooled network namespaces: the runner's, not the job's;
/// one sandbox at a time each; reused once the sandbox is gone.
@Suite struct NetworkNamespacePoolTests {
    func configuration(_ script: String, network: NetworkPolicy, pool: NetworkNamespacePool?) throws -> SandboxConfiguration {
        var configuration = SandboxConfiguration(
            mounts: try RootFilesystem.assembled(skeleton: BuiltinPolicies.skeleton, network: network, tmpBytes: 16 << 20)
                + [.bind(FilePath(TestSupport.probe), at: "/probe")],
            executable: "/bin/sh", arguments: ["sh", "-c", script],
            environment: [("PATH", "/usr/bin:/bin")], workingDirectory: "/", network: network,
            seccomp: try BuiltinPolicies.seccompProgram(), limits: ResourceLimits(wallTime: .seconds(30)))
        configuration.networkNamespaces = pool
        return configuration
    }

    /// Runs `script` and returns its stdout.
    func run(_ script: String, network: NetworkPolicy = .none, pool: NetworkNamespacePool?) async throws -> String {
        let files = try CaptureFiles()
        defer { files.remove() }
        let result = try await Sandbox.run(try configuration(script, network: network, pool: pool), output: files.output())
        #expect(result.termination == .exited(0), "\(files.text(.stderr))")
        return files.text()
    }

    func lines(_ text: String) -> [String: String] {
        Dictionary(text.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
    }

    /// A job's own namespace belongs to its user namespace (its root could
    /// configure it, were its capabilities not dropped); a pooled one to
    /// the runner's, out of the job's reach. The same namespace serves the
    /// next job once the first is gone.
    @Test func aPooledNamespaceIsTheRunnersAndServesTheNextJob() async throws {
        let own = lines(try await run("/probe netns-owner", pool: nil))
        #expect(own["netns-owner"] == "own")

        let pool = NetworkNamespacePool(policy: .none)
        let first = lines(try await run("/probe netns-owner", pool: pool))
        #expect(first["netns-owner"] == "outside")
        #expect(pool.idleCount == 1)
        let second = lines(try await run("/probe netns-owner", pool: pool))
        #expect(second["netns"] == first["netns"], "the namespace was not reused")
        #expect(second["netns"] != own["netns"])
    }

    /// Jobs that run at once never share a namespace (they could reach each
    /// other over loopback or abstract Unix sockets).
    @Test func concurrentJobsGetDistinctNamespaces() async throws {
        let pool = NetworkNamespacePool(policy: .none)
        async let a = run("/probe netns-owner; sleep 0.5", pool: pool)
        async let b = run("/probe netns-owner; sleep 0.5", pool: pool)
        let (first, second) = (lines(try await a), lines(try await b))
        #expect(first["netns"] != nil && first["netns"] != second["netns"])
        #expect(pool.idleCount == 2)
    }

    /// The pool's policy holds: `loopback` has lo up, so the job reaches a
    /// listener of its own; `none` has it down, and the job cannot bring it up.
    @Test(arguments: [(NetworkPolicy.loopback, "reply"), (.none, "unreachable")])
    func thePoolsPolicyHolds(policy: NetworkPolicy, expected: String) async throws {
        let pool = NetworkNamespacePool(policy: policy)
        let script = """
        ip link set lo up 2>/dev/null && echo lo-raised
        \(TestSupport.reachItself)
        """
        for _ in 0..<2 { // the second run is the reused namespace
            #expect(try await run(script, network: policy, pool: pool) == expected + "\n")
        }
    }
}
