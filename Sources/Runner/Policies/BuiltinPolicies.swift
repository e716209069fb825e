import Sandbox
import SystemPackage

/// The policies and the root skeleton compiled into the binary from the
/// repository's `policies/` and `rootfs/etc/` (see Plugins/EmbedResources).
public enum BuiltinPolicies {
    public static let defaultSeccompKey = "policies/seccomp/default.json"

    /// rootfs/etc/NAME becomes /etc/NAME in the assembled root.
    public static let skeleton: RootSkeleton = {
        let files = EmbeddedResources.files.keys.sorted().compactMap { key -> RootSkeleton.File? in
            guard key.hasPrefix("rootfs/etc/"), let text = EmbeddedResources.files[key] else { return nil }
            return RootSkeleton.File(path: "/" + key.dropFirst("rootfs/".count), contents: Array(text.utf8))
        }
        return RootSkeleton(files: files)
    }()

    /// The text of a built-in policy file, by its path in the repository.
    public static func file(_ key: String) -> [UInt8]? {
        EmbeddedResources.files[key].map { Array($0.utf8) }
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
            source = "built-in " + defaultSeccompKey
            bytes = file(defaultSeccompKey) ?? []
        }
        return try SeccompProgram(try SeccompProfile.parse(bytes, source: source), source: source)
    }
}
