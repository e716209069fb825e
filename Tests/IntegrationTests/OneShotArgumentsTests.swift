import ArgumentParser
import CSandbox
@testable import syft_sandbox_run
import Glibc
import Testing

/// The one-shot line's fast parser against ArgumentParser's: the same
/// values wherever the fast path answers, and an answer for the usual lines.
@Suite struct OneShotArgumentsTests {
    static let usual: [[String]] = [
        ["job"],
        ["--results", "/tmp/r", "job"],
        ["job", "--results", "/tmp/r"],
        ["--results=/tmp/r", "--timeout", "2.5", "--net", "loopback", "job"],
        ["--memory", "512M", "--pids", "64", "--cpu-time", "3", "--max-output", "1M", "--max-outputs", "2G",
         "--tmp-size", "64M", "--open-files", "256", "--file-size", "10M", "--uid", "200000", "--json", "job"],
        ["--env", "A=1", "--env=B=two=2", "--env", "C=", "job"],
        ["--seccomp", "/etc/p.json", "--rootfs", "/srv/root", "--", "-job-named-like-an-option"],
        ["--timeout", "1", "--timeout", "3", "job"],
        ["--net", "host", "--json", "--json", "job with spaces"],
    ]

    static let unusual: [[String]] = [
        [], ["--help"], ["-h"], ["job", "other"], ["--bogus", "job"], ["--results"], ["--results", "--json", "job"],
        ["--timeout", "soon", "job"], ["--timeout", "0", "job"], ["--timeout", "-1", "job"], ["--net", "wifi", "job"],
        ["--pids", "0", "job"], ["--pids", "-3", "job"], ["--uid", "0", "job"], ["--memory", "lots", "job"],
        ["--env", "NOEQUALS", "job"], ["--env", "=x", "job"], ["--json=true", "job"], ["--uid", "99999999999", "job"],
        ["-", "job"], ["--", "--json"],
    ]

    @Test(arguments: usual)
    func theUsualLinesTakeTheFastPathAndParseAsArgumentParserDoes(_ line: [String]) throws {
        let reference = try RunCommand.parse(line).arguments
        let fast = try #require(OneShotArguments.fastParse(line), "the fast path gave up on \(line)")
        #expect(fast == reference)
    }

    @Test(arguments: unusual)
    func anUnusualLineIsLeftToArgumentParserOrParsedTheSame(_ line: [String]) {
        let reference = try? RunCommand.parse(line).arguments
        if let fast = OneShotArguments.fastParse(line) {
            #expect(fast == reference, "\(line)")
        }
    }

    /// early.c's constructor finds the same job folder and network as the
    /// fast path in every usual line (so their sandbox is cloned early,
    /// wherever the folder stands), and never names a folder for a line
    /// that ArgumentParser refuses for having none or two.
    @Test(arguments: usual + unusual)
    func theConstructorFindsTheFolderTheParserFinds(_ line: [String]) throws {
        let argv = (["syft-sandbox-run"] + line).map { strdup($0)! }
        defer { for argument in argv { free(argument) } }
        var network: UInt32 = 0
        let found = argv.withUnsafeBufferPointer { buffer in
            csb_one_shot_folder(Int32(buffer.count), buffer.baseAddress!, &network).map { String(cString: $0) }
        }
        if let fast = OneShotArguments.fastParse(line) {
            #expect(found == fast.jobdir, "\(line)")
            let expected = switch fast.net {
            case .none: CSB_NET_NONE.rawValue
            case .loopback: CSB_NET_LOOPBACK.rawValue
            case .host: CSB_NET_HOST.rawValue
            }
            #expect(network == expected, "\(line)")
        } else if (try? RunCommand.parse(line)) == nil, line.isEmpty || line == ["job", "other"] {
            #expect(found == nil, "\(line)")
        }
    }

    /// The first arguments that are not a one-shot run's (one list, read by
    /// main and by early.c's constructor): every subcommand ArgumentParser
    /// knows, help and version; a job folder's name is not among them.
    @Test func everySubcommandIsAReservedFirstArgument() {
        for subcommand in SyftSandboxRun.configuration.subcommands {
            let name = subcommand.configuration.commandName ?? ""
            #expect(csb_reserved_first_argument(name), "\(name)")
            #expect(oneShotCommand([name, "job"]) == nil, "\(name)")
        }
        for name in ["help", "-h", "--help", "--version"] { #expect(csb_reserved_first_argument(name), "\(name)") }
        for name in ["job", "./run", "runs", "--json"] { #expect(!csb_reserved_first_argument(name), "\(name)") }
    }
}
