import Foundation
@testable import Runner
import Sandbox
import Testing

/// result.json is written by `PrettyJSON`, not JSONEncoder (launch time):
/// the bytes must be JSONEncoder's, `[.prettyPrinted, .sortedKeys,
/// .withoutEscapingSlashes]`, for every kind of value a record holds.
@Suite struct PrettyJSONTests {
    static func encoderBytes(_ record: ResultRecord) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(record)) + [0x0A]
    }

    static func record(text: String, timeout: Double?, outputs: ArtifactReport?, warnings: [String],
                       exitCode: Int32?) -> ResultRecord {
        ResultRecord(
            status: exitCode == 0 ? .succeeded : .timedOut, exitCode: exitCode, signal: exitCode == nil ? 9 : nil,
            returncode: exitCode ?? -1,
            job: .init(id: "6f1c", name: text, type: exitCode == nil ? nil : "bash", folder: "/srv/jobs/" + text),
            startedAt: "2026-12-01T01:03:50Z", finishedAt: "2026-12-01T01:03:51Z",
            wallMs: 61, cpuUserMs: 0, cpuSysMs: nil, maxRssKb: Int64.max, memoryPeakBytes: UInt64.max,
            oomKilled: exitCode == nil, stdoutBytes: 0, stderrBytes: 12, outputTruncated: true,
            limitHit: exitCode == nil ? .cpuTime : .none,
            limits: .init(timeoutSeconds: timeout, cpuTimeSeconds: timeout.map { $0 / 4 }, memoryBytes: 2 << 30,
                          processes: nil, enforcement: .cgroupV1, cpuTimeEnforcement: timeout == nil ? nil : .rlimit,
                          openFiles: 1024, fileSizeBytes: nil, outputBytes: 10 << 20, outputsBytes: 1 << 30,
                          tmpBytes: 512 << 20),
            network: .loopback, outputs: outputs, warnings: warnings, error: exitCode == nil ? text : nil)
    }

    @Test(arguments: [
        "plain", "quote \" backslash \\ slash / tab \t newline \n return \r", "bell \u{07} nul \u{00} esc \u{1B} del \u{7F}",
        "backspace \u{08} form feed \u{0C} unit \u{1F}", "café ✓ 日本 🚀", "",
    ])
    func resultRecordsAreJSONEncodersBytes(text: String) throws {
        let report = ArtifactReport(files: 2, directories: 1, bytes: 4096, skipped: [
            .init(path: "link\\x80/\(text)", kind: .symlink, reason: "a symbolic link: \(text)"),
            .init(path: "fifo", kind: .fifo, reason: "not a regular file"),
        ], skippedCount: 7)
        for (timeout, outputs, warnings, exitCode) in [
            (600.0 as Double?, report as ArtifactReport?, [text, "second"], 0 as Int32?),
            (0.5, ArtifactReport(), [], nil),
            (nil, nil, [String](), -1),
            (1.25, report, ["only"], 0),
            (86_400.125, ArtifactReport(), [], 0),
        ] {
            let record = Self.record(text: text, timeout: timeout, outputs: outputs, warnings: warnings, exitCode: exitCode)
            let ours = record.fileBytes
            let theirs = try Self.encoderBytes(record)
            #expect(ours == theirs, "\(String(decoding: ours, as: UTF8.self))\nvs\n\(String(decoding: theirs, as: UTF8.self))")
            // And it reads back as the record.
            let decoded = try JSONDecoder().decode(ResultRecord.self, from: Data(ours))
            #expect(decoded.job.name == text && decoded.warnings == warnings)
        }
    }
}
