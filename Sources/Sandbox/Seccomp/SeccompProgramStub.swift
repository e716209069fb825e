// TEMPORARY: replaced by the real compiler (helper branch wt/seccomp).
import CSandbox
import Glibc

public final class SeccompProgram: @unchecked Sendable {
    private var bpf: csb_bpf
    init(allowAll: Void) {
        // BPF_RET | BPF_K, SECCOMP_RET_ALLOW
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        let words: [UInt16] = [0x06, 0, 0, 0]
        raw.storeBytes(of: words[0], toByteOffset: 0, as: UInt16.self)
        raw.storeBytes(of: UInt8(0), toByteOffset: 2, as: UInt8.self)
        raw.storeBytes(of: UInt8(0), toByteOffset: 3, as: UInt8.self)
        raw.storeBytes(of: UInt32(0x7fff_0000), toByteOffset: 4, as: UInt32.self)
        bpf = csb_bpf(filter: raw, length: 1)
    }
    public static let allowAllForTesting = SeccompProgram(allowAll: ())
    public func withUnsafeBPF<R>(_ body: (UnsafePointer<csb_bpf>) throws -> R) rethrows -> R {
        try withUnsafePointer(to: &bpf) { try body($0) }
    }
}
