// csandbox.h — the one public header of the C shim.
//
// The shim does the work that must happen between clone() and execve():
// namespaces, id maps, mounts, pivot_root, network, rlimits, capabilities,
// no_new_privs and the seccomp filter. Everything it needs (mount plan,
// argv, envp, the BPF program, prepared capability state) is built by the
// caller in the parent; the child runs only async-signal-safe code.
//
// Conventions: functions return 0 or a positive errno value. A failing
// child reports a fixed `struct csb_error` record over a close-on-exec pipe;
// EOF on that pipe means the job's execve() succeeded.
#ifndef CSANDBOX_H
#define CSANDBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Failure records

/// Where in the setup a failure happened. Stable numbers: Swift mirrors them.
enum csb_stage {
    CSB_STAGE_NONE = 0,
    CSB_STAGE_PREPARE = 1,     // parent: preparing fds, capabilities, pipes
    CSB_STAGE_CLONE = 2,       // clone3/clone into the namespaces (parent), PID 1's unshare of the rest
    CSB_STAGE_ID_MAP = 3,      // parent: writing uid_map / setgroups / gid_map
    CSB_STAGE_IDMAP_MOUNT = 4, // parent: creating an idmapped bind mount
    CSB_STAGE_SYNC = 5,        // child: waiting for the parent's go-ahead
    CSB_STAGE_MOUNT = 6,       // child: assembling the root
    CSB_STAGE_PIVOT = 7,       // child: pivot_root and detaching the old root
    CSB_STAGE_NETWORK = 8,     // child: loopback configuration
    CSB_STAGE_HOSTNAME = 9,    // child: sethostname
    CSB_STAGE_INIT = 10,       // child: PID 1 forking the job
    CSB_STAGE_FDS = 11,        // job: stdio and closing inherited fds
    CSB_STAGE_SESSION = 12,    // job: setsid, parent-death signal
    CSB_STAGE_RLIMIT = 13,     // job: setrlimit
    CSB_STAGE_CAPS = 14,       // job: dropping capabilities
    CSB_STAGE_NO_NEW_PRIVS = 15,
    CSB_STAGE_SECCOMP = 16,    // job: loading the seccomp filter
    CSB_STAGE_CHDIR = 17,      // job: entering the working directory
    CSB_STAGE_EXEC = 18,       // job: execve
    CSB_STAGE_CGROUP = 19,     // child: the placement, the job joining its cgroup
};

#define CSB_ERROR_MESSAGE_MAX 240

/// The fixed record a failing child writes (one write, atomic on a pipe).
struct csb_error {
    int32_t stage;   // enum csb_stage
    int32_t error;   // errno value
    char message[CSB_ERROR_MESSAGE_MAX]; // NUL-terminated: what failed, on which path
};

// MARK: - Seccomp (parent side: compile once, load in the child)

enum csb_seccomp_action {
    CSB_SECCOMP_ALLOW = 0,
    CSB_SECCOMP_ERRNO = 1,        // return -errno_ret
    CSB_SECCOMP_KILL_PROCESS = 2,
    CSB_SECCOMP_KILL_THREAD = 3,
    CSB_SECCOMP_TRAP = 4,
    CSB_SECCOMP_LOG = 5,
};

/// Comparison operators, same meaning as libseccomp's `enum scmp_compare`.
enum csb_seccomp_op {
    CSB_SECCOMP_OP_NE = 1,
    CSB_SECCOMP_OP_LT = 2,
    CSB_SECCOMP_OP_LE = 3,
    CSB_SECCOMP_OP_EQ = 4,
    CSB_SECCOMP_OP_GE = 5,
    CSB_SECCOMP_OP_GT = 6,
    CSB_SECCOMP_OP_MASKED_EQ = 7, // (arg & value) == value_two
};

struct csb_seccomp_arg {
    uint32_t index;     // 0...5
    uint32_t op;        // enum csb_seccomp_op
    uint64_t value;
    uint64_t value_two;
};

