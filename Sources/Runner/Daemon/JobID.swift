import Crypto

/// A job's id in the HTTP API and the history: the same for every run of
/// the job, and safe in a URL path segment.
///
/// - A SyftBox job's is the first 16 hex digits of the SHA-256 of its path
///   below the owner's inbox (`DS/v1/JOB`): computed, never stored by the
///   client, and the same after a daemon restart.
/// - A job submitted with `POST /jobs` gets 32 random hex digits.
public struct JobID: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init?(rawValue: String) {
        guard (16...32).contains(rawValue.utf8.count), rawValue.utf8.allSatisfy(Self.isLowerHex) else { return nil }
        self.rawValue = rawValue
    }

    private init(unchecked: String) { rawValue = unchecked }

    public static func syftBox(relativePath: String) -> JobID {
        JobID(unchecked: String(hex(SHA256.hash(data: Array(relativePath.utf8))).prefix(16)))
    }

    public static func syftBox(_ job: InboxJob) -> JobID { syftBox(relativePath: job.relativePath.string) }

    /// A fresh id for an API job (128 random bits).
    public static func random() -> JobID {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return JobID(unchecked: hex(bytes))
    }

    public var description: String { rawValue }

    static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// A run's id: a lowercase UUID (`8-4-4-4-12` hex digits).
public enum RunID {
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                if byte != UInt8(ascii: "-") { return false }
            } else if !JobID.isLowerHex(byte) {
                return false
            }
        }
        return true
    }
}
