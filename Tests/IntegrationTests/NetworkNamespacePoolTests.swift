import Foundation
import Runner
import Sandbox
import SystemPackage
import Testing

/// The daemon's pooled network namespaces: the runner's, not the job's;
/// one sandbox at a time each; reused once the sandbox is gone.
@Suite struct NetworkNamespacePoolTests {
    func configuration(_ script: String, network: NetworkPolicy, pool: NetworkNamespacePool?,
                       extra: [Mount] = []) throws -> SandboxConfiguration {
        var configuration = try TestSupport.shellConfiguration(script, network: network)
        configuration.mounts += [.bind(FilePath(TestSupport.probe), at: "/probe")] + extra
        configuration.networkNamespaces = pool
        return configuration
    }

    /// Runs `script` and returns its stdout.
    func run(_ script: String, network: NetworkPolicy = .none, pool: NetworkNamespacePool?,
             extra: [Mount] = []) async throws -> String {
        let files = try CaptureFiles()
        defer { files.remove() }
        let result = try await Sandbox.run(try configuration(script, network: network, pool: pool, extra: extra),
                                           output: files.output())
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
        // Back once PID 1 is reaped, which the sandbox's thread does after
        // the run returned (PID 1 exits while the caller goes on).
        #expect(try await TestSupport.waitUntil(5) { pool.idleCount == 1 })
        let second = lines(try await run("/probe netns-owner", pool: pool))
        #expect(second["netns"] == first["netns"], "the namespace was not reused")
        #expect(second["netns"] != own["netns"])
    }

    /// Jobs that run at once never share a namespace (they could reach each
    /// other over loopback or abstract Unix sockets).
    /// The two meet in a shared folder (each waits, up to 20 s, for the
    /// other's file), so they overlap however a loaded machine runs them.
    @Test func concurrentJobsGetDistinctNamespaces() async throws {
        let pool = NetworkNamespacePool(policy: .none)
        let meeting = FileManager.default.temporaryDirectory.appendingPathComponent("netns-meet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: meeting, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(at: meeting) }
        let meet = Mount.bind(FilePath(meeting.path), at: "/meet", attributes: [.noSetuid, .noDevices])
        func job(_ me: String, _ other: String) -> String {
            "/probe netns-owner; touch /meet/\(me); i=0; while [ ! -e /meet/\(other) ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done"
        }
        async let a = run(job("a", "b"), pool: pool, extra: [meet])
        async let b = run(job("b", "a"), pool: pool, extra: [meet])
        let (first, second) = (lines(try await a), lines(try await b))
        #expect(first["netns"] != nil && first["netns"] != second["netns"])
        #expect(try await TestSupport.waitUntil(5) { pool.idleCount == 2 })
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
