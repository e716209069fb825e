import Glibc
@testable import Sandbox
import SystemPackage
import Testing

/// An exported filesystem's root descriptor is closed once, by whichever
/// of `close`, `release` and the last reference comes first. The runner
/// closed it after collecting the outputs and the object's deinit closed
/// the number again: in the daemon (and the test process) that closed
/// whatever another thread had opened under it meanwhile (a job's cgroup
/// file, a pooled network namespace, a results file).
@Suite struct ExportedFilesystemTests {
    /// A descriptor of a folder of this test's own, and the folder's inode:
    /// other tests' threads open and close descriptors meanwhile, so a
    /// number is "still this one" only while it has that inode.
    private func openRoot() throws -> (FileDescriptor, ino_t) {
        var template = Array("/tmp/exported-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(made != nil)
        let path = String(cString: made!)
        defer { rmdir(path) }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(fd >= 0)
        return (FileDescriptor(rawValue: fd), inode(fd) ?? 0)
    }

    private func inode(_ fd: Int32) -> ino_t? {
        var info = stat()
        return fstat(fd, &info) == 0 ? info.st_ino : nil
    }

    /// Descriptors opened after `number` was closed until one has it (the
    /// lowest free number goes first; lower ones may be free too), at most
    /// 1024; nil, with them closed, when another test's thread took it.
    private func reuse(_ number: Int32) -> [Int32]? {
        var others: [Int32] = []
        while others.count < 1024 {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if fd < 0 { break }
            others.append(fd)
            if fd >= number { break }
        }
        if others.contains(number) { return others }
        for fd in others { close(fd) }
        return nil
    }

    @Test func closedThenReleasedItClosesItsDescriptorOnce() throws {
        // Other tests' threads open descriptors meanwhile: tried until the
        // closed number is reused here (the check proves nothing otherwise).
        for _ in 0..<50 {
            let (root, folder) = try openRoot()
            var exported: ExportedFilesystem? = ExportedFilesystem(target: "/job/outputs", descriptor: root)
            exported!.close()
            #expect(inode(root.rawValue) != folder)
            guard let others = reuse(root.rawValue) else { continue }
            defer { for fd in others { close(fd) } }
            exported!.close()
            exported!.release { _ in false }
            exported = nil // the deinit
            for fd in others { #expect(fcntl(fd, F_GETFD) >= 0, "descriptor \(fd) was closed a second time") }
            return
        }
        Issue.record("the closed number was never reused: the test proves nothing")
    }

    @Test func aDescriptorHandedOverIsTheTakersToClose() throws {
        let (root, folder) = try openRoot()
        var exported: ExportedFilesystem? = ExportedFilesystem(target: "/job/outputs", descriptor: root)
        let number = root.rawValue
        var taken: FileDescriptor?
        exported!.release { taken = $0; return true }
        exported = nil
        #expect(taken?.rawValue == number)
        #expect(inode(number) == folder, "the deinit closed a descriptor it had handed over")
        close(number)
    }

    @Test func aDescriptorNobodyTakesIsClosed() throws {
        let (root, folder) = try openRoot()
        let exported = ExportedFilesystem(target: "/job/outputs", descriptor: root)
        exported.release { _ in false }
        #expect(inode(root.rawValue) != folder)
    }

    @Test func theLastReferenceClosesAnOpenDescriptor() throws {
        let (root, folder) = try openRoot()
        var exported: ExportedFilesystem? = ExportedFilesystem(target: "/job/outputs", descriptor: root)
        #expect(exported != nil)
        exported = nil
        #expect(inode(root.rawValue) != folder)
    }
}
