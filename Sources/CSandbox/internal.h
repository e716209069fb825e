// internal.h — declarations shared by the shim's files, not part of the API.
//
// Everything named csb_child_* / csb_job_* runs between clone() and execve()
// in a copy of a multithreaded process: only async-signal-safe code there
// (raw syscalls, no malloc, no stdio, no locks), with buffers on the stack.
#ifndef CSANDBOX_INTERNAL_H
#define CSANDBOX_INTERNAL_H

#include "csandbox.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/capability.h>

#define CSB_MAX_IDMAPPED 16
/// The go-ahead's descriptors: the plan, stdout, stderr, the idmapped trees.
#define CSB_MAX_GO_AHEAD_FDS (3 + CSB_MAX_IDMAPPED)
#define CSB_MAX_MOUNTS 256
#define CSB_PATH_MAX 4096

/// What the child knows: the caller's configuration plus the descriptors and
/// state the parent prepared before clone().
struct csb_child_ctx;

/// A set of masks (mask.c): the first of each kind, attached, is cloned
/// for the others.
struct csb_masks {
    int source_fd;      // what hides a file (/dev/null, O_PATH); not owned
    int file_mask;      // the first file mask, attached (-1: none yet)
    int directory_mask; // the first directory mask (a read-only empty tmpfs), attached
};

/// The new root's assembly under <staging>/root (mount.c). Its descriptors
/// and counts stay from one part of the plan to the next, until the pivot.
struct csb_assembly {
    struct csb_child_ctx *_Nullable ctx;
    bool begun;       // the staging and root tmpfs are mounted, the descriptors open
    size_t index;     // of the operation being run
    size_t made;      // the plan's mounts made so far
    size_t limit;     // where the current part ends (0: the plan's end)
    int staging_fd;   // <staging>
    int root_fd;      // <staging>/root, reopened after a mount on the root itself
    int layers_fd;    // <staging>/.layers
    unsigned layer_count;
    unsigned idmapped_used;
    // The last parent folder a target was made in, open beneath the root
    // (-1: none): the next target in the same folder (/etc/*, /dev/*)
    // skips the walk. Forgotten when a mount lands on it or above it.
    int parent_fd;
    char parent_path[CSB_PATH_MAX];
    // The plan's masks (mask.c), from the first one on.
    bool masks_begun;
    struct csb_masks masks;
};

struct csb_child_ctx {
    /// The configuration: in the child, from the go-ahead on (NULL before).
    const struct csb_spawn_config *_Nullable config;
    int error_fd;       // write end of the error pipe (close-on-exec)
    int sync_fd;        // the child's end of the parent/child socket
    cap_t _Nonnull empty_caps; // prepared by the parent: libcap allocates
    int cap_last;       // highest capability number the kernel knows (parent side: the ambient raise)
    bool parent_is_root;
    /// The namespaces PID 1 makes itself, first thing (unshare): mount,
    /// IPC, UTS and, unless joined or the host's, network. The clone makes
    /// only the user, PID and cgroup ones, so the kernel's work for the
    /// others (0.4 ms, most of it the network namespace) runs in PID 1's
    /// address space: in the parent's, every copy-on-write fault of the
    /// parent's other threads meanwhile waits for a TLB-shootdown IPI to
    /// the CPU doing it.
    uint64_t unshare_flags;
    /// PID 1 is a fork of the parent (csb_start_config.fork_init): it
    /// holds a copy of the parent's memory, which it scrubs (forget_parent).
    bool forked_init;
    // Idmapped trees received from the parent, indexed by CSB_BIND_IDMAP bind order.
    int idmapped_fds[CSB_MAX_IDMAPPED];
    // O_PATH fds of the mount sources, by plan index, opened while the
    // child still has the caller's host uid (so it can traverse the
    // caller's private directories); -errno when the open failed.
    int source_fds[CSB_MAX_MOUNTS];
    // From the placement (csb_spawn_place): the cgroup files the job
    // writes itself into (PID 1 stays out: job_joins_cgroup), and the
    // job's rlimits that depend on its cgroup.
    int cgroup_join_fds[CSB_MAX_CGROUP_TASKS];
    size_t cgroup_join_count;
    bool job_joins_cgroup;
    struct csb_rlimit placed_rlimits[CSB_MAX_PLACED_RLIMITS];
    // The bounding set is empty and the securebits locked (inherited by the job).
    bool bounding_set_dropped;
    // From the plan: the caller's CPUs, which PID 1 takes back once it runs (cpus.c).
    struct csb_cpu_mask restore_cpus;
    size_t placed_rlimit_count;
    // The plan's mounts whose sources are open (csb_child_open_sources),
    // and the root's assembly: both may come in two parts (the plan sent
    // ahead, 'A', then the go-ahead).
    size_t mounts_opened;
    struct csb_assembly assembly;
    // After 'A': its plan, whose mounts the go-ahead's must be (`config`
    // too, until the go-ahead came).
    const struct csb_spawn_config *_Nullable ahead_config;
    sigset_t ahead_mask; // the signal mask 'A' carried, for an 'R' go-ahead
    bool go_received;
    bool became_root; // csb_child_become_root ran (ahead, or after the go-ahead)
    // The mount tree is private (nothing propagates to the host): done
    // before the plan (csb_child_prepare_proc), else by the root's assembly.
    bool mounts_private;
    // The sandbox's /proc, made before the plan (proc.c): on PID 1's own
    // /proc until the plan's proc mount moves it into the new root.
    bool proc_prepared;
    int prepared_proc_fd;
    // Roots of CSB_TMPFS_EXPORT filesystems, sent to the parent before exec.
    int exported_fds[CSB_MAX_EXPORTS];
    int exported_count;
    // What failed, filled by the step that failed.
    char message[CSB_ERROR_MESSAGE_MAX];
};

