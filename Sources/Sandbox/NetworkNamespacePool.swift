import CSandbox
import Glibc
import Synchronization

/// Network namespaces made ahead and reused, one job at a time each, for
/// a runner that starts many sandboxes (the daemon).
///
/// Making a network namespace and the kernel's deferred teardown of it are
/// the costliest part of a sandbox's start (about 0.5 ms of CPU each, and
/// the clone waits for the first). A pooled namespace is owned by the
/// runner's user namespace, not the job's: the job's root has no
/// CAP_NET_ADMIN there, so it cannot bring lo up or down, add addresses,
/// routes or firewall rules, or change a sysctl: the namespace a job
/// leaves is the one it was given. A namespace serves one sandbox at a
/// time and goes back to the pool only once that sandbox's PID 1 was
/// reaped (the PID namespace, so every process of the job, is gone, and
/// its sockets with it): concurrent jobs never share one, so they cannot
/// reach each other over loopback or abstract Unix sockets.
///
/// It needs CAP_SYS_ADMIN (the runner as root): without it `lease()`
/// returns nil and sandboxes make their own namespace as before.
public final class NetworkNamespacePool: Sendable {
    /// lo down (`none`) or up (`loopback`).
    public let policy: NetworkPolicy
    /// Idle namespaces kept at most; more are closed when returned.
    public let keepIdle: Int
    private let idle = Mutex<[Int32]>([])
    private let unavailable = Atomic<Bool>(false)

    public init(policy: NetworkPolicy, keepIdle: Int = 16) {
        precondition(policy != .host, "the host's network namespace is not pooled")
        self.policy = policy
        self.keepIdle = keepIdle
    }

    deinit {
        for fd in idle.withLock({ $0 }) { close(fd) }
    }

    /// A namespace for one sandbox (give it back with `giveBack`), or nil
    /// when none can be made here.
    func lease() -> Int32? {
        if let fd = idle.withLock({ $0.popLast() }) { return fd }
        guard !unavailable.load(ordering: .relaxed) else { return nil }
        var fd: Int32 = -1
        guard csb_netns_create(policy == .loopback ? 1 : 0, &fd) == 0 else {
            unavailable.store(true, ordering: .relaxed)
            return nil
        }
        return fd
    }

    /// Returns a namespace whose sandbox is gone (its PID 1 reaped).
    func giveBack(_ fd: Int32) {
        let kept = idle.withLock { fds -> Bool in
            guard fds.count < keepIdle else { return false }
            fds.append(fd)
            return true
        }
        if !kept { close(fd) }
    }

    /// Idle namespaces (for tests).
    public var idleCount: Int { idle.withLock { $0.count } }
}

/// A runner's pools, one per policy that has a namespace of its own.
public struct NetworkNamespacePools: Sendable {
    public let none = NetworkNamespacePool(policy: .none)
    public let loopback = NetworkNamespacePool(policy: .loopback)

    public init() {}

    /// The pool for `policy`; nil for `host` (the host's namespace).
    public func pool(for policy: NetworkPolicy) -> NetworkNamespacePool? {
        switch policy {
        case .none: none
        case .loopback: loopback
        case .host: nil
        }
    }
}