struct csb_seccomp_rule {
    const char *_Nonnull name;  // syscall name; unknown on this arch: skipped
    uint32_t action;            // enum csb_seccomp_action
    uint32_t errno_ret;
    const struct csb_seccomp_arg *_Nullable args;
    uint32_t arg_count;
};

struct csb_seccomp_profile {
    uint32_t default_action;    // enum csb_seccomp_action
    uint32_t default_errno;
    const struct csb_seccomp_rule *_Nullable rules;
    size_t rule_count;
};

/// A compiled classic-BPF program (struct sock_filter array) for the native
/// architecture only; every other architecture (i386, x32) kills the process.
struct csb_bpf {
    void *_Nullable filter;  // struct sock_filter[length], malloc'd
    uint16_t length;
};

/// How a compiled program tests the syscall number.
enum csb_seccomp_encoding {
    /// As libseccomp writes it: one test per syscall.
    CSB_SECCOMP_LIBSECCOMP = 0,
    /// libseccomp's decision over the number as a search over ranges of
    /// numbers, its argument tests as it writes them (seccomp_ranges.c).
    CSB_SECCOMP_RANGES = 1,
};

/// Compiles `profile` with libseccomp into `out`, in `encoding` where the
/// program allows it (`used`, may be NULL, says which). On failure returns
/// an errno and writes a message naming the offending rule into `message`.
/// `skipped` (may be NULL) receives the number of syscall names unknown here.
int csb_seccomp_compile(const struct csb_seccomp_profile *_Nonnull profile,
                        enum csb_seccomp_encoding encoding,
                        struct csb_bpf *_Nonnull out,
                        enum csb_seccomp_encoding *_Nullable used,
                        size_t *_Nullable skipped,
                        char *_Nonnull message, size_t message_size);

void csb_bpf_free(struct csb_bpf *_Nonnull bpf);

// MARK: - The mount plan

enum csb_mount_kind {
    CSB_MOUNT_BIND = 1,     // bind `source` at `target`
    CSB_MOUNT_TMPFS = 2,    // fresh tmpfs of `size` bytes, `mode`
    CSB_MOUNT_PROC = 3,     // procfs of the new PID namespace, knobs read-only, host files hidden (proc.c)
    CSB_MOUNT_DEVPTS = 4,   // fresh devpts instance (newinstance, ptmxmode=0666)
    CSB_MOUNT_MQUEUE = 5,   // fresh mqueue for the new IPC namespace
    CSB_MOUNT_DIR = 6,      // mkdir -p `target` with `mode`
    CSB_MOUNT_SYMLINK = 7,  // symlink `target` -> `link`
    CSB_MOUNT_FILE = 8,     // create `target` with `data`[0..<data_length], `mode`
    CSB_MOUNT_MASK = 9,     // hide `target` (a file: `source` (/dev/null) over it; a dir: empty read-only tmpfs)
    CSB_MOUNT_READONLY = 10,// make the mount at `target` read-only (bind it onto itself first)
    CSB_MOUNT_REBIND = 11,  // bind `source`, a path inside the new root, at `target`
};

/// Mount attributes (values of the kernel's MOUNT_ATTR_*).
#define CSB_ATTR_RDONLY 0x00000001u
#define CSB_ATTR_NOSUID 0x00000002u
#define CSB_ATTR_NODEV 0x00000004u
#define CSB_ATTR_NOEXEC 0x00000008u

/// The attributes of the /proc PID 1 makes before its plan arrives (proc.c):
/// a plan's proc mount with these takes it (RootFilesystem's do).
#define CSB_PROC_ATTR 0x0000000Eu // NOSUID | NODEV | NOEXEC (a literal: Swift imports it)

