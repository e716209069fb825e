import Foundation
import Testing

/// Environment, descriptors and network: nothing of the host leaks in.
@Suite struct HygieneTests {
    @Test func callerEnvironmentDoesNotLeakAndSyftVariablesAreSet() async throws {
        let job = try JobFixture("env | sort", config: "name: env-check\ntype: bash\n")
        var environment = ProcessInfo.processInfo.environment
        environment["SECRET_TOKEN"] = "hunter2-\(UUID().uuidString)"
        let run = await job.run(["--env", "EXTRA=1", "--env", "WITH_EQUALS=a=b"], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        let env = job.result("stdout.txt") ?? ""
        #expect(!env.contains("SECRET_TOKEN"))
        #expect(!env.contains("hunter2"))
        for expected in ["HOME=/tmp", "LANG=C.UTF-8", "SYFT_JOB_NAME=env-check", "SYFT_OUTPUT_DIR=/job/outputs",
                         "SYFT_IS_IN_JOB=true", "PYTHONUNBUFFERED=1", "EXTRA=1", "WITH_EQUALS=a=b"] {
            #expect(env.contains(expected + "\n"), "missing \(expected)")
        }
        #expect(env.contains("SYFT_JOB_ID="))
        #expect(env.contains("SYFT_REQUESTER="))
    }

    @Test func onlyStdioReachesTheJob() async throws {
        let job = try JobFixture("for fd in 3 4 5 6 7 8 9; do ./probe fd $fd; done", withProbe: true)
        // The shell opens fds 7 and 9 without close-on-exec and execs the CLI
        // with them: a careless runner would hand them to the job.
        let leak = NSTemporaryDirectory() + "syft-it-leak-\(UUID().uuidString)"
        defer { unlink(leak) }
        let command = "exec 7</etc/hostname 9>>\"$3\"; exec \"$0\" --results \"$1\" \"$2\""
        let run = await TestSupport.run(["/bin/sh", "-c", command, TestSupport.binary, job.results.path, job.path, leak])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = job.probeLines()
        for fd in 3...9 { #expect(lines["fd\(fd)"] == "closed", "fd \(fd) is open inside") }
    }

    /// A caller that ignores SIGPIPE and SIGINT (the shell's `trap ''`,
    /// kept across exec, as the runner's Swift runtime ignores SIGPIPE):
    /// the job still starts with every disposition the default and nothing
    /// blocked, whether PID 1 was forked early or executed (the job folder
    /// first: the constructor leaves that line to main).
    @Test(arguments: [true, false])
    func theJobStartsWithTheSignalsOfAFreshProcess(early: Bool) async throws {
        let job = try JobFixture("grep -E '^Sig(Blk|Ign):' /proc/self/status")
        let arguments = early ? "--results \"$1\" \"$2\"" : "\"$2\" --results \"$1\""
        let command = "trap '' PIPE INT; exec \"$0\" " + arguments
        let run = await TestSupport.run(["/bin/sh", "-c", command, TestSupport.binary, job.results.path, job.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n")
    }

    @Test func stdinIsDevNullAndThereIsNoControllingTerminal() async throws {
        let job = try JobFixture("readlink /proc/self/fd/0; cat; (exec 3</dev/tty) 2>/dev/null && echo has-tty; echo done")
        let run = await job.run()
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.result("stdout.txt") == "/dev/null\ndone\n")
    }

    @Test(arguments: ["none", "loopback"])
    func onlyLoopbackExistsAndTheHostIsUnreachable(policy: String) async throws {
        let listener = try TCPListener()
        let job = try JobFixture("""
        tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '
        ./probe connect 127.0.0.1 \(listener.port)
        """, withProbe: true)
        let run = await job.run(["--net", policy])
        #expect(run.status == 0, "\(run.stderr)")
        let stdout = job.result("stdout.txt") ?? ""
        #expect(stdout.hasPrefix("lo\nconnect="), "\(stdout)")
        #expect(!stdout.contains("connect=ok"), "the host's loopback listener was reachable")
        #expect(listener.accepted() == false)
    }

    /// `loopback`: lo is up, so the job reaches a listener of its own;
    /// `none`: lo is down, so even that fails.
    @Test(arguments: [("loopback", "reply"), ("none", "unreachable")])
    func theJobReachesItselfOnlyWithLoopback(policy: String, expected: String) async throws {
        let job = try JobFixture(TestSupport.reachItself)
        let run = await job.run(["--net", policy])
        #expect(run.status == 0, "\(run.stderr) \(job.result("stderr.txt") ?? "")")
        #expect(job.result("stdout.txt") == expected + "\n")
    }

    @Test func hostNetworkIsAnExplicitOptIn() async throws {
        let listener = try TCPListener()
        let job = try JobFixture("./probe connect 127.0.0.1 \(listener.port)", withProbe: true)
        let run = await job.run(["--net", "host"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.probeLines()["connect"] == "ok")
    }
}

/// A TCP listener on the host's loopback, to see whether the job reaches it.
final class TCPListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
    }

    func accepted() -> Bool {
        let client = accept(fd, nil, nil)
        if client >= 0 { close(client) }
        return client >= 0
    }

    deinit { close(fd) }
}