// message.c — building messages without stdio.
void csb_msg(char *_Nonnull buffer, size_t size, const char *_Nullable first, ...);
size_t csb_format_u64(char *_Nonnull buffer, size_t size, uint64_t value, unsigned base);
_Noreturn void csb_child_fail(struct csb_child_ctx *_Nonnull ctx, int stage, int error);

// user.c
int csb_write_id_maps(pid_t pid, uint32_t host_uid, uint32_t host_gid, bool deny_setgroups,
                      char *_Nonnull message, size_t message_size);
int csb_make_idmapped_tree(const char *_Nonnull source, int userns_fd, uint32_t attr, bool recursive,
                           int *_Nonnull tree_fd);
int csb_child_become_root(struct csb_child_ctx *_Nonnull ctx);

// mount.c
int csb_child_open_sources(struct csb_child_ctx *_Nonnull ctx);
int csb_child_assemble_root(struct csb_child_ctx *_Nonnull ctx);
int csb_child_pivot_root(struct csb_child_ctx *_Nonnull ctx);
int csb_mount_open_dirs(int dirfd, const char *_Nonnull path, mode_t mode, int *_Nonnull out);
int csb_mount_open_target(struct csb_assembly *_Nonnull a, const char *_Nonnull target, bool directory,
                          int *_Nonnull out);
int csb_mount_make_target(int parent_fd, const char *_Nonnull name, bool directory, int *_Nonnull out);
int csb_mount_attach(int tree_fd, int target_fd);
bool csb_mount_is_directory(int dir_fd, const char *_Nonnull path);

// mask.c — hiding paths inside a mount, and making them read-only.
void csb_masks_init(struct csb_masks *_Nonnull masks, int source_fd);
void csb_masks_close(struct csb_masks *_Nonnull masks);
/// Hides `path` beneath `dir_fd` (a missing path is fine). 0 or an errno.
int csb_mask(int dir_fd, const char *_Nonnull path, struct csb_masks *_Nonnull masks);
/// Makes `path` beneath `dir_fd` a read-only mount of its own, submounts
/// included, with `attr` too (a missing path is fine). 0 or an errno.
int csb_make_read_only(int dir_fd, const char *_Nonnull path, uint32_t attr);

// proc.c — the sandbox's /proc, knobs read-only and the host's files hidden.
/// Before the plan, best effort (returns 0): the mount tree made private,
/// then the sandbox's /proc made on PID 1's own.
int csb_child_prepare_proc(struct csb_child_ctx *_Nonnull ctx);
/// The sandbox's /proc with `attr` on `target_fd`: the one made before the
/// plan, moved, when it has those attributes, else a fresh one. 0 or an
/// errno (with ctx->message).
int csb_proc_attach(struct csb_child_ctx *_Nonnull ctx, int target_fd, uint32_t attr);
/// Closes the one made before the plan if no mount took it (at the pivot).
void csb_proc_forget_prepared(struct csb_child_ctx *_Nonnull ctx);

// mount_spread.c
int csb_mount_spread(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m, int tree_fd,
                     bool recursive, bool *_Nonnull done);

// net.c
int csb_child_configure_network(struct csb_child_ctx *_Nonnull ctx);

// limits.c
int csb_job_set_rlimits(struct csb_child_ctx *_Nonnull ctx);

// caps.c
/// Locks the securebits and empties the bounding set: no later execve can
/// grant a capability. The process keeps its effective ones (PID 1 does
/// this before its plan arrives, while it would wait anyway).
int csb_limit_capabilities(struct csb_child_ctx *_Nonnull ctx);
int csb_drop_capabilities(struct csb_child_ctx *_Nonnull ctx);
/// The kernel's highest capability number, probed once (not libcap's
/// cap_max_bits: libcap fills that in a constructor of default priority,
/// after early.c's has started a clone).
int csb_last_capability(void);

