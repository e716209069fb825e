import Foundation
import Runner
import Sandbox
import SystemPackage
import Testing

/// A finished run of the CLI.
struct CLIRun {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
    /// The CLI's pid (its cgroups are named job-PID-…).
    var pid: Int32 = 0
}

enum TestSupport {
    /// A job script printing "reply" when it reaches a listener of its own
    /// on 127.0.0.1 (lo is up), else "unreachable".
    static let reachItself = """
    python3 - <<'PY'
    import socket
    try:
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
        client = socket.create_connection(server.getsockname(), timeout=2)
        connection, _ = server.accept(); connection.sendall(b"reply"); print(client.recv(16).decode())
    except OSError:
        print("unreachable")
    PY
    """

    /// The CLI built next to the test bundle (.build/<config>/syft-sandbox-run).
    static let binary: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // swift-testing on Linux runs .build/<config>/<Package>PackageTests.xctest.
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("syft-sandbox-run").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return "syft-sandbox-run"
    }()

    /// The repository root (this file is Tests/IntegrationTests/Support/TestSupport.swift).
    static let repository: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The probe program, compiled statically once per test process and
    /// removed when the process exits.
    static let probe: String = {
        let source = repository.appendingPathComponent("Tests/IntegrationTests/Probes/probe.c").path
        let output = NSTemporaryDirectory() + "syft-probe-\(getpid())"
        let result = runBlocking(["/usr/bin/cc", "-static", "-O1", "-o", output, source])
        precondition(result.status == 0, "cannot build the probe: \(result.stderr)")
        compiledProbe = output
        atexit { if let path = TestSupport.compiledProbe { unlink(path) } }
        return output
    }()
    nonisolated(unsafe) static var compiledProbe: String?

    /// Runs a program on the calling thread; `environment` nil inherits the
    /// test's. Tests call `run`, which keeps this off the cooperative pool.
    static func runBlocking(_ arguments: [String], environment: [String: String]? = nil) -> CLIRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        do { try process.run() } catch { return CLIRun(status: -1, stdout: "", stderr: "\(error)", seconds: 0) }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIRun(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self), seconds: Date().timeIntervalSince(start),
                      pid: process.processIdentifier)
    }

    /// A sandbox configuration that runs `script` with `sh -c` in the
    /// assembled root (the built-in skeleton and seccomp profile), PATH
    /// only, in `/`: what the Swift API's tests run.
    static func shellConfiguration(_ script: String, network: NetworkPolicy = .none,
                                   wallTime: Duration = .seconds(30)) throws -> SandboxConfiguration {
        SandboxConfiguration(
            mounts: try RootFilesystem.assembled(skeleton: BuiltinPolicies.skeleton, network: network, tmpBytes: 16 << 20),
            executable: "/bin/sh", arguments: ["sh", "-c", script],
            environment: [("PATH", "/usr/bin:/bin")], workingDirectory: "/", network: network,
            seccomp: try BuiltinPolicies.seccompProgram(), limits: ResourceLimits(wallTime: wallTime))
    }

    /// Runs a program on a thread of its own and waits without holding a
    /// thread. Swift Testing runs tests on the cooperative pool (as wide as
    /// the CPUs: 2 here); a test blocked for seconds in waitUntilExit starves
    /// every other test of that pool, and their wall-clock deadlines pass
    /// while they cannot run. So no test waits for a process on the pool.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String]? = nil) async -> CLIRun {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: runBlocking(arguments, environment: environment)) }.start()
        }
    }

    /// `run` of the CLI under test.
    @discardableResult
    static func cli(_ arguments: [String], environment: [String: String]? = nil) async -> CLIRun {
        await run([binary] + arguments, environment: environment)
    }

    /// Polls `condition` every 20 ms until it holds or `seconds` passed (then
    /// once more: a test starved past its deadline still sees the outcome).
    static func waitUntil(_ seconds: Double = 30, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// Waits for a started process to exit on a thread of its own (see `run`).
    static func waitForExit(_ process: Process) async {
        await withCheckedContinuation { continuation in
            Thread { process.waitUntilExit(); continuation.resume() }.start()
        }
    }

    /// Starts the CLI on `job` (its output to /dev/null) and waits until
    /// the job's stdout, which grows in the results folder's hidden partial
    /// file, says "ready". The process is running then; the caller ends it.
    static func startCLI(_ job: JobFixture, _ options: [String], environment: [String: String]? = nil) async throws
        -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.binary)
        process.arguments = ["--results", job.results.path] + options + [job.path]
        if let environment { process.environment = environment }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let ready = try await TestSupport.waitUntil {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: job.results.path)) ?? []
            return names.contains { name in
                name.hasPrefix(".stdout.txt.partial")
                    && ((try? String(contentsOfFile: job.results.path + "/" + name, encoding: .utf8)) ?? "").contains("ready")
            }
        }
        if !ready, process.isRunning { process.terminate() }
        try #require(ready, "the job never started")
        return process
    }

    /// A string to put in a job's command lines (`sleep 999.MARKER &`) and
    /// look for on the host afterwards.
    static func marker() -> String { String(UInt64.random(in: 100_000_000 ... 999_999_999)) }

    /// Pids of host processes whose command line contains `marker`.
    /// "pid: target" for every descriptor of another process whose target
    /// lies under `folder` (a deleted file's reads "… (deleted)").
    static func descriptors(under folder: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { $0 != getpid() }.flatMap { pid -> [String] in
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            return fds.compactMap { fd in
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                      target.hasPrefix(folder + "/") else { return nil }
                return "\(pid): \(target)"
            }
        }
    }

    /// The pids of every thread's children of process `pid`.
    static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task -> [Int32] in
            let list = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            return list.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// True while process `pid` exists and has not exited (a zombie, which
    /// only waits for its parent's reaping, counts as exited).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let end = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: end)...].split(separator: " ").first ?? ""
        return state != "Z" && state != "X"
    }

    static func processes(matching marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data, as: UTF8.self).contains(marker)
        }
    }
}

