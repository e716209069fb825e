import Glibc
import Sandbox
import SystemPackage

/// A private copy of a received submission, the code the job runs from.
///
/// The submitter keeps write access to its inbox folder after the owner
/// approved it, so running the inbox folder itself would run whatever it
/// holds at run time, not what was reviewed. The snapshot is copied out
/// of the inbox through descriptors (regular files and folders only,
/// nothing followed, within the same limits as at receipt) into a folder
/// only the daemon writes, and its fingerprint must equal the one taken
/// when the submission was received; otherwise the job is refused.
public struct SubmissionSnapshot: Sendable, Hashable {
    /// The copy: `code/`, `run.sh` and `config.yaml`, owned by the daemon;
    /// folders 0755, files 0644 (0755 when the original had an execute
    /// bit), the snapshot folder itself 0700.
    public var folder: FilePath
    public var fingerprint: SubmissionFingerprint
    public var files: Int
    public var directories: Int
    public var bytes: Int64

    public enum Outcome: Sendable, Hashable {
        case created(SubmissionSnapshot)
        /// Not copied; a sentence for `review_reason`, starting "the
        /// submission changed after it was received: ".
        case refused(reason: String)
    }

    /// The prefix of every refusal's reason.
    public static let changedPrefix = "the submission changed after it was received: "

    /// Copies the job folder at `source` (last component not followed).
    public static func create(from source: FilePath, into destination: FilePath,
                              expecting fingerprint: SubmissionFingerprint,
                              limits: SubmissionLimits = SubmissionLimits()) throws -> Outcome {
        guard let fd = try SubmissionWalk.openFolder(source) else {
            return .refused(reason: changedPrefix + "the job folder is now a symbolic link")
        }
        defer { close(fd) }
        return try create(from: FileDescriptor(rawValue: fd), into: destination, expecting: fingerprint,
                          limits: limits)
    }

    /// Copies the job folder `source` (opened by the caller, e.g. with
    /// `SyftBoxLayout.openInboxFolder(of:)`) into `destination`, which
    /// must not exist (its parent must: it is the daemon's and resolves as
    /// usual). On a refusal or an error nothing is left at `destination`.
    public static func create(from source: FileDescriptor, into destination: FilePath,
                              expecting fingerprint: SubmissionFingerprint,
                              limits: SubmissionLimits = SubmissionLimits()) throws -> Outcome {
        guard let (parentPath, last) = FileSystem.splitLastComponent(destination) else {
            throw SandboxError(.invalidInput, "not a usable path for a snapshot", path: destination.string)
        }
        let name = last.utf8CString.map { $0 }
        let parent = open(parentPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else {
            throw SandboxError(.io, "cannot open the folder for the snapshot", path: parentPath,
                               errno: Errno(rawValue: errno))
        }
        defer { close(parent) }
        guard mkdirat(parent, name, 0o700) == 0 else {
            throw SandboxError(.io, "cannot create the snapshot folder", path: destination.string,
                               errno: Errno(rawValue: errno))
        }
        var keep = false
        defer { if !keep { try? TreeRemoval.remove(name, in: parent) } }
        let copy = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard copy >= 0 else {
            throw SandboxError(.io, "cannot open the snapshot folder", path: destination.string,
                               errno: Errno(rawValue: errno))
        }
        defer { close(copy) }

        let walk = SubmissionWalk(limits: limits, keepConfig: false, copyInto: copy)
        do {
            try walk.walk(source.rawValue)
        } catch let rejection as SubmissionWalk.Rejection {
            return .refused(reason: changedPrefix + rejection.reason)
        } catch let error as SandboxError where error.code == .submissionUnstable {
            return .refused(reason: changedPrefix + error.message)
        } catch var error as SandboxError {
            error.path = error.path ?? destination.string
            throw error
        }
        let copied = walk.fingerprint
        guard copied == fingerprint else {
            return .refused(reason: changedPrefix + "its files are not the ones received (sha256 \(fingerprint.hex) "
                            + "when received, \(copied.hex) now)")
        }
        // What was written must read back as what was read.
        let written = try Submission.fingerprint(of: FileDescriptor(rawValue: copy), limits: limits)
        guard written == fingerprint else {
            throw SandboxError(.io, "the snapshot does not read back as the submission it copied",
                               path: destination.string)
        }
        keep = true
        return .created(SubmissionSnapshot(folder: destination, fingerprint: fingerprint, files: walk.files,
                                           directories: walk.directories, bytes: walk.bytes))
    }
}