/// Bind flags.
#define CSB_BIND_RECURSIVE 0x1u  // bind the whole subtree (AT_RECURSIVE)
#define CSB_BIND_IDMAP 0x2u      // map the source's owner to the sandbox's root (needs the parent to be root)
#define CSB_BIND_OPTIONAL 0x4u   // a missing or unmountable source is skipped, not an error
/// TMPFS flag: hand the new filesystem's root to the parent (see csb_child.exported_fds).
#define CSB_TMPFS_EXPORT 0x8u
#define CSB_MAX_EXPORTS 4

struct csb_mount {
    uint32_t kind;               // enum csb_mount_kind
    uint32_t flags;              // CSB_BIND_*
    uint32_t attr;               // CSB_ATTR_* applied to the new mount
    uint32_t mode;               // DIR, FILE, TMPFS root mode
    /// BIND, MASK: an absolute, canonical host path. The child opens it in
    /// its own mount namespace with RESOLVE_NO_SYMLINKS, so a symlink placed
    /// anywhere on the path makes the mount fail instead of redirecting it.
    const char *_Nullable source;
    const char *_Nonnull target; // path inside the new root, relative, no "..", "" is the root itself
    const char *_Nullable link;  // SYMLINK: the link's content
    const char *_Nullable data;  // FILE: contents
    size_t data_length;
    uint64_t size;               // TMPFS: size in bytes (0: kernel default)
    /// BIND: directories (relative to the bind) that later mounts need as
    /// mount points. When one is missing from the source, the shim mounts a
    /// read-only overlay of the source under a layer holding them, so the
    /// source itself is never modified.
    const char *_Nonnull const *_Nullable mount_points;
    size_t mount_point_count;
};

// MARK: - Spawning a sandbox

/// Resource numbers of setrlimit(2) (Linux's, the same on every arch we build for).
enum csb_resource {
    CSB_RLIMIT_CPU = 0,
    CSB_RLIMIT_FSIZE = 1,
    CSB_RLIMIT_CORE = 4,
    CSB_RLIMIT_NPROC = 6,
    CSB_RLIMIT_NOFILE = 7,
    CSB_RLIMIT_AS = 9,
};

struct csb_rlimit {
    int32_t resource;  // enum csb_resource
    uint64_t soft;     // RLIM_INFINITY allowed
    uint64_t hard;
};

/// At most this many rlimits come with the placement (csb_spawn_place).
#define CSB_MAX_PLACED_RLIMITS 4

enum csb_network {
    CSB_NET_NONE = 0,      // new netns, lo down
    CSB_NET_LOOPBACK = 1,  // new netns, lo up
    CSB_NET_HOST = 2,      // the host's network namespace
};

struct csb_spawn_config {
    // Identity: the sandbox's uid/gid 0 map to these host ids.
    uint32_t host_uid;
    uint32_t host_gid;

    uint32_t network;               // enum csb_network
    const char *_Nullable hostname; // NULL: keep the default "localhost"

    // Where the child builds the new root (a directory it mounts a tmpfs on,
    // private to its mount namespace), e.g. "/tmp".
    const char *_Nonnull staging_dir;
    const struct csb_mount *_Nullable mounts;
    size_t mount_count;

    // The job process.
    const char *_Nonnull path;                 // absolute, inside the sandbox
    char *_Nullable const *_Nonnull argv;      // NULL-terminated
    char *_Nullable const *_Nonnull envp;      // NULL-terminated
    const char *_Nonnull cwd;                  // inside the sandbox
    int32_t stdout_fd;                         // write ends in the parent; become fd 1 / fd 2
    int32_t stderr_fd;
    const struct csb_rlimit *_Nullable rlimits;
    size_t rlimit_count;
    const struct csb_bpf *_Nonnull seccomp;    // loaded last before execve
    /// A network namespace from `csb_netns_create` for the sandbox to join
    /// instead of creating one (-1: create one). Ignored for CSB_NET_HOST.
    int32_t netns_fd;
};