// seccomp_load.c
int csb_job_set_no_new_privs(struct csb_child_ctx *_Nonnull ctx);
int csb_job_load_seccomp(struct csb_child_ctx *_Nonnull ctx);

// seccomp_ranges.c
/// Rewrites `full` (libseccomp's program for a profile) as a search over
/// ranges of syscall numbers for `native_arch`, jumping to `arguments`
/// (libseccomp's program for the rules of `argument_numbers` alone) for
/// those numbers and for every other architecture. 0, ENOMEM, or ENOTSUP
/// when `full` has a shape this does not follow or the result is not shorter.
int csb_seccomp_ranges(const struct csb_bpf *_Nonnull full, uint32_t native_arch,
                       const struct csb_bpf *_Nonnull arguments, const uint32_t *_Nullable argument_numbers,
                       size_t argument_number_count, struct csb_bpf *_Nonnull out);
/// True when `number` is one of `numbers[0..<count]`.
bool csb_seccomp_listed(uint32_t number, const uint32_t *_Nullable numbers, size_t count);

// cpus.c — PID 1, just cloned, moved off the calling thread's CPU (best
// effort); the caller's affinity handed over with the plan, which PID 1
// takes back once it runs.
void csb_cpus_start_elsewhere(struct csb_child *_Nonnull child);
void csb_cpus_hand_over(struct csb_child *_Nonnull child, struct csb_cpu_mask *_Nonnull out);
void csb_cpus_take_back(struct csb_cpu_mask *_Nonnull cpus);

// plan.c — the configuration, sent to the started sandbox.
int csb_plan_write(const struct csb_spawn_config *_Nonnull config, bool parent_is_root,
                   const sigset_t *_Nonnull signal_mask, const struct csb_cpu_mask *_Nonnull cpus,
                   int *_Nonnull plan_fd);
int csb_plan_read(int plan_fd, struct csb_child_ctx *_Nonnull ctx, sigset_t *_Nonnull signal_mask);
// init.c
_Noreturn void csb_init_run(struct csb_child_ctx *_Nonnull ctx, pid_t job);

// fds.c
int csb_close_fds_except(const int *_Nonnull keep, size_t count);
int csb_close_fds_from_except(unsigned first, const int *_Nonnull keep, size_t count);

// socket.c — messages with descriptors (SCM_RIGHTS) on the parent/child socket.
// The most of the go-ahead and of the placement (join and leave files).
#define CSB_MAX_MESSAGE_FDS \
    (CSB_MAX_GO_AHEAD_FDS > 2 * CSB_MAX_CGROUP_TASKS ? CSB_MAX_GO_AHEAD_FDS : 2 * CSB_MAX_CGROUP_TASKS)
/// One message of `length` bytes and `count` descriptors. 0 or an errno.
int csb_send_with_fds(int socket, const void *_Nonnull bytes, size_t length, const int *_Nullable fds,
                      size_t count);
/// One message: its byte count (0: EOF; -1 with errno), up to `capacity`
/// descriptors in `fds` (close-on-exec; more are closed), `truncated` when
/// bytes or descriptors were cut.
ssize_t csb_recv_with_fds(int socket, void *_Nonnull bytes, size_t length, int flags, int *_Nonnull fds,
                          size_t capacity, size_t *_Nonnull count, bool *_Nonnull truncated);

// syscalls.c — thin wrappers for syscalls glibc 2.36 does not wrap.
int csb_openat2(int dirfd, const char *_Nonnull path, int flags, uint64_t resolve);
pid_t csb_clone_raw(uint64_t flags, int *_Nullable pidfd, int cgroup_fd);
#if defined(__x86_64__)
/// A system call issued without glibc: returns its result or -errno and
/// writes no errno. For code in a process that shares the caller's memory
/// next to the caller's running threads, and with it their TLS, where
/// errno lives (exit.c's helper, the child that executes the init).
static inline long csb_raw_syscall(long number, long a, long b, long c, long d, long e) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    long result = number;
    __asm__ volatile("syscall" : "+a"(result) : "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
    return result;
}

/// Sandboxes start by executing this binary again as their init (see spawn.c).
#define CSB_EXEC_INIT 1
pid_t csb_clone_vm(uint64_t flags, int *_Nullable pidfd, int cgroup_fd, void *_Nonnull stack, size_t stack_size,
                   int (*_Nonnull fn)(void *_Nonnull), void *_Nonnull arg);
pid_t csb_clone_sharing(void *_Nonnull stack, size_t stack_size, int (*_Nonnull fn)(void *_Nonnull),
                        void *_Nonnull arg);
#endif
pid_t csb_fork_raw(void);
int csb_pidfd_send_signal(int pidfd, int signal);

#endif