/// A temporary job folder with a run.sh, removed at deinit.
final class JobFixture {
    let url: URL
    let results: URL
    var path: String { url.path }

    init(_ script: String, withCode: Bool = true, withProbe: Bool = false, config: String? = nil) throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("syft-it-\(UUID().uuidString)")
        url = base.appendingPathComponent("job")
        results = base.appendingPathComponent("results")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try ("#!/bin/bash\n" + script + "\n").write(to: url.appendingPathComponent("run.sh"), atomically: true, encoding: .utf8)
        if withCode {
            try FileManager.default.createDirectory(at: url.appendingPathComponent("code"), withIntermediateDirectories: true)
        }
        if withProbe {
            try FileManager.default.copyItem(atPath: TestSupport.probe, toPath: url.appendingPathComponent("probe").path)
        }
        if let config {
            try config.write(to: url.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: url.deletingLastPathComponent())
    }

    /// Runs the job through the CLI with results in a separate folder,
    /// without holding a thread of the cooperative pool while it runs.
    func run(_ options: [String] = [], environment: [String: String]? = nil) async -> CLIRun {
        await TestSupport.cli(["--results", results.path] + options + [path], environment: environment)
    }

    func result(_ name: String) -> String? {
        (try? String(contentsOf: results.appendingPathComponent(name), encoding: .utf8))
    }

    func resultJSON() -> [String: Any]? {
        guard let data = try? Data(contentsOf: results.appendingPathComponent("result.json")) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// "name=value" lines of a probe's stdout.
    func probeLines() -> [String: String] {
        var lines: [String: String] = [:]
        for line in (result("stdout.txt") ?? "").split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { lines[String(parts[0])] = String(parts[1]) }
        }
        return lines
    }
}

/// The per-job cgroups, looked up the way the runner places them: under
/// `syft-sandbox-run/` in the runner's group of every v1 hierarchy it uses
/// (memory, pids, freezer, cpuacct), or directly in its v2 group.
enum CgroupProbe {
    /// The hierarchies' controllers and the parent of the jobs' groups.
    struct Parent {
        var controllers: Set<String>
        var path: String
    }

    static let usedV1 = Set(["memory", "pids", "freezer", "cpuacct"])