/// What the clone itself needs (csb_spawn_start): the rest of the
/// configuration may still be in the making.
struct csb_start_config {
    uint32_t network;  // enum csb_network: CSB_NET_HOST keeps the host's namespace
    /// A network namespace from `csb_netns_create` to join (-1: a new one).
    int32_t netns_fd;
    /// cgroup v2: the job's cgroup directory, entered at clone time
    /// (CLONE_INTO_CGROUP), so nothing runs outside it (-1: none).
    int32_t cgroup_fd;
    /// PID 1 as a fork of this process that runs the setup itself, rather
    /// than an exec of this binary (false). Only for a caller that is
    /// single-threaded and small: early.c's constructor, before the Swift
    /// runtime starts, where a fork copies a few page tables and the exec
    /// would run glibc's start again (0.3 ms of CPUID traps on a VM).
    bool fork_init;
};

/// At most this many cgroup files for PID 1 to write itself into, and as
/// many to leave by (csb_spawn_place).
#define CSB_MAX_CGROUP_TASKS 12

/// CPUs a task was kept from and gets back (cpus.c): the mask (a
/// cpu_set_t), and whether the task is held to fewer now.
struct csb_cpu_mask {
    uint64_t bits[16];
    bool held;
};

struct csb_child {
    int32_t pid;       // host pid of the sandbox's PID 1
    int32_t pidfd;     // pidfd of that process (close-on-exec)
    int32_t status_fd; // the socket: go-ahead out; exported roots and the job's wait status in
    int32_t error_fd;  // read end of the error pipe, from start until csb_spawn_wait (else -1)
    int32_t idmap_fallbacks; // CSB_BIND_IDMAP binds that fell back to a plain bind
    /// Roots of the CSB_TMPFS_EXPORT filesystems, in plan order: the parent
    /// reads them after the job (they outlive the sandbox while open).
    int32_t exported_fds[CSB_MAX_EXPORTS];
    int32_t exported_count;
    /// What the child that executes PID 1's init ran on (spawn.c), mapped
    /// until csb_child_close, when PID 1 has executed or is gone.
    void *_Nullable init_region;
    /// The id maps are written (csb_spawn_ahead or csb_spawn_go).
    bool ids_mapped;
    /// The plan went ahead (csb_spawn_ahead).
    bool plan_ahead;
    /// The caller's CPUs, held when PID 1 was started off the caller's own
    /// (cpus.c): PID 1 gets them back with its plan.
    struct csb_cpu_mask start_cpus;
};

/// Makes a network namespace sandboxes can join (`netns_fd`), on a
/// short-lived thread of its own so that no thread of the caller changes
/// namespace. It belongs to the caller's user namespace: a job, root only
/// in its own, can neither bring lo up or down nor change its addresses,
/// routes, firewall or sysctls. lo is brought up when `loopback` is set.
/// Needs CAP_SYS_ADMIN (the runner as root). Returns 0 or an errno.
int csb_netns_create(int loopback, int32_t *_Nonnull out_fd);

/// True when a command line's first argument is not a one-shot run's: a
/// subcommand of the CLI (run, daemon, jobs), help or version. The one
/// list, for early.c's constructor and the CLI's main.
bool csb_reserved_first_argument(const char *_Nonnull argument);

/// The job folder of a one-shot command line as early.c reads it (the one
/// positional argument, wherever it stands; NULL when there is none, more
/// than one, a subcommand, or a `--net` it cannot read), and its network
/// policy. Reads no file.
const char *_Nullable csb_one_shot_folder(int argc, char *_Nonnull const *_Nonnull argv, uint32_t *_Nonnull network);

/// The sandbox a one-shot command line had cloned before the Swift runtime
/// started (early.c), for the first caller that asks with the same network
/// policy: 0 and `child` filled, an errno and `error` filled when that
/// clone failed, -1 when there is none (then clone one: csb_spawn_start).
/// `nanoseconds`: how long the early clone took.
int csb_early_take(uint32_t network, struct csb_child *_Nonnull child, struct csb_error *_Nonnull error,
                   int64_t *_Nonnull nanoseconds);

