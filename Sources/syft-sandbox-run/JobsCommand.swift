import ArgumentParser
import Glibc
import Runner
import Sandbox
import SystemPackage

/// `syft-sandbox-run jobs list|show|approve|reject|cancel|logs`: the owner's
/// review from the command line, writing state.yaml as the client does.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Review a SyftBox data owner's jobs: list, show, approve, reject, cancel, rerun, logs.",
        subcommands: [List.self, Show.self, Approve.self, Reject.self, Cancel.self, Rerun.self, Logs.self])

    struct Folder: ParsableArguments {
        @Option(help: "The SyftBox folder.")
        var syftbox: String

        @Option(help: "The data owner's email.")
        var email: String

        func layout() throws -> SyftBoxLayout {
            guard let resolved = realpath(syftbox, nil) else {
                throw SandboxError(.invalidInput, "cannot resolve the SyftBox folder", path: syftbox,
                                   errno: Errno(rawValue: errno))
            }
            defer { free(resolved) }
            return try SyftBoxLayout(root: FilePath(String(cString: resolved)), owner: email)
        }

        /// The job named `id`: DS/v1/JOB, its API id, or its name when unambiguous.
        func job(_ id: String, in layout: SyftBoxLayout) throws -> InboxJob {
            try JobReview.find(id, in: layout)
        }
    }

    /// Finds the job, does `action` to it, prints "`done` JOB".
    static func act(_ folder: Folder, _ job: String, done: String,
                    _ action: (InboxJob, SyftBoxLayout) throws -> Void) throws {
        try reporting {
            let layout = try folder.layout()
            let found = try folder.job(job, in: layout)
            try action(found, layout)
            print("\(done) \(found.relativePath)")
        }
    }

    /// Runs `body`, turning a SandboxError into one line on stderr and exit 1.
    static func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as SandboxError {
            writeStandardError("syft-sandbox-run: error: \(error)\n")
            throw ExitCode(1)
        }
    }

    static func state(of job: InboxJob, in layout: SyftBoxLayout) throws -> JobState? {
        try JobReview.state(of: job, in: layout)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the jobs and their states.")
        @OptionGroup var folder: Folder
        @Option(help: "Only jobs with this status (received, pending, approved, rejected, running, done, failed).")
        var status: String?

        func run() throws {
            try JobsCommand.reporting {
                let layout = try folder.layout()
                var rows = [["JOB", "STATUS", "RETURN", "COMPLETED"]]
                for job in try layout.scanInbox().jobs {
                    let state = try? JobsCommand.state(of: job, in: layout)
                    let shown = state?.status.rawValue ?? "received"
                    if let status, status != shown { continue }
                    rows.append([job.relativePath.string, shown, state?.returnCode.map(String.init) ?? "-",
                                 state?.completedAt?.text ?? "-"])
                }
                let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
                for row in rows {
                    print(row.enumerated().map { $0 == row.count - 1 ? $1 : $1.padding(to: widths[$0]) }.joined(separator: "  "))
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job's state and review folder.")
        @OptionGroup var folder: Folder
        @Argument(help: "The job: DS/v1/JOB, or its name.") var job: String

        func run() throws {
            try JobsCommand.reporting {
                let layout = try folder.layout()
                let found = try folder.job(job, in: layout)
                print("job:     \(found.relativePath)")
                print("inbox:   \(layout.inboxFolder(of: found))")
                print("review:  \(layout.reviewFolder(of: found))")
                if let state = try JobsCommand.state(of: found, in: layout) {
                    print(String(decoding: try state.serialized(), as: UTF8.self), terminator: "")
                } else {
                    print("status: received (no state.yaml yet)")
                }
            }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a pending job (as the client's approve()).")
        @OptionGroup var folder: Folder
        @Argument(help: "The job: DS/v1/JOB, or its name.") var job: String
        @Option(help: "A note for the submitter (review_reason).") var reason: String?

        func run() throws {
            try JobsCommand.act(folder, job, done: "approved") { found, layout in try JobReview.approve(found, in: layout, reason: reason) }
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a pending or approved job.")
        @OptionGroup var folder: Folder
        @Argument(help: "The job: DS/v1/JOB, or its name.") var job: String
        @Option(help: "Why (review_reason, shown to the submitter).") var reason: String

        func run() throws {
            try JobsCommand.act(folder, job, done: "rejected") { found, layout in try JobReview.reject(found, in: layout, reason: reason) }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a running job (the daemon kills its sandbox), or withdraw an approved one.")
        @OptionGroup var folder: Folder
        @Argument(help: "The job: DS/v1/JOB, or its name.") var job: String

        func run() throws {
            try JobsCommand.act(folder, job, done: "cancelled") { found, layout in try JobReview.cancel(found, in: layout) }
        }
    }

    struct Rerun: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a done or failed job again (as the client's rerun(): logs and outputs cleared, approved).")
        @OptionGroup var folder: Folder
        @Argument(help: "The job: DS/v1/JOB, or its name.") var job: String

        func run() throws {
            try JobsCommand.act(folder, job, done: "approved again") { found, layout in try JobReview.rerun(found, in: layout) }
        }
    }

    struct Logs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a job's stdout and stderr.")
        @OptionGroup var folder: Folder
        @Argument(help: "The job: DS/v1/JOB, or its name.") var job: String

        func run() throws {
            try JobsCommand.reporting {
                let layout = try folder.layout()
                let found = try folder.job(job, in: layout)
                // write(2) throughout: print's buffer would reorder the headers.
                func emit(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { write(1, $0.baseAddress, $0.count) } }
                for name in ["stdout.txt", "stderr.txt"] {
                    emit("==> \(name) <==\n")
                    let path = layout.reviewFolder(of: found).appending(name)
                    let fd = open(path.string, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                    guard fd >= 0 else {
                        emit("(none)\n")
                        continue
                    }
                    defer { close(fd) }
                    var buffer = [UInt8](repeating: 0, count: 64 << 10)
                    while true {
                        let count = read(fd, &buffer, buffer.count)
                        if count <= 0 { break }
                        _ = buffer.withUnsafeBytes { write(1, $0.baseAddress, count) }
                    }
                }
            }
        }
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
