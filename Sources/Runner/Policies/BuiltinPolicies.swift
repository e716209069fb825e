import Sandbox
import SystemPackage

/// The policies and the root skeleton compiled into the binary from the
/// repository's `policies/` and `rootfs/etc/` (see Plugins/EmbedResources).
public enum BuiltinPolicies {
    public static let defaultSeccompKey = "policies/seccomp/default.json"

    /// rootfs/etc/NAME becomes /etc/NAME in the assembled root.
    public static let skeleton = RootSkeleton(files: EmbeddedResources.rootfsEtc.map {
        RootSkeleton.File(path: $0.path, contents: Array($0.text.utf8))
    })

    /// The text of a built-in policy file, by its path in the repository.
    public static func file(_ key: String) -> [UInt8]? {
        EmbeddedResources.files[key].map { Array($0.utf8) }
    }

    /// The default profile's program compiled at build time, when this
    /// machine has the architecture it was compiled for (nil otherwise:
    /// then it is compiled from the JSON).
    public static func precompiledDefault() -> SeccompProgram? {
        guard !EmbeddedResources.defaultSeccompProgram.isEmpty,
              EmbeddedResources.defaultSeccompArchitecture == SeccompProfile.Environment.currentArchitecture else {
            return nil
        }
        // Over the literal's contiguous bytes: iterating its UTF8View byte by
        // byte was ~70 µs of every run (8,000 hex digits).
        var text = EmbeddedResources.defaultSeccompProgram
        let bytes = text.withUTF8 { hex in
            [UInt8](unsafeUninitializedCapacity: hex.count / 2) { buffer, count in
                func value(_ digit: UInt8) -> UInt8 {
                    digit <= UInt8(ascii: "9") ? digit &- UInt8(ascii: "0") : digit &- UInt8(ascii: "a") &+ 10
                }
                for index in 0..<hex.count / 2 {
                    buffer[index] = value(hex[2 * index]) << 4 | value(hex[2 * index + 1])
                }
                count = hex.count / 2
            }
        }
        return try? SeccompProgram(compiled: bytes, skippedSyscalls: EmbeddedResources.defaultSeccompSkipped,
                                   encoding: EmbeddedResources.defaultSeccompRanges ? .ranges : .libseccomp)
    }

    /// The seccomp program of `path` (an OCI/Docker JSON profile), or of
    /// the built-in default profile when `path` is nil.
    public static func seccompProgram(path: FilePath? = nil) throws -> SeccompProgram {
        let source: String
        let bytes: [UInt8]
        if let path {
            // The caller's own file: a link to it (e.g. /etc/containers/seccomp.json) is fine.
            let resolved = try FileSystem.canonical(path)
            source = resolved.string
            bytes = try FileSystem.readRegularFile(resolved, limit: 4 << 20)
        } else {
            if let program = precompiledDefault() { return program }
            source = "built-in " + defaultSeccompKey
            bytes = file(defaultSeccompKey) ?? []
        }
        return try SeccompProgram(try SeccompProfile.parse(bytes, source: source), source: source)
    }
}