/// Clones the sandbox's PID 1 into its namespaces; it waits there for
/// csb_spawn_go (or for the socket's EOF: then it exits). Blocks
/// through the clone (the namespaces' creation; the exec of the init goes
/// on in the child after it returns); call it off the async pool.
/// On failure `error` holds the record and nothing is left.
int csb_spawn_start(const struct csb_start_config *_Nonnull start,
                    struct csb_child *_Nonnull child,
                    struct csb_error *_Nonnull error);

/// Sends the plan ahead of the go-ahead: writes the id maps and hands PID 1
/// `config` (its stdout and stderr are not used; the go-ahead's plan must
/// have the same mounts and staging directory). PID 1 opens every mount's
/// source, takes the sandbox's ids and makes the mounts up to the first
/// idmapped bind (which needs the go-ahead's trees) at once, while the
/// caller prepares the rest. At most once, before csb_spawn_go. On failure
/// `error` holds the record and the sandbox is already killed, reaped and
/// closed.
int csb_spawn_ahead(const struct csb_spawn_config *_Nonnull config,
                   struct csb_child *_Nonnull child,
                   struct csb_error *_Nonnull error);

/// Writes the started sandbox's id maps and sends it the go-ahead with the
/// configuration: PID 1 builds the root, then waits for csb_spawn_place.
/// `config`'s network and netns_fd are those given to csb_spawn_start.
/// `as_sent_ahead`: `config` is the plan csb_spawn_ahead sent, unchanged,
/// and the go-ahead carries only its descriptors (PID 1 keeps the plan it
/// read). On failure `error` holds the record and the sandbox is already
/// killed, reaped and closed.
int csb_spawn_go(const struct csb_spawn_config *_Nonnull config,
                 struct csb_child *_Nonnull child,
                 bool as_sent_ahead,
                 struct csb_error *_Nonnull error);

/// Places the job in its cgroup, made while PID 1 built the root: PID 1
/// forks the job, which first writes "0" (itself) to each of `join_fds`
/// (v1 `tasks`; a v2 group's `cgroup.procs`; none when clone3 placed PID 1
/// in the group already) and also sets `rlimits` (those that depend on the
/// cgroup: RLIMIT_AS and RLIMIT_NPROC without one, RLIMIT_CPU). PID 1 stays
/// out of a group the job joined, so the group is empty once PID 1 reaped
/// the job, and can go while PID 1 still exits (csb_report.cgroup_empty).
/// On failure `error` holds the record (the child's own, when it failed
/// first) and the sandbox is already killed, reaped and closed.
int csb_spawn_place(struct csb_child *_Nonnull child, const int32_t *_Nullable join_fds, size_t join_count,
                    const struct csb_rlimit *_Nullable rlimits, size_t rlimit_count,
                    struct csb_error *_Nonnull error);

/// Waits until the job's execve() succeeded (EOF on the error pipe) or a
/// failure record came back, and takes the exported roots. On failure
/// `error` holds the record and the sandbox is already killed, reaped and
/// closed.
int csb_spawn_wait(const struct csb_spawn_config *_Nonnull config,
                   struct csb_child *_Nonnull child,
                   struct csb_error *_Nonnull error);

/// Resource usage of the whole sandbox (PID 1 plus everything it reaped).
struct csb_usage {
    int32_t init_code;       // si_code of PID 1 (CLD_EXITED, CLD_KILLED, ...)
    int32_t init_status;     // exit code or signal of PID 1
    int64_t user_usec;
    int64_t system_usec;
    int64_t max_rss_kb;
};

/// Reaps PID 1 through its pidfd (non-blocking: call once the pidfd is
/// readable). Returns EAGAIN when PID 1 has not exited yet.
int csb_reap(const struct csb_child *_Nonnull child, struct csb_usage *_Nonnull usage);

