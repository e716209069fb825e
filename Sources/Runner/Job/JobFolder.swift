import Glibc
import Sandbox
import SystemPackage

/// A validated job folder: a directory with a regular `run.sh`, an
/// optional `config.yaml` and, by the syft-job convention, a `code/` folder.
public struct JobFolder: Sendable {
    /// Canonical absolute path (symlinks resolved), as mounts need it.
    public var path: FilePath
    public var config: JobConfig
    /// True when `code/` is a real directory (not a symlink).
    public var hasCodeFolder: Bool
    /// Problems that did not stop the job (e.g. a malformed config.yaml).
    public var warnings: [String]

    /// The job's name: config.yaml's `name`, else the folder's name.
    public var name: String {
        if let name = config.name, !name.isEmpty { return name }
        return path.lastComponent?.string ?? "job"
    }

    public static let configLimit = 1 << 20

    /// Checks the folder; throws `.invalidJob` with what is wrong and where.
    public static func open(_ given: FilePath) throws -> JobFolder {
        var info = stat()
        guard stat(given.string, &info) == 0 else {
            let error = Errno(rawValue: errno)
            let what = error == .noSuchFileOrDirectory ? "job folder not found" : "cannot read the job folder"
            throw SandboxError(.invalidJob, what, path: given.string, errno: error)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw SandboxError(.invalidJob, "not a folder", path: given.string,
                               hint: "pass the folder that holds run.sh")
        }
        let path = try FileSystem.canonical(given)
        guard access(path.string, R_OK | X_OK) == 0 else {
            throw SandboxError(.invalidJob, "cannot read the job folder", path: path.string,
                               errno: Errno(rawValue: errno))
        }
        let runScript = path.appending("run.sh")
        switch FileSystem.lstatKind(runScript) {
        case nil:
            throw SandboxError(.invalidJob, "the job folder has no run.sh", path: path.string,
                               hint: "a job folder holds run.sh, the entry point run with bash")
        case S_IFREG?:
            guard access(runScript.string, R_OK) == 0 else {
                throw SandboxError(.invalidJob, "cannot read run.sh", path: runScript.string,
                                   errno: Errno(rawValue: errno))
            }
        case S_IFLNK?:
            throw SandboxError(.invalidJob, "run.sh is a symlink", path: runScript.string,
                               hint: "the entry point must be a regular file")
        default:
            throw SandboxError(.invalidJob, "run.sh is not a regular file", path: runScript.string)
        }
        var warnings: [String] = []
        var config = JobConfig()
        let configPath = path.appending("config.yaml")
        if FileSystem.lstatKind(configPath) != nil {
            do {
                config = try JobConfig.parse(try FileSystem.readRegularFile(configPath, limit: configLimit))
            } catch {
                warnings.append("ignoring \(configPath.string): \(error); using the defaults")
            }
        }
        return JobFolder(path: path, config: config, hasCodeFolder: FileSystem.isDirectory(path.appending("code")),
                         warnings: warnings)
    }
}
