/// The job's environment, built from scratch: nothing of the runner's
/// environment reaches the job (syft-job passes its own through; secrets
/// in it stay out here).
public enum JobEnvironment {
    public static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    public static let outputDirectory = "/job/outputs"

    /// PATH, HOME, LANG, the SYFT_* variables, then `extra` (`--env`), a
    /// later entry replacing an earlier one of the same name.
    public static func build(jobID: String, jobName: String, requester: String,
                             ownerEmail: String? = nil, syftboxFolder: String? = nil,
                             extra: [(name: String, value: String)] = []) -> [(name: String, value: String)] {
        var entries: [(name: String, value: String)] = [
            ("PATH", path),
            ("HOME", "/tmp"),
            ("LANG", "C.UTF-8"),
            ("SYFT_JOB_ID", jobID),
            ("SYFT_JOB_NAME", jobName),
            ("SYFT_OUTPUT_DIR", outputDirectory),
            ("SYFT_REQUESTER", requester),
            ("SYFT_IS_IN_JOB", "true"),
            ("PYTHONUNBUFFERED", "1"),
        ]
        if let ownerEmail { entries.append(("SYFTBOX_EMAIL", ownerEmail)) }
        if let syftboxFolder { entries.append(("SYFTBOX_FOLDER", syftboxFolder)) }
        for entry in extra {
            entries.removeAll { $0.name == entry.name }
            entries.append(entry)
        }
        return entries
    }
}
