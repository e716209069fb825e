import Foundation
import Testing

/// A finished run of the CLI.
struct CLIRun {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
}

enum TestSupport {
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

    /// The probe program, compiled statically once per test process.
    static let probe: String = {
        let source = repository.appendingPathComponent("Tests/IntegrationTests/Probes/probe.c").path
        let output = NSTemporaryDirectory() + "syft-probe-\(getpid())"
        let result = run(["/usr/bin/cc", "-static", "-O1", "-o", output, source])
        precondition(result.status == 0, "cannot build the probe: \(result.stderr)")
        return output
    }()

    /// Runs a program; `environment` nil inherits the test's.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String]? = nil,
                    inheritFD: Int32? = nil) -> CLIRun {
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
                      stderr: String(decoding: errData, as: UTF8.self), seconds: Date().timeIntervalSince(start))
    }

    static func cli(_ arguments: [String], environment: [String: String]? = nil) -> CLIRun {
        run([binary] + arguments, environment: environment)
    }

    /// Pids of host processes whose command line contains `marker`.
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

    /// Runs the job through the CLI with results in a separate folder.
    func run(_ options: [String] = [], environment: [String: String]? = nil) -> CLIRun {
        TestSupport.cli(["--results", results.path] + options + [path], environment: environment)
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
