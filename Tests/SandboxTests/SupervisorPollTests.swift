import CSandbox
import Glibc
@testable import Sandbox
import Testing

/// The supervisor's poll loop must tell a descriptor closed under it
/// (POLLNVAL) from one that is ready: the first ends the run as a defect,
/// the second is an event (a cancellation, output, PID 1's exit).
@Suite struct SupervisorPollTests {
    /// A pipe whose read end has a byte waiting.
    private func readablePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        #expect(write(ends[1], "x", 1) == 1)
        return (ends[0], ends[1])
    }

    @Test func aClosedDescriptorIsNamedAndAReadyOneIsNot() throws {
        let ends = try readablePipe()
        defer { close(ends.read); close(ends.write) }
        // The highest number the process may use: never handed out while
        // lower ones are free, so it stays closed whatever other tests open.
        let neverOpen = Int32(getdtablesize() - 1)
        #expect(fcntl(neverOpen, F_GETFD) == -1 && errno == EBADF)
        var fds = [pollfd(fd: ends.read, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: neverOpen, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: -1, events: Int16(POLLIN), revents: 0)]
        #expect(poll(&fds, nfds_t(fds.count), 0) == 2)
        #expect(fds[0].revents & Int16(POLLIN) != 0)
        let named = try #require(Supervisor.closedDescriptor(in: fds))
        #expect(named == "the cancellation eventfd (descriptor \(neverOpen)) was closed while the sandbox ran")
    }

    @Test func readyAndIgnoredDescriptorsAreNotReportedAsClosed() throws {
        let ends = try readablePipe()
        defer { close(ends.read); close(ends.write) }
        var fds = [pollfd(fd: -1, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: ends.read, events: Int16(POLLIN), revents: 0)]
        #expect(poll(&fds, nfds_t(fds.count), 0) == 1)
        #expect(Supervisor.closedDescriptor(in: fds) == nil)
    }

    /// Another component's stray wake-up (it writes 1 to a descriptor number
    /// it closed, which the cancellation eventfd reused) is not a
    /// cancellation; `cancel` is, and is seen again after a stray one.
    @Test func onlyTheSupervisorsOwnTokenCancels() throws {
        let files = try CaptureFilesForPoll()
        defer { files.remove() }
        let configuration = SandboxConfiguration(
            mounts: [], executable: "/bin/true", arguments: ["true"], environment: [], workingDirectory: "/",
            seccomp: try SeccompProgram(compiled: [0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]))  // RET ALLOW
        let supervisor = try Supervisor(configuration: configuration, output: files.output, control: nil)
        var one: UInt64 = 1
        #expect(write(supervisor.cancelFD, &one, 8) == 8)
        #expect(!supervisor.takeCancellation())
        #expect(write(supervisor.cancelFD, &one, 8) == 8)
        supervisor.cancel()
        #expect(supervisor.takeCancellation())
        #expect(!supervisor.takeCancellation())
    }
}

/// Two throwaway files for a supervisor that never runs.
private struct CaptureFilesForPoll {
    let stdout: Int32
    let stderr: Int32
    init() throws {
        stdout = open("/dev/null", O_WRONLY | O_CLOEXEC)
        stderr = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(stdout >= 0 && stderr >= 0)
    }
    var output: OutputCapture { OutputCapture(stdout: stdout, stderr: stderr) }
    func remove() {
        close(stdout)
        close(stderr)
    }
}
