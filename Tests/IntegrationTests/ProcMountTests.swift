import Foundation
@testable import Sandbox
import SystemPackage
import Testing

/// Every procfs a sandbox gets has the kernel's knobs read-only and the
/// host kernel's files hidden: the root's /proc, which PID 1 makes before
/// its plan arrives and the plan moves into the root, and any other proc
/// mount of the plan, made fresh where the plan puts it.
@Suite struct ProcMountTests {
    /// Knobs this host has, each expected as a read-only mount of its own.
    static let knobs = ["sys", "irq", "bus", "fs", "sysrq-trigger"].filter { exists($0) }
    /// Host files this host has, each expected hidden by a mount.
    static let hidden = ["kmsg", "keys", "kallsyms", "timer_list", "kpageflags", "vmallocinfo"].filter { exists($0) }

    static func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: "/proc/" + name) }

    /// For the procfs at `path`: each knob's mount and its read-only flag,
    /// each hidden file's mount, whether a sysctl could be written, and
    /// how many bytes of the kernel's symbols could be read.
    static func probe(_ path: String) -> String {
        """
        for k in \(knobs.joined(separator: " ")); do
          awk -v m=\(path)/$k '$5 == m { split($6, o, ","); print m, o[1] }' /proc/self/mountinfo
        done
        for k in \(hidden.joined(separator: " ")); do
          awk -v m=\(path)/$k '$5 == m { print m, "hidden" }' /proc/self/mountinfo
        done
        echo sandbox2 > \(path)/sys/kernel/hostname 2>/dev/null && echo "\(path): wrote a sysctl"
        echo "\(path) kallsyms $(head -c 1 \(path)/kallsyms 2>/dev/null | wc -c)"
        """
    }

    static func expected(_ path: String) -> [String] {
        knobs.map { "\(path)/\($0) ro" } + hidden.map { "\(path)/\($0) hidden" } + ["\(path) kallsyms 0"]
    }

    @Test func theRootsProcAndAFreshOneHideTheSameAndAreReadOnly() async throws {
        var configuration = try TestSupport.shellConfiguration(Self.probe("/proc") + "\n" + Self.probe("/run/proc2"))
        // A second proc mount: the one PID 1 made before its plan went to
        // /proc, so this one is made where it stands, the same way.
        configuration.mounts.append(Mount(.proc, at: "/run/proc2", attributes: [.noSetuid, .noDevices, .noExec]))
        let files = try CaptureFiles()
        defer { files.remove() }
        let result = try await Sandbox.run(configuration, output: files.output())
        #expect(result.termination == .exited(0), "\(files.text())")
        let lines = files.text().split(separator: "\n").map(String.init)
        #expect(lines == Self.expected("/proc") + Self.expected("/run/proc2"), "\(lines)")
    }

    /// A proc mount with attributes of its own (read-only here) is made
    /// fresh with them, knobs and hidden files as always.
    @Test func aProcWithOtherAttributesIsMadeWithThem() async throws {
        var configuration = try TestSupport.shellConfiguration(
            Self.probe("/run/proc3") + "\nawk '$5 == \"/run/proc3\" { split($6, o, \",\"); print \"root\", o[1] }' /proc/self/mountinfo")
        configuration.mounts.append(Mount(.proc, at: "/run/proc3", attributes: [.readOnly, .noSetuid, .noDevices, .noExec]))
        let files = try CaptureFiles()
        defer { files.remove() }
        let result = try await Sandbox.run(configuration, output: files.output())
        #expect(result.termination == .exited(0), "\(files.text())")
        let lines = files.text().split(separator: "\n").map(String.init)
        #expect(lines == Self.expected("/run/proc3") + ["root ro"], "\(lines)")
    }
}
