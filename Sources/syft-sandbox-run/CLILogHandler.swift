import Glibc
import Logging

/// One plain line per message on stderr: "syft-sandbox-run: warning: …".
/// The CLI's output is for people and CI logs, not a log pipeline.
struct CLILogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let label: String

    init(label: String) {
        self.label = label
        let level = getenv("SYFT_SANDBOX_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) }
        logLevel = level ?? .warning
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "syft-sandbox-run: \(event.level == .critical ? "error" : event.level.rawValue): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            line += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        writeStandardError(line + "\n")
    }
}

/// One write(2) to fd 2: no shared C `FILE` state, and a line stays whole.
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}