/// What PID 1 sends on the socket once it reaped the job's main process,
/// just before it exits (and so ends the sandbox).
struct csb_report {
    int32_t wait_status; // the job's raw wait status (WIFEXITED etc.)
    /// 1: no other process was left in the sandbox (every one it ever had
    /// was reaped, so none can still write to the outputs or the pipes).
    int32_t alone;
    // The job's processes that PID 1 reaped (the job and the orphans).
    int64_t user_usec;
    int64_t system_usec;
    int64_t max_rss_kb;
    /// 1: alone, and PID 1 was never in the job's cgroup (the job joined
    /// it): the group is empty, and the caller removes it without waiting
    /// for PID 1's exit (the namespaces' teardown). PID 1 then sleeps
    /// until csb_release_init.
    int32_t cgroup_empty;
};

/// Takes PID 1's report (non-blocking): 0, EAGAIN (none yet) or EPIPE (the
/// socket was closed without one: PID 1 was killed).
int csb_take_report(const struct csb_child *_Nonnull child, struct csb_report *_Nonnull report);

/// After a report that said cgroup_empty: PID 1 sleeps until its parent
/// lets go, and this lets go (shuts the parent's end of the socket down;
/// the parent's exit does the same). PID 1 then exits. 0 or an errno.
int csb_release_init(const struct csb_child *_Nonnull child);

/// Sends `signal` to the sandbox's PID 1 through its pidfd. SIGKILL ends the
/// whole PID namespace; SIGTERM/SIGINT/SIGHUP are forwarded to the job.
int csb_signal(const struct csb_child *_Nonnull child, int signal);

/// Kills the sandbox's PID 1 (through its pidfd, else by pid) and waits for
/// it, blocking. For a supervisor that can no longer trust its poll loop.
void csb_child_kill_and_reap(const struct csb_child *_Nonnull child);

/// Closes the child's descriptors (after csb_reap, or csb_child_kill_and_reap
/// for one that was started but not finished), exported roots included.
void csb_child_close(struct csb_child *_Nonnull child);

/// Moves up to `length` bytes from a non-blocking pipe into a file at its
/// offset without copying through user space (splice). -1 with errno on
/// failure (EAGAIN: the pipe is empty; EINVAL: the file cannot be spliced to).
ssize_t csb_splice_to_file(int pipe_fd, int file_fd, size_t length);

/// Moves up to `length` bytes from one pipe to another (page references,
/// no copy), without blocking on either. -1 with errno on failure (EAGAIN:
/// `from` is empty or `to` is full).
ssize_t csb_splice_pipes(int from_fd, int to_fd, size_t length);

/// A close-on-exec pipe for one output stream: the read end non-blocking
/// (the parent polls it), the write end blocking (the job writes it), its
/// capacity raised to 1 MiB where allowed. Returns 0 or an errno.
int csb_capture_pipe(int *_Nonnull read_end, int *_Nonnull write_end);

/// A close-on-exec, non-blocking eventfd (to wake a poll loop), or -1.
int csb_eventfd(void);

// MARK: - The process's end

/// Ends the process with `status` (as _exit), its stdio flushed first,
/// without making whoever waits for it also wait for the teardown of its
/// address space: a helper process that shares the memory and the
/// descriptor table holds the memory until this process has exited, then
/// exits itself, and the kernel unmaps it there. Before the exit every
/// descriptor is closed (a pipe to the caller sees EOF with the exit; the
/// helper keeps only a pidfd of this process), every signal is blocked in
/// the helper, and it gives up after 10 s whatever happens. Where a step
/// fails (no pidfd_open, no clone3, no memory), a plain _exit.
_Noreturn void csb_exit_process(int status);

/// Starts csb_exit_process's helper now, off the way from the job's end to
/// the exit (its clone took ~40 µs there): it waits, every signal
/// blocked, for as long as this process lives, and exits after it. For a
/// process that will end with csb_exit_process. 0, or the errno (the exit
/// then starts its helper itself); ENOSYS where the exit has none.
int csb_exit_prepare(void);

/// How many descriptors csb_exit_close_later takes.
#define CSB_EXIT_CLOSE_LATER_MAX 16

