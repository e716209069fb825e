/// What collecting a job's outputs did: the `outputs` field of result.json.
///
/// Schema (snake_case keys, every key always present): files, directories,
/// bytes, skipped [{path, kind, reason}], skipped_count. `skipped` lists at
/// most `ArtifactCollector.maxSkippedListed` entries (plus the one summary
/// when the entry limit stopped the walk); `skipped_count` counts them all,
/// so a reader can tell the list was cut.
public struct ArtifactReport: Codable, Sendable, Hashable {
    /// One entry of the outputs that was not copied, and why.
    public struct Skipped: Codable, Sendable, Hashable {
        public enum Kind: String, Codable, Sendable, Hashable, CaseIterable {
            case symlink, fifo, socket
            case blockDevice = "block_device"
            case charDevice = "char_device"
            /// An unknown file type, an unsafe name, or an entry that
            /// changed between its stat and its open.
            case unknown
            /// A directory at the depth limit whose contents were not read.
            case tooDeep = "too_deep"
            /// The entry limit was reached: this entry and the rest of the
            /// tree were not collected (one summary, not one per entry).
            case tooManyEntries = "too_many_entries"
            /// The entry could not be opened even after fixing its mode.
            case unreadable
            /// A name the caller withholds (the daemon: `syft.pub.yaml`, the
            /// owner's permission files, which a job must not write).
            case withheld
        }

        /// Relative to the outputs folder, `/`-separated; bytes that are not
        /// UTF-8 are written `\xNN` (see `ArtifactReport.displayPath`).
        public var path: String
        public var kind: Kind
        /// A short sentence for people.
        public var reason: String

        public init(path: String, kind: Kind, reason: String) {
            self.path = path
            self.kind = kind
            self.reason = reason
        }
    }

    /// Regular files copied.
    public var files: Int
    /// Directories copied (the outputs folder itself not counted).
    public var directories: Int
    /// The sum of the copied files' sizes (holes of sparse files included).
    public var bytes: UInt64
    public var skipped: [Skipped]
    /// Every skipped entry, including those left out of `skipped`.
    public var skippedCount: Int

    public init(files: Int = 0, directories: Int = 0, bytes: UInt64 = 0, skipped: [Skipped] = [],
                skippedCount: Int = 0) {
        self.files = files
        self.directories = directories
        self.bytes = bytes
        self.skipped = skipped
        self.skippedCount = skippedCount
    }

    enum CodingKeys: String, CodingKey {
        case files, directories, bytes, skipped, skippedCount = "skipped_count"
    }

    /// A file name or relative path as text: valid UTF-8 as is, every byte
    /// of an invalid sequence as `\xNN`. Names keep all their bytes on disk;
    /// only the report, which must be JSON text, needs this.
    public static func displayPath(_ bytes: some Collection<UInt8>) -> String {
        let bytes = Array(bytes)
        var text = ""
        text.reserveCapacity(bytes.count)
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var position = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(encoded):
                text.unicodeScalars.append(Unicode.UTF8.decode(encoded))
                position += encoded.count
            case let .error(length):
                for byte in bytes[position..<position + length] {
                    text += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
                }
                position += length
            case .emptyInput:
                return text
            }
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension ArtifactReport {
    /// The `outputs` field of result.json (`CodingKeys`' names).
    var prettyJSON: PrettyJSON {
        .object([
            .init("files", .integer(Int64(files))),
            .init("directories", .integer(Int64(directories))),
            .init("bytes", .unsigned(bytes)),
            .init("skipped", .array(skipped.map { entry in
                .object([.init("path", .string(entry.path)), .init("kind", .string(entry.kind.rawValue)),
                         .init("reason", .string(entry.reason))])
            })),
            .init("skipped_count", .integer(Int64(skippedCount))),
        ])
    }
}
