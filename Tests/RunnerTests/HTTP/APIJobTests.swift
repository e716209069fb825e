import Foundation
@testable import Runner
import Sandbox
import SystemPackage
import Testing

@Suite struct APIJobTests {
    let daemonLimits = ResourceLimits(wallTime: .seconds(600), memoryBytes: 2 << 30, processes: 512)

    @Test func jobIDsAreStableForSyftBoxJobsAndRandomForAPIJobs() {
        let id = JobID.syftBox(relativePath: "ds@x.org/v1/job-1")
        #expect(id == JobID.syftBox(relativePath: "ds@x.org/v1/job-1"))
        #expect(id.rawValue.count == 16 && JobID(rawValue: id.rawValue) == id)
        #expect(id != JobID.syftBox(relativePath: "ds@x.org/v1/job-2"))
        let random = JobID.random()
        #expect(random.rawValue.count == 32 && random != JobID.random())
        for bad in ["", "ABCDEF0123456789", "0123456789abcde", "../../etc/passwd", String(repeating: "a", count: 33)] {
            #expect(JobID(rawValue: bad) == nil, "\(bad)")
        }
        #expect(RunID.isValid(UUID().uuidString.lowercased()))
        #expect(!RunID.isValid(UUID().uuidString.uppercased()) && !RunID.isValid("0000"))
    }

    @Test func uploadNamesThatCouldEscapeOrConfuseAreRefused() throws {
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a/./b", "..", ".", "a//b", "-rf", "a/-x", "a\\b", "a\u{1}b",
                    "tab\tname", "a/b/c/d/e/f/g/h/i", String(repeating: "n", count: 256)] {
            #expect(throws: SandboxError.self, "\(bad.debugDescription)") { try UploadPath(bad) }
        }
        #expect(try UploadPath("main.py").components == ["main.py"])
        #expect(try UploadPath("pkg/sub/mod.py").components == ["pkg", "sub", "mod.py"])
        #expect(try UploadPath("données .csv").description == "données .csv")
    }

    @Test func theSpecIsHeldToTheDaemonsLimits() throws {
        let resolved = try APIJobSpec(entry: "pkg/main.py", args: ["a"], timeoutSeconds: 30, netPolicy: "loopback",
                                      env: ["DEBUG": "1"], memoryLimitMB: 256)
            .resolve(limits: daemonLimits, network: .loopback)
        #expect(resolved.interpreter == .python3 && resolved.entry.description == "pkg/main.py")
        #expect(resolved.limits.wallTime == .seconds(30) && resolved.limits.memoryBytes == 256 << 20)
        #expect(resolved.network == .loopback && resolved.environment.map(\.name) == ["DEBUG"])
        #expect(try APIJobSpec(entry: "run.sh").resolve(limits: daemonLimits, network: .none).interpreter == .bash)
        #expect(try APIJobSpec(entry: "tool", runtime: "python3.12").resolve(limits: daemonLimits, network: .none)
            .interpreter == .python3)
        let refused: [APIJobSpec] = [
            APIJobSpec(entry: "main.rb"),
            APIJobSpec(entry: "../main.py"),
            APIJobSpec(timeoutSeconds: 601),
            APIJobSpec(timeoutSeconds: 0),
            APIJobSpec(netPolicy: "host"),
            APIJobSpec(netPolicy: "everything"),
            APIJobSpec(env: ["SYFT_REQUESTER": "me"]),
            APIJobSpec(env: ["1BAD": "x"]),
            APIJobSpec(env: ["NUL": "a\u{0}b"]),
            APIJobSpec(runtime: "ruby"),
            APIJobSpec(memoryLimitMB: 4096),
            APIJobSpec(pidsLimit: 100_000),
            APIJobSpec(args: ["a\u{0}b"]),
        ]
        for spec in refused {
            #expect(throws: SandboxError.self, "\(spec)") { try spec.resolve(limits: daemonLimits, network: .loopback) }
        }
    }

    @Test func aSpecDecodesWithTheFastAPIRunnersDefaults() throws {
        let spec = try JSONDecoder().decode(APIJobSpec.self, from: Data(#"{"timeout_sec": 20, "net_policy": "none"}"#.utf8))
        #expect(spec.entry == "main.py" && spec.args.isEmpty && spec.timeoutSeconds == 20 && spec.env.isEmpty)
    }

    /// The generated run.sh hands the arguments over exactly: quotes,
    /// `$(…)`, globs and newlines stay data.
    @Test func theRunScriptPassesArgumentsLiterally() throws {
        let folder = FilePath(NSTemporaryDirectory()).appending("syft-runsh-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: folder.string) }
        try FileManager.default.createDirectory(atPath: folder.appending("code").string, withIntermediateDirectories: true)
        let arguments = ["plain", "it's", "$(touch /tmp/pwned-\(getpid()))", "*", "two\nlines", "", "\"q\"", "-n"]
        let resolved = try APIJobSpec(entry: "show.sh", args: arguments).resolve(limits: daemonLimits, network: .none)
        try APIJobStore.runScript(resolved).write(toFile: folder.appending("run.sh").string, atomically: true, encoding: .utf8)
        try #"for a in "$@"; do printf '<%s>' "$a"; done"#.write(toFile: folder.appending("code/show.sh").string,
                                                                 atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["run.sh"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder.string)
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(printed == arguments.map { "<\($0)>" }.joined())
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pwned-\(getpid())"))
    }
}
