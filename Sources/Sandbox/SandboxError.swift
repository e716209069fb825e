import SystemPackage

/// The one error type of the sandbox and the runner.
///
/// It says what failed (`message`), on which path, the underlying errno when
/// there is one, and what to do about it (`hint`). `Code` is extensible:
/// other modules add their own codes in an extension.
public struct SandboxError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The sandbox could not be set up (a stage of the C shim failed).
        public static let setupFailed = Code(rawValue: "setup_failed")
        /// The input (job folder, option, profile) is unusable.
        public static let invalidInput = Code(rawValue: "invalid_input")
        /// A seccomp profile could not be read, parsed or compiled.
        public static let invalidSeccompProfile = Code(rawValue: "invalid_seccomp_profile")
        /// Reading or writing a file on the host failed.
        public static let io = Code(rawValue: "io")
        /// syft-sandbox-run broke one of its own invariants (a defect to report).
        public static let internalError = Code(rawValue: "internal_error")
    }

    public var code: Code
    public var message: String
    public var path: String?
    public var errno: Errno?
    public var hint: String?

    public init(_ code: Code, _ message: String, path: String? = nil, errno: Errno? = nil, hint: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.errno = errno
        self.hint = hint
    }

    /// One line: "message: path: ENOENT (No such file or directory); hint".
    public var description: String {
        var text = message
        if let path { text += ": \(path)" }
        if let errno { text += ": \(errno.symbolicName) (\(errno.description))" }
        if let hint { text += "; \(hint)" }
        return text
    }
}

extension Errno {
    /// "ENOENT" for ENOENT, "errno 1234" when the shim does not know the value.
    public var symbolicName: String {
        if let name = csbErrnoName(rawValue) { return name }
        return "errno \(rawValue)"
    }
}
