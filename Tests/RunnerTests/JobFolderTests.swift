import Foundation
import Runner
import Sandbox
import SystemPackage
import Testing

@Suite struct JobFolderTests {
    func makeFolder(_ files: [String: String] = ["run.sh": "true\n"]) throws -> String {
        let path = NSTemporaryDirectory() + "syft-unit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, content) in files {
            try content.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }
        return path
    }

    @Test func validFolderWithConfig() throws {
        let path = try makeFolder(["run.sh": "true\n", "config.yaml": "name: my-job\ntype: python\nfiles: [a.py]\n"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createDirectory(atPath: path + "/code", withIntermediateDirectories: false)
        let job = try JobFolder.open(FilePath(path))
        #expect(job.name == "my-job")
        #expect(job.config.type == "python")
        #expect(job.hasCodeFolder)
        #expect(job.warnings.isEmpty)
    }

    @Test func nameFallsBackToTheFolderName() throws {
        let path = try makeFolder(["run.sh": "true\n", "config.yaml": "name: null\n"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let job = try JobFolder.open(FilePath(path))
        #expect(job.name == URL(fileURLWithPath: path).lastPathComponent)
        #expect(!job.hasCodeFolder)
    }

    @Test func symlinkedCodeFolderIsNotACodeFolder() throws {
        let path = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createSymbolicLink(atPath: path + "/code", withDestinationPath: "/etc")
        #expect(try JobFolder.open(FilePath(path)).hasCodeFolder == false)
    }

    @Test(arguments: ["name: [unclosed", "- a list\n- not a mapping\n", "name: {a: 1}\n"])
    func malformedConfigBecomesAWarning(config: String) throws {
        let path = try makeFolder(["run.sh": "true\n", "config.yaml": config])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let job = try JobFolder.open(FilePath(path))
        #expect(job.warnings.count == 1)
        #expect(job.config.name == nil)
    }

    @Test func missingFolderAndMissingRunScriptAreErrors() throws {
        #expect(throws: SandboxError.self) { try JobFolder.open(FilePath("/nonexistent/\(UUID().uuidString)")) }
        let path = try makeFolder(["other.sh": "true\n"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try JobFolder.open(FilePath(path))
            Issue.record("a folder without run.sh was accepted")
        } catch let error as SandboxError {
            #expect(error.code == .invalidJob)
            #expect(error.description.contains("no run.sh"))
            #expect(error.description.contains(path))
        }
    }

    @Test func runScriptMustBeARegularFile() throws {
        let path = try makeFolder([:])
        defer { try? FileManager.default.removeItem(atPath: path) }
        mkfifo(path + "/run.sh", 0o644)
        #expect(throws: SandboxError.self) { try JobFolder.open(FilePath(path)) }
    }
}

@Suite struct ByteSizeTests {
    @Test(arguments: [("4096", UInt64(4096)), ("512K", 512 << 10), ("10M", 10 << 20), ("2G", 2 << 30),
                      ("1GiB", 1 << 30), ("10MB", 10 << 20), ("3k", 3 << 10)])
    func parses(text: String, bytes: UInt64) {
        #expect(ByteSize.parse(text) == bytes)
    }

    @Test(arguments: ["", "M", "1.5G", "-1", "12Q", "99999999999999999999", "17179869184T"])
    func rejects(text: String) {
        #expect(ByteSize.parse(text) == nil)
    }
}

@Suite struct JobEnvironmentTests {
    @Test func buildsFromScratchWithOverrides() {
        let entries = JobEnvironment.build(jobID: "id-1", jobName: "name", requester: "ds@example.com",
                                           extra: [("HOME", "/elsewhere"), ("NEW", "1")])
        let names = entries.map(\.name)
        #expect(Set(names).count == names.count, "duplicate variables")
        let dictionary = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.value) })
        #expect(dictionary["HOME"] == "/elsewhere")
        #expect(dictionary["NEW"] == "1")
        #expect(dictionary["SYFT_JOB_ID"] == "id-1")
        #expect(dictionary["SYFT_REQUESTER"] == "ds@example.com")
        #expect(dictionary["SYFT_IS_IN_JOB"] == "true")
        #expect(dictionary["SYFTBOX_FOLDER"] == nil)
    }
}