    static var parents: [Parent] {
        guard let mountinfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
              let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return [] }
        var groups: [String: String] = [:]  // controller ("" for v2) -> path
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty { groups[""] = String(fields[2]) }
            for controller in fields[1].split(separator: ",") { groups[String(controller)] = String(fields[2]) }
        }
        var parents: [Parent] = []
        for line in mountinfo.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let point = String(left[4])
            if right[0] == "cgroup2", let path = groups[""] {
                parents.append(Parent(controllers: ["cgroup2"], path: point + (path == "/" ? "" : path)))
            } else if right[0] == "cgroup" {
                let controllers = Set(right[2].split(separator: ",").map(String.init)).intersection(usedV1)
                guard let controller = controllers.first, let path = groups[controller] else { continue }
                parents.append(Parent(controllers: controllers,
                                      path: point + (path == "/" ? "" : path) + "/syft-sandbox-run"))
            }
        }
        return parents
    }

    /// True when the runner can count a job's CPU time in its cgroup: a v1
    /// cpuacct hierarchy, or v2 with the memory and pids controllers (every
    /// v2 group has cpu.stat).
    static var accountsCPU: Bool {
        parents.contains { parent in
            if parent.controllers.contains("cpuacct") { return true }
            guard parent.controllers.contains("cgroup2"),
                  let text = try? String(contentsOfFile: parent.path + "/cgroup.controllers", encoding: .utf8) else {
                return false
            }
            let available = Set(text.split(whereSeparator: \.isWhitespace).map(String.init))
            return available.contains("memory") && available.contains("pids")
        }
    }

    /// Job groups (`job-PID-…`) in every hierarchy whose PID matches.
    static func jobGroups(where matches: (Int32) -> Bool) -> [String] {
        var found: [String] = []
        for parent in parents {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] where name.hasPrefix("job-") {
                let parts = name.split(separator: "-")
                if parts.count >= 2, let pid = Int32(parts[1]), matches(pid) { found.append(parent.path + "/" + name) }
            }
        }
        return found
    }

    /// The groups a finished CLI run left (it removes them before exiting).
    static func groups(of run: CLIRun) -> [String] { jobGroups { $0 == run.pid } }

    /// Groups of any runner that is gone: leaks.
    static func leftovers() -> [String] { jobGroups { kill($0, 0) != 0 && errno == ESRCH } }
}

extension TestSupport {
    /// Nothing of the job is left: no host process with `marker` in its
    /// command line, no cgroup of the run in any hierarchy. (Only this
    /// run's: a runner another test kills with SIGKILL leaves groups until
    /// the next run sweeps them, and tests run in parallel.)
    static func expectNothingLeft(_ run: CLIRun, marker: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        if let marker {
            let survivors = processes(matching: marker)
            #expect(survivors.isEmpty, "job processes outlived the job: \(survivors)", sourceLocation: sourceLocation)
        }
        #expect(run.pid > 0, sourceLocation: sourceLocation)
        let groups = CgroupProbe.groups(of: run)
        #expect(groups.isEmpty, "the run's cgroups were not removed: \(groups)", sourceLocation: sourceLocation)
    }

    /// Bytes a folder takes on disk (allocated blocks, recursively).
    static func diskUsage(_ path: String) -> Int {
        var total = 0
        let enumerator = FileManager.default.enumerator(atPath: path)
        var info = stat()
        if lstat(path, &info) == 0 { total += Int(info.st_blocks) * 512 }
        while let name = enumerator?.nextObject() as? String {
            if lstat(path + "/" + name, &info) == 0 { total += Int(info.st_blocks) * 512 }
        }
        return total
    }
}

/// Two temporary files a sandbox's stdout and stderr go to, for tests of
/// the library (`Sandbox.run`). Call `remove()` when done (a `defer`).
struct CaptureFiles {
    let stdout: FileDescriptor
    let stderr: FileDescriptor
    private let base: String

    init() throws {
        base = NSTemporaryDirectory() + "syft-capture-\(UUID().uuidString)"
        stdout = try FileDescriptor.open(base + ".out", .readWrite, options: [.create, .truncate], permissions: .ownerReadWrite)
        do {
            stderr = try FileDescriptor.open(base + ".err", .readWrite, options: [.create, .truncate],
                                             permissions: .ownerReadWrite)
        } catch {
            try? stdout.close()
            unlink(base + ".out")
            throw error
        }
    }

    func output(sink: (@Sendable (OutputChannel, [UInt8]) -> Void)? = nil) -> OutputCapture {
        OutputCapture(stdout: stdout.rawValue, stderr: stderr.rawValue, sink: sink)
    }

    /// What the job wrote to stdout (or stderr), as text.
    func text(_ channel: OutputChannel = .stdout) -> String {
        (try? String(contentsOfFile: base + (channel == .stdout ? ".out" : ".err"), encoding: .utf8)) ?? ""
    }

    func remove() {
        try? stdout.close()
        try? stderr.close()
        unlink(base + ".out")
        unlink(base + ".err")
    }
}

/// A task's allowed CPUs, as its /proc status file lists them.
enum CPUMask {
    /// The `Cpus_allowed_list:` line of the status file at `path`, nil
    /// when it cannot be read.
    static func line(inStatus path: String) -> String? {
        guard let status = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }.map(String.init)
    }

    /// The calling thread's line ("" when unreadable).
    static func ofThisThread() -> String { line(inStatus: "/proc/thread-self/status") ?? "" }
}