/// Leaves `fd` open through csb_exit_process, to the helper, which closes
/// it with its own exit, once the process has exited. For a file whose
/// freeing may come after the caller was told: one this process unlinked
/// while holding it open is freed at that close (its pages, blocks and
/// inode), not in the unlink. 0, EBADF (a negative fd) or ENOSPC (the
/// table is full: close it now). Where no helper starts, _exit closes it.
int csb_exit_close_later(int fd);

// MARK: - GNU and Linux calls Swift's Glibc module does not export

/// pipe2(2): `ends` gets the read and write ends, created atomically with
/// `flags` (O_CLOEXEC, O_NONBLOCK). Returns 0 or an errno.
int csb_pipe(int *_Nonnull ends, int flags);

#define CSB_RENAME_NOREPLACE 1u // fail with EEXIST instead of replacing
#define CSB_RENAME_EXCHANGE 2u  // swap the two names atomically
#define CSB_SEEK_DATA 3         // lseek(2): next data at or after the offset
#define CSB_SEEK_HOLE 4         // lseek(2): next hole at or after the offset
#define CSB_O_PATH 010000000    // open(2): a descriptor for the path only, no access to the file

/// renameat2(2): 0, or -1 with errno.
int csb_renameat2(int old_dir, const char *_Nonnull old_name, int new_dir, const char *_Nonnull new_name,
                  unsigned flags);

/// copy_file_range(2) without flags: bytes copied, or -1 with errno.
ssize_t csb_copy_file_range(int in_fd, int64_t *_Nullable in_offset, int out_fd, int64_t *_Nullable out_offset,
                            size_t length);

/// openat2(2) of `path` below the directory `dirfd` with every link
/// refused: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
/// RESOLVE_NO_XDEV, so no "..", absolute path, symlink or mount crossing
/// can lead out of it. A descriptor, or -1 with errno (EXDEV, ELOOP, …).
int csb_open_beneath(int dirfd, const char *_Nonnull path, int flags);

/// statfs(2)'s f_type of the filesystem holding `path` (TMPFS_MAGIC
/// 0x01021994, ...). Returns 0 or an errno.
int csb_filesystem_type(const char *_Nonnull path, uint64_t *_Nonnull type);

/// Names the calling thread (at most 15 bytes are kept), as ps, perf and
/// /proc/PID/task show it.
void csb_name_thread(const char *_Nonnull name);

/// Initializes `attr` for a thread that starts on the calling thread's CPU
/// only (when the caller may use others), the caller's mask in `caller`
/// for csb_thread_release_cpu. 0 or an errno (then `attr` is not initialized).
int csb_thread_attr_on_this_cpu(pthread_attr_t *_Nonnull attr, struct csb_cpu_mask *_Nonnull caller);

/// The calling thread, held by csb_thread_attr_on_this_cpu, may run
/// wherever its creator could again. 0 or an errno.
int csb_thread_release_cpu(struct csb_cpu_mask *_Nonnull mask);

/// Before waking thread `tid` (asleep, waiting for what the calling thread
/// hands it): lets it run anywhere its mask allows but on the calling
/// thread's CPU, its mask kept in `saved` for csb_cpus_steered_back, so the
/// two go on side by side instead of the woken one preempting the waker.
/// Nothing is changed (and `saved` is not held) when `tid` may use only
/// this CPU. 0 or an errno.
int csb_cpus_steer_away(int32_t tid, struct csb_cpu_mask *_Nonnull saved);

/// The calling thread's id (gettid(2)), for csb_cpus_steer_away.
int32_t csb_thread_id(void);

/// The calling thread, steered by csb_cpus_steer_away, gets its mask back.
/// 0 or an errno.
int csb_cpus_steered_back(struct csb_cpu_mask *_Nonnull saved);

/// Name of an errno value ("ENOENT"), or NULL when unknown.
const char *_Nullable csb_errno_name(int error);

#ifdef __cplusplus
}
#endif
#endif
