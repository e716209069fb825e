import Glibc
import Sandbox
import SystemPackage

/// What a daemon job sees of the SyftBox folder, at `SYFTBOX_FOLDER`:
/// every datasite's `public/` and exactly the owner's private datasets its
/// config.yaml asks for (those that exist), all read-only; nothing else of
/// the tree (no other job, no other private data, no app_data).
public enum SyftBoxView {
    /// Where the job sees the view.
    public static let target = "/syftbox"
    /// At most this many private datasets are mounted (each needs an
    /// idmapped mount; the shim takes 16).
    public static let maxDatasets = 8

    /// The mounts, and what was asked for but not mounted (for the logs).
    public static func mounts(root: FilePath, owner: String,
                              datasets: [SubmissionMetadata.DatasetRequest]?) -> (mounts: [Mount], notes: [String]) {
        var mounts: [Mount] = [Mount(.directory(mode: 0o755), at: target)]
        var notes: [String] = []
        for site in datasites(in: root) where isRealDirectory(root.appending(site).appending("public")) {
            mounts.append(.bind(root.appending(site).appending("public"), at: "\(target)/\(site)/public",
                                options: [.recursive, .optional]))
        }
        var mounted = 0
        for request in datasets ?? [] {
            guard request.owner.lowercased() == owner.lowercased() else {
                notes.append("dataset owner \(request.owner) is not this datasite's owner: not mounted")
                continue
            }
            for name in request.names {
                guard isPlainName(name) else {
                    notes.append("dataset name '\(name)' is not a plain folder name: not mounted")
                    continue
                }
                let relative = "\(owner)/private/syft_datasets/v1/\(name)"
                let source = root.appending(owner).appending("private").appending("syft_datasets").appending("v1")
                    .appending(name)
                guard isRealDirectory(source) else {
                    notes.append("dataset \(name) does not exist (or is not a folder): not mounted")
                    continue
                }
                guard mounted < maxDatasets else {
                    notes.append("more than \(maxDatasets) datasets asked for: \(name) not mounted")
                    continue
                }
                mounted += 1
                // Idmapped: a root daemon's private files (even 0600) read as the job's own.
                mounts.append(.bind(source, at: "\(target)/\(relative)", options: [.recursive, .optional, .idmap]))
            }
        }
        return (mounts, notes)
    }

    /// Datasite folders: names that look like email addresses, real folders.
    static func datasites(in root: FilePath) -> [String] {
        guard let stream = opendir(root.string) else { return [] }
        defer { closedir(stream) }
        var sites: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if SyftBoxLayout.isEmailAddress(name), isPlainName(name), isRealDirectory(root.appending(name)) {
                sites.append(name)
            }
        }
        return sites.sorted()
    }

    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.hasPrefix(".") && !name.contains("/")
            && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    /// A directory, not a symlink to one.
    static func isRealDirectory(_ path: FilePath) -> Bool {
        var info = stat()
        return lstat(path.string, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }
}
