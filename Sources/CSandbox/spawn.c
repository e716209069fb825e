// spawn.c — cloning the sandbox and the order of its setup.
//
// Two phases, so a caller can make the namespaces while it still prepares
// the job (the one-shot CLI parses options and opens the results folder
// meanwhile):
// Start:   pipes -> clone3 into the namespaces (v2: into the job's cgroup),
//          a child that shares the parent's memory only to execute this
//          binary again as the sandbox's init, while the parent goes on
//          (x86-64; elsewhere a fork-like clone). The init knows only its
//          error pipe and socket.
// Go:      write the id maps -> make idmapped trees -> send the go-ahead,
//          which carries the plan (plan.c), stdout, stderr and the trees.
// Place:   while PID 1 builds the root, the caller makes the job's cgroup
//          (v1) and sends the files PID 1 writes itself into.
// Wait:    EOF on the error pipe (exec succeeded) or a failure record ->
//          take the exported roots.
// Child:   the flat list in child_main(), from the go-ahead on; it becomes
//          PID 1 and forks the job, which runs the flat list in job_main()
//          and execs.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

// MARK: - Child side

#define STEP(ctx, stage, call)                                   \
    do {                                                         \
        int step_error_ = (call);                                \
        if (step_error_ != 0) csb_child_fail(ctx, stage, step_error_); \
    } while (0)

/// Closes everything but the error pipe and the socket: another sandbox's
/// pipes may have been inherited through a concurrent clone. (What else
/// the sandbox needs arrives with the go-ahead.)
static int keep_own_descriptors(struct csb_child_ctx *_Nonnull ctx) {
    int keep[] = {ctx->error_fd, ctx->sync_fd};
    int error = csb_close_fds_except(keep, sizeof keep / sizeof keep[0]);
    if (error != 0) csb_msg(ctx->message, sizeof ctx->message, "close inherited descriptors", NULL);
    return error;
}

/// Makes the namespaces the clone left to PID 1 (ctx->unshare_flags).
static int make_namespaces(struct csb_child_ctx *_Nonnull ctx) {
    if (ctx->unshare_flags == 0 || unshare((int)ctx->unshare_flags) == 0) return 0;
    csb_msg(ctx->message, sizeof ctx->message, "make the sandbox's mount, IPC, UTS and network namespaces", NULL);
    return errno;
}

/// A forked PID 1 (ctx->forked_init) holds a copy of the parent's memory
/// as it was at the fork: before the runtime started, but with the command
/// line and the environment, which may hold the caller's secrets. Zeroes
/// its copy of both (arg_start to env_end, from /proc/self/stat: back to
/// back at the top of the stack), so that not even PID 1's memory has them.
static int forget_parent(struct csb_child_ctx *_Nonnull ctx) {
    if (!ctx->forked_init) return 0;
    char text[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
    int error = n < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    if (n <= 0) {
        csb_msg(ctx->message, sizeof ctx->message, "read /proc/self/stat to forget the caller's environment", NULL);
        return n < 0 ? error : EIO;
    }
    text[n] = '\0';
    // The last five fields: arg_start arg_end env_start env_end exit_code.
    uint64_t fields[5] = {0};
    int found = 0;
    for (char *p = text + n; p > text && found < 5;) {
        while (p > text && (p[-1] == ' ' || p[-1] == '\n')) *--p = '\0';
        char *start = p;
        while (start > text && start[-1] != ' ') start--;
        uint64_t value = 0;
        for (char *digit = start; *digit >= '0' && *digit <= '9'; digit++) value = value * 10 + (uint64_t)(*digit - '0');
        fields[4 - found++] = value;
        p = start;
    }
    uint64_t begin = fields[0], end = fields[3];
    if (found < 5 || begin == 0 || end <= begin || end - begin > 64 * 1024 * 1024) {
        csb_msg(ctx->message, sizeof ctx->message, "find the caller's environment in /proc/self/stat", NULL);
        return EPROTO;
    }
    memset((void *)(uintptr_t)begin, 0, end - begin);
    return 0;
}

/// Every signal's disposition the default, as a fresh process has them:
/// ignored signals stay ignored across fork and exec, and the caller may
/// ignore SIGPIPE (the Swift runtime does). PID 1 catches none (it reads
/// the forwarded ones from a signalfd), so the job, its child, inherits
/// them: done here while the go-ahead is on its way, rather than one
/// sigaction per signal on the job's way to exec.
static int default_dispositions(struct csb_child_ctx *_Nonnull ctx) {
    // The kernel's struct sigaction, through the raw call: glibc's
    // sigaction refuses its own two real-time signals (32, 33), which a
    // caller may ignore too.
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } default_action = {.handler = SIG_DFL, .flags = 0, .restorer = NULL, .mask = 0};
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (syscall(SYS_rt_sigaction, sig, &default_action, NULL, sizeof default_action.mask) != 0) {
            csb_msg(ctx->message, sizeof ctx->message, "reset the signal dispositions", NULL);
            return errno;
        }
    }
    return 0;
}

/// Once the parent has written the id maps and opened what it needed of
/// /proc/PID: a forked PID 1 becomes non-dumpable, so that nothing in the
/// sandbox (whose mm belongs to the parent's user namespace) can read or
/// trace it. An exec'd init has nothing of the parent's.
static int stay_private(struct csb_child_ctx *_Nonnull ctx) {
    if (!ctx->forked_init || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0) return 0;
    csb_msg(ctx->message, sizeof ctx->message, "make PID 1 non-dumpable", NULL);
    return errno;
}

/// Closes the descriptors of a go-ahead that cannot be used.
static void close_all(const int *_Nonnull fds, size_t count) {
    for (size_t i = 0; i < count; i++) close(fds[i]);
}

/// Waits for the parent's message with a plan: 'A', the plan sent ahead
/// (csb_spawn_ahead: the plan alone, whose mounts the go-ahead's will
/// be), or the go-ahead, after which the id maps are written: 'G', which
/// carries the plan (a memfd), stdout, stderr and the idmapped trees (if
/// any), in that order, as SCM_RIGHTS; or, after 'A', 'R', the same
/// without the plan: the one sent ahead stands. Rebuilds the configuration
/// from the plan; the go-ahead restores the signal mask.
static int receive_plan(struct csb_child_ctx *_Nonnull ctx, bool ahead_allowed) {
    uint8_t present[CSB_MAX_IDMAPPED + 1] = {0};
    int received[CSB_MAX_GO_AHEAD_FDS];
    size_t count;
    bool truncated;
    ssize_t n = csb_recv_with_fds(ctx->sync_fd, present, sizeof present, 0, received, CSB_MAX_GO_AHEAD_FDS, &count,
                                  &truncated);
    if (n == 0) _exit(1); // the parent is gone: nobody to report to
    bool ahead = n >= 1 && present[0] == 'A' && ahead_allowed;
    bool reused = n >= 1 && present[0] == 'R' && !ahead_allowed && ctx->ahead_config != NULL;
    size_t plans = reused ? 0 : 1; // the memfd, first
    if (n < 1 || (present[0] != 'G' && !ahead && !reused) || truncated || count < (ahead ? 1u : plans + 2)) {
        close_all(received, count);
        csb_msg(ctx->message, sizeof ctx->message, "receive the parent's go-ahead", NULL);
        return n < 0 ? errno : EPROTO;
    }
    sigset_t mask = ctx->ahead_mask;
    if (!reused) {
        int error = csb_plan_read(received[0], ctx, &mask);
        close(received[0]);
        // The plan is a private, writable mapping: the descriptors' numbers
        // are this process's now.
        if (error != 0) {
            close_all(received + 1, count - 1);
            csb_msg(ctx->message, sizeof ctx->message, "read the sandbox's plan", NULL);
            return error;
        }
    }
    if (ahead) {
        close_all(received + 1, count - 1);
        ctx->ahead_config = ctx->config;
        ctx->ahead_mask = mask;
        return 0;
    }
    struct csb_spawn_config *config = (struct csb_spawn_config *)ctx->config;
    config->stdout_fd = received[plans];
    config->stderr_fd = received[plans + 1];
    size_t next = plans + 2;
    for (size_t i = 0; i < CSB_MAX_IDMAPPED; i++)
        ctx->idmapped_fds[i] = i + 1 < (size_t)n && present[i + 1] && next < count ? received[next++] : -1;
    ctx->go_received = true;
    sigprocmask(SIG_SETMASK, &mask, NULL);
    return 0;
}

static int wait_for_parent(struct csb_child_ctx *_Nonnull ctx) {
    return receive_plan(ctx, true);
}

/// Once a plan has woken it, PID 1 may run on any of its caller's CPUs
/// again (cpus.c), as will the job, which inherits them. Best effort.
static int run_anywhere(struct csb_child_ctx *_Nonnull ctx) {
    csb_cpus_take_back(&ctx->restore_cpus);
    return 0;
}

/// True between the plan sent ahead and the go-ahead.
static bool plan_ahead(const struct csb_child_ctx *_Nonnull ctx) {
    return ctx->ahead_config != NULL && !ctx->go_received;
}

/// After the plan sent ahead, while the go-ahead is on its way: every
/// mount's source opened (with the caller's ids, and before the staging
/// tmpfs may hide one), the sandbox's ids taken, and the mounts made up to
/// the first idmapped bind (which needs the go-ahead's trees).
static int assemble_ahead(struct csb_child_ctx *_Nonnull ctx) {
    if (!plan_ahead(ctx)) return 0;
    int error = csb_child_open_sources(ctx);
    if (error != 0) return error;
    error = csb_child_become_root(ctx);
    if (error != 0) csb_child_fail(ctx, CSB_STAGE_ID_MAP, error);
    const struct csb_spawn_config *config = ctx->config;
    size_t limit = 0;
    while (limit < config->mount_count && (config->mounts[limit].flags & CSB_BIND_IDMAP) == 0) limit++;
    if (limit == 0) return 0;
    ctx->assembly.limit = limit;
    error = csb_child_assemble_root(ctx);
    ctx->assembly.limit = 0;
    return error;
}

static bool same_text(const char *_Nullable a, const char *_Nullable b) {
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/// True when `plan`'s mounts (and staging directory) are `ahead`'s, field by field.
static bool same_mounts(const struct csb_spawn_config *_Nonnull plan, const struct csb_spawn_config *_Nonnull ahead) {
    if (plan->mount_count != ahead->mount_count || strcmp(plan->staging_dir, ahead->staging_dir) != 0) return false;
    for (size_t i = 0; i < ahead->mount_count; i++) {
        const struct csb_mount *m = &plan->mounts[i], *r = &ahead->mounts[i];
        if (m->kind != r->kind || m->flags != r->flags || m->attr != r->attr || m->mode != r->mode ||
            m->size != r->size || m->data_length != r->data_length || m->mount_point_count != r->mount_point_count ||
            !same_text(m->source, r->source) || !same_text(m->target, r->target) || !same_text(m->link, r->link) ||
            (m->data_length > 0 && memcmp(m->data, r->data, m->data_length) != 0))
            return false;
        for (size_t p = 0; p < r->mount_point_count; p++)
            if (!same_text(m->mount_points[p], r->mount_points[p])) return false;
    }
    return true;
}

/// After the plan sent ahead: the go-ahead, whose plan must have the same
/// mounts (some made already, and not again).
static int wait_for_go(struct csb_child_ctx *_Nonnull ctx) {
    if (!plan_ahead(ctx)) return 0;
    int error = receive_plan(ctx, false);
    if (error != 0) return error;
    if (!same_mounts(ctx->config, ctx->ahead_config)) {
        csb_msg(ctx->message, sizeof ctx->message, "use the go-ahead: its mounts are not those of the plan sent ahead",
                NULL);
        return EPROTO;
    }
    return 0;
}

/// Hands the roots of the exported filesystems (the outputs tmpfs) to the
/// parent, which reads them after the job. One message, before the job
/// exists; the parent takes it once exec succeeded.
static int send_exports(struct csb_child_ctx *_Nonnull ctx) {
    if (ctx->exported_count == 0) return 0;
    uint8_t tag = 'X';
    int error = csb_send_with_fds(ctx->sync_fd, &tag, 1, ctx->exported_fds, (size_t)ctx->exported_count);
    if (error != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "send the outputs filesystem to the parent", NULL);
        return error;
    }
    for (int i = 0; i < ctx->exported_count; i++) close(ctx->exported_fds[i]);
    return 0;
}

/// The placement's bytes: a tag, how many descriptors (join files) come
/// with it, then the rlimits that depend on the cgroup.
struct placement {
    uint8_t tag; // 'C'
    uint8_t join_count;
    uint8_t rlimit_count;
    struct csb_rlimit rlimits[CSB_MAX_PLACED_RLIMITS];
};

/// Waits for the parent's placement (csb_spawn_place): the files of the
/// job's cgroup the job writes itself into, and the rlimits that depend
/// on the group.
static int wait_for_placement(struct csb_child_ctx *_Nonnull ctx) {
    struct placement placed;
    memset(&placed, 0, sizeof placed);
    int fds[CSB_MAX_CGROUP_TASKS];
    size_t count = 0;
    bool truncated;
    ssize_t n = csb_recv_with_fds(ctx->sync_fd, &placed, sizeof placed, 0, fds, CSB_MAX_CGROUP_TASKS, &count,
                                  &truncated);
    if (n == 0) _exit(1); // the parent is gone: nobody to report to
    if (n != (ssize_t)sizeof placed || placed.tag != 'C' || placed.rlimit_count > CSB_MAX_PLACED_RLIMITS ||
        truncated || placed.join_count != count) {
        for (size_t i = 0; i < count; i++) close(fds[i]);
        csb_msg(ctx->message, sizeof ctx->message, "receive the parent's cgroup placement", NULL);
        return n < 0 ? errno : EPROTO;
    }
    ctx->cgroup_join_count = count;
    memcpy(ctx->cgroup_join_fds, fds, sizeof fds[0] * count);
    ctx->job_joins_cgroup = count > 0;
    memcpy(ctx->placed_rlimits, placed.rlimits, sizeof placed.rlimits);
    ctx->placed_rlimit_count = placed.rlimit_count;
    return 0;
}

/// The job, first thing, moves itself into its cgroup: "0" to each file
/// the parent opened (v1 `tasks`: one thread, itself, and no global lock,
/// where the parent writing a pid to `cgroup.procs` waits for an RCU grace
/// period, ~10 ms). Nothing of the job's own runs before. PID 1 stays
/// out: once it reaped the job the group is empty, and the parent removes
/// it without waiting for PID 1's exit (the namespaces' teardown).
static int join_cgroups(struct csb_child_ctx *_Nonnull ctx) {
    for (size_t i = 0; i < ctx->cgroup_join_count; i++) {
        ssize_t written;
        do {
            written = write(ctx->cgroup_join_fds[i], "0", 1);
        } while (written < 0 && errno == EINTR);
        if (written != 1) {
            csb_msg(ctx->message, sizeof ctx->message, "move the job into its cgroup", NULL);
            return written < 0 ? errno : EIO;
        }
        close(ctx->cgroup_join_fds[i]);
    }
    ctx->cgroup_join_count = 0;
    return 0;
}

static int set_hostname(struct csb_child_ctx *_Nonnull ctx) {
    const char *name = ctx->config->hostname;
    if (name == NULL) return 0;
    if (sethostname(name, strlen(name)) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "set the hostname to ", name, NULL);
        return errno;
    }
    return 0;
}

/// The job's stdio: stdin is /dev/null (inside the new root), stdout and
/// stderr the parent's pipes; every other descriptor is closed (the error
/// pipe stays until execve, which closes it: that EOF is the success signal).
static int job_stdio(struct csb_child_ctx *_Nonnull ctx) {
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        csb_msg(ctx->message, sizeof ctx->message, "open /dev/null for stdin", NULL);
        return errno;
    }
    if (dup2(null_fd, 0) < 0 || dup2(ctx->config->stdout_fd, 1) < 0 || dup2(ctx->config->stderr_fd, 2) < 0) {
        csb_msg(ctx->message, sizeof ctx->message, "set up stdin, stdout and stderr", NULL);
        return errno;
    }
    int keep[] = {ctx->error_fd};
    int error = csb_close_fds_except(keep, 1);
    if (error != 0) csb_msg(ctx->message, sizeof ctx->message, "close every descriptor but 0, 1, 2", NULL);
    return error;
}

/// New session (no controlling terminal: nothing to TIOCSTI into) and
/// death with PID 1, whose only thread is the job's parent.
static int job_session(struct csb_child_ctx *_Nonnull ctx) {
    if (setsid() < 0) {
        csb_msg(ctx->message, sizeof ctx->message, "setsid", NULL);
        return errno;
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "set the parent-death signal", NULL);
        return errno;
    }
    return 0;
}

/// The signal mask of a fresh process (PID 1 blocked the forwarded
/// signals). The dispositions are PID 1's, reset before its go-ahead
/// (default_dispositions).
static int job_reset_signals(struct csb_child_ctx *_Nonnull ctx) {
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "unblock signals", NULL);
        return errno;
    }
    return 0;
}

static int job_chdir(struct csb_child_ctx *_Nonnull ctx) {
    if (chdir(ctx->config->cwd) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "enter the working directory ", ctx->config->cwd, NULL);
        return errno;
    }
    return 0;
}

static int job_exec(struct csb_child_ctx *_Nonnull ctx) {
    execve(ctx->config->path, ctx->config->argv, ctx->config->envp);
    csb_msg(ctx->message, sizeof ctx->message, "execve ", ctx->config->path, NULL);
    return errno;
}

/// The job: the last steps before exec, in order. The seccomp filter is
/// last so that nothing before it needs a syscall it denies.
static _Noreturn void job_main(struct csb_child_ctx *_Nonnull ctx) {
    STEP(ctx, CSB_STAGE_CGROUP, join_cgroups(ctx));
    STEP(ctx, CSB_STAGE_FDS, job_stdio(ctx));
    STEP(ctx, CSB_STAGE_SESSION, job_session(ctx));
    STEP(ctx, CSB_STAGE_SESSION, job_reset_signals(ctx));
    STEP(ctx, CSB_STAGE_RLIMIT, csb_job_set_rlimits(ctx));
    STEP(ctx, CSB_STAGE_CHDIR, job_chdir(ctx));
    STEP(ctx, CSB_STAGE_CAPS, csb_drop_capabilities(ctx));
    STEP(ctx, CSB_STAGE_NO_NEW_PRIVS, csb_job_set_no_new_privs(ctx));
    STEP(ctx, CSB_STAGE_SECCOMP, csb_job_load_seccomp(ctx));
    STEP(ctx, CSB_STAGE_EXEC, job_exec(ctx));
    _exit(127);
}

/// PID 1 after the fork: hold nothing of the host (no terminal) but the
/// job's stdout and stderr pipes, keep no privilege, be unreadable through
/// /proc, then supervise. It holds the pipes until its report (init.c), so
/// the job's exit does not end them: the runner's reader, asleep on another
/// CPU, is woken once, by the report and the pipes' end together, instead
/// of once by the pipes on the exiting job's way (a cross-CPU wake-up) and
/// again by the report. The job already writes to them: holding them gives
/// nothing in the sandbox anything it did not have, and PID 1 is not
/// dumpable, so nothing there can reach its descriptors.
static _Noreturn void become_init(struct csb_child_ctx *_Nonnull ctx, pid_t job) {
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
    }
    int keep[] = {ctx->sync_fd, ctx->config->stdout_fd, ctx->config->stderr_fd};
    int error = csb_close_fds_except(keep, 3);
    (void)prctl(PR_SET_NAME, "sandbox-init", 0, 0, 0); // not the name of a Swift worker thread
    if (error == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) error = errno;
    if (error == 0) error = csb_drop_capabilities(ctx);
    if (error == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) error = errno;
    if (error != 0) {
        kill(job, SIGKILL);
        _exit(127);
    }
    csb_init_run(ctx, job);
}

#if CSB_EXEC_INIT
static int job_entry(void *_Nonnull ctx) {
    job_main(ctx);
}
#endif

/// The job's process, running job_main(). On x86-64 a child that shares
/// PID 1's memory on a stack of its own until its exec, as posix_spawn
/// makes them (CLONE_VM|CLONE_VFORK): no page tables to copy, no copy-on-
/// write faults, and PID 1 waits meanwhile. It has its own descriptors,
/// signal handlers, limits and credentials; the errno it sets and the
/// failure record it writes into ctx are PID 1's, who no longer needs
/// them. Where clone3 is filtered, a fork.
static pid_t spawn_job(struct csb_child_ctx *_Nonnull ctx) {
#if CSB_EXEC_INIT
    static uint8_t stack[64 * 1024] __attribute__((aligned(16)));
    pid_t pid = csb_clone_vm(CLONE_VFORK, NULL, -1, stack, sizeof stack, job_entry, ctx);
    if (pid >= 0 || errno != ENOSYS) return pid;
#endif
    pid_t forked = csb_fork_raw();
    if (forked == 0) job_main(ctx);
    return forked;
}

/// Starts the job; this process goes on as PID 1. The forwarded signals
/// are blocked first, so none arrives before PID 1 listens for it.
static int start_job(struct csb_child_ctx *_Nonnull ctx) {
    sigset_t set;
    sigemptyset(&set);
    const int blocked[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) sigaddset(&set, blocked[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "block signals in PID 1", NULL);
        return errno;
    }
    pid_t job = spawn_job(ctx);
    if (job < 0) {
        csb_msg(ctx->message, sizeof ctx->message, "start the job's process from PID 1", NULL);
        return errno;
    }
    become_init(ctx, job);
}

/// The sandbox's setup, in order. Each step returns 0 or an errno and
/// fills ctx->message; the first failure is reported and ends the child.
static _Noreturn void child_main(struct csb_child_ctx *_Nonnull ctx) {
    STEP(ctx, CSB_STAGE_PREPARE, keep_own_descriptors(ctx));
    STEP(ctx, CSB_STAGE_PREPARE, forget_parent(ctx));
    STEP(ctx, CSB_STAGE_CLONE, make_namespaces(ctx));
    STEP(ctx, CSB_STAGE_CAPS, csb_limit_capabilities(ctx)); // bounding set, securebits: off the job's way
    STEP(ctx, CSB_STAGE_PREPARE, default_dispositions(ctx));
    STEP(ctx, CSB_STAGE_MOUNT, csb_child_prepare_proc(ctx)); // /proc while the plan comes (best effort)
    STEP(ctx, CSB_STAGE_SYNC, wait_for_parent(ctx));         // the plan sent ahead, or the go-ahead
    STEP(ctx, CSB_STAGE_PREPARE, run_anywhere(ctx));          // the caller's CPUs, now that it runs
    STEP(ctx, CSB_STAGE_MOUNT, assemble_ahead(ctx));         // after the plan: sources, ids, first mounts
    STEP(ctx, CSB_STAGE_SYNC, wait_for_go(ctx));             // after the plan: the go-ahead
    STEP(ctx, CSB_STAGE_PREPARE, stay_private(ctx));
    STEP(ctx, CSB_STAGE_MOUNT, csb_child_open_sources(ctx)); // (opened ahead: none left)
    STEP(ctx, CSB_STAGE_ID_MAP, csb_child_become_root(ctx)); // (taken ahead: none)
    STEP(ctx, CSB_STAGE_HOSTNAME, set_hostname(ctx));
    STEP(ctx, CSB_STAGE_NETWORK, csb_child_configure_network(ctx));
    STEP(ctx, CSB_STAGE_MOUNT, csb_child_assemble_root(ctx));
    STEP(ctx, CSB_STAGE_MOUNT, send_exports(ctx));
    STEP(ctx, CSB_STAGE_PIVOT, csb_child_pivot_root(ctx));
    STEP(ctx, CSB_STAGE_CGROUP, wait_for_placement(ctx));
    STEP(ctx, CSB_STAGE_INIT, start_job(ctx));
    _exit(127);
}

// MARK: - The init, executed afresh

static const char clone_message[] = "clone into new user, mount, pid, net, ipc, uts namespaces";

#if CSB_EXEC_INIT
#define CSB_INIT_NAME "syft-sandbox-init"

/// What the short-lived child that shares the parent's memory needs to
/// execute the init, all of it prepared by the parent, at the bottom of
/// the region whose top is the child's stack: the parent goes on while the
/// child executes, and its own stack frames do not stay as they were.
struct exec_init {
    int self_fd;   // this executable (O_PATH)
    int error_fd;  // the error pipe's write end
    int sync_fd;   // the child's end of the socket
    int cap_last;
    char sync_text[24];
    char error_text[24];
    char unshare_text[24];
    char *_Nullable argv[5];
    char *_Nullable envp[1];
    struct csb_error failure;
};

/// The region: the record above, then the child's stack.
#define EXEC_INIT_REGION_SIZE (64 * 1024)

/// The kernel's capget/capset records (version 3: two 32-bit words).
struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };
#define CAP_VERSION_3 0x20080522

/// Reports what failed (the failure record, as csb_child_fail sends it)
/// and exits; `result` is the failed call's -errno.
static _Noreturn void exec_init_fail(struct exec_init *_Nonnull e, const char *_Nonnull what, long result) {
    e->failure.stage = CSB_STAGE_PREPARE;
    e->failure.error = (int)-result;
    csb_msg(e->failure.message, sizeof e->failure.message, what, NULL);
    long written;
    do {
        written = csb_raw_syscall(SYS_write, e->error_fd, (long)&e->failure, sizeof e->failure, 0, 0);
    } while (written == -EINTR);
    csb_raw_syscall(SYS_exit_group, 127, 0, 0, 0, 0);
    __builtin_unreachable();
}

/// Runs in a child that shares the parent's memory, on a stack of its own,
/// while the calling thread goes on (no CLONE_VFORK: it writes the id maps
/// and takes the configuration meanwhile): raw syscalls on the record the
/// parent prepared, then execve. Nothing here writes errno, which is the
/// TLS of a thread that is running. The error pipe and the socket stay
/// open across the exec, and so do the capabilities, as ambient ones: the
/// id maps may not be written yet, so the kernel would not see this
/// process as root in its namespace.
static int exec_init_child(void *_Nonnull arg) {
    struct exec_init *e = arg;
    // Everything else of the parent's first (its locks, other sandboxes'
    // pipes): they would stay open, close-on-exec or not, until the exec
    // completes, and that takes a while.
    int keep[] = {e->self_fd, e->error_fd, e->sync_fd};
    int closed = csb_close_fds_except(keep, sizeof keep / sizeof keep[0]);
    if (closed != 0) exec_init_fail(e, "pass a descriptor to the sandbox's init", -closed);
    long result = csb_raw_syscall(SYS_fcntl, e->error_fd, F_SETFD, 0, 0, 0);
    if (result == 0) result = csb_raw_syscall(SYS_fcntl, e->sync_fd, F_SETFD, 0, 0, 0);
    if (result != 0) exec_init_fail(e, "pass a descriptor to the sandbox's init", result);
    struct cap_header header = {.version = CAP_VERSION_3, .pid = 0};
    struct cap_data data[2];
    result = csb_raw_syscall(SYS_capget, (long)&header, (long)data, 0, 0, 0);
    if (result != 0) exec_init_fail(e, "read the sandbox's capabilities", result);
    data[0].inheritable = data[0].permitted;
    data[1].inheritable = data[1].permitted;
    result = csb_raw_syscall(SYS_capset, (long)&header, (long)data, 0, 0, 0);
    if (result != 0) exec_init_fail(e, "make the sandbox's capabilities inheritable", result);
    for (int cap = 0; cap <= e->cap_last; cap++) {
        result = csb_raw_syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
        if (result != 0) exec_init_fail(e, "keep the sandbox's capabilities across exec", result);
    }
    result = csb_raw_syscall(SYS_execveat, e->self_fd, (long)"", (long)e->argv, (long)e->envp, AT_EMPTY_PATH);
    exec_init_fail(e, "execute the sandbox's init (this program, again)", result);
}

/// This executable, opened once per process.
static int self_executable(void) {
    static int cached = -1;
    int fd = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
    if (fd >= 0) return fd;
    fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
    if (fd < 0) return -1;
    int expected = -1;
    if (!__atomic_compare_exchange_n(&cached, &expected, fd, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        close(fd);
        return expected;
    }
    return fd;
}

/// Clones the sandbox's PID 1 and has it execute this binary as the init,
/// which waits for its plan and runs child_main() in an address space of
/// its own. Returns the pid, and in `region` what the child executes from
/// (the caller unmaps it once the child has executed or exited:
/// csb_child_close), or -1 with errno and `what` failed.
static pid_t clone_exec_init(struct csb_child_ctx *_Nonnull ctx, uint64_t flags, int cgroup_fd,
                             int *_Nonnull pidfd, void *_Nullable *_Nonnull region,
                             const char *_Nonnull *_Nonnull what) {
    *what = "open this executable (/proc/self/exe) to start the sandbox's init";
    int self_fd = self_executable();
    if (self_fd < 0) return -1;
    void *mapped = mmap(NULL, EXEC_INIT_REGION_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mapped == MAP_FAILED) {
        *what = "map a stack to start the sandbox's init on";
        return -1;
    }
    struct exec_init *e = mapped; // zeroed by mmap
    e->self_fd = self_fd;
    e->error_fd = ctx->error_fd;
    e->sync_fd = ctx->sync_fd;
    e->cap_last = ctx->cap_last;
    csb_format_u64(e->sync_text, sizeof e->sync_text, (uint64_t)ctx->sync_fd, 10);
    csb_format_u64(e->error_text, sizeof e->error_text, (uint64_t)ctx->error_fd, 10);
    e->argv[0] = CSB_INIT_NAME;
    e->argv[1] = e->sync_text;
    e->argv[2] = e->error_text;
    csb_format_u64(e->unshare_text, sizeof e->unshare_text, ctx->unshare_flags, 16);
    e->argv[3] = e->unshare_text;
    char *stack = (char *)mapped + sizeof *e;
    // Every signal blocked until the init restores the mask the plan
    // carries: no handler of the parent's may run in the child that shares
    // its memory.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    *what = clone_message;
    pid_t pid = csb_clone_vm(flags, pidfd, cgroup_fd, stack, EXEC_INIT_REGION_SIZE - sizeof *e, exec_init_child, e);
    int error = pid < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        munmap(mapped, EXEC_INIT_REGION_SIZE);
        errno = error;
        return -1;
    }
    *region = mapped;
    return pid;
}

static int parse_fd(const char *_Nonnull text) {
    int value = 0;
    for (; *text >= '0' && *text <= '9' && value < 1 << 20; text++) value = value * 10 + (*text - '0');
    return *text == '\0' ? value : -1;
}

/// The namespaces to unshare, in hex; false for anything else.
static bool parse_flags(const char *_Nonnull text, uint64_t *_Nonnull flags) {
    uint64_t value = 0;
    int digits = 0;
    for (; digits < 16; text++, digits++) {
        if (*text >= '0' && *text <= '9') value = value << 4 | (uint64_t)(*text - '0');
        else if (*text >= 'a' && *text <= 'f') value = value << 4 | (uint64_t)(*text - 'a' + 10);
        else break;
    }
    *flags = value;
    return digits > 0 && *text == '\0';
}

/// The init's entry, before anything else of the binary runs (the Swift
/// runtime included) and instead of it: argv is {CSB_INIT_NAME, socket fd,
/// error fd, namespaces to unshare (hex)}. Before libcap's own initializer (default priority): nothing
/// here needs it (cap_init asks the kernel for its version itself).
__attribute__((constructor(1000))) static void exec_init_entry(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc != 4 || argv[0] == NULL || strcmp(argv[0], CSB_INIT_NAME) != 0) return;
    static struct csb_child_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.sync_fd = parse_fd(argv[1]);
    ctx.error_fd = parse_fd(argv[2]);
    if (ctx.sync_fd < 0 || ctx.error_fd < 0 || !parse_flags(argv[3], &ctx.unshare_flags)) _exit(127);
    // Close-on-exec again, as in the parent; no ambient capabilities left
    // (the permitted and effective sets stay, for the setup).
    (void)fcntl(ctx.sync_fd, F_SETFD, FD_CLOEXEC);
    (void)fcntl(ctx.error_fd, F_SETFD, FD_CLOEXEC);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        csb_msg(ctx.message, sizeof ctx.message, "clear the ambient capabilities of the sandbox's init", NULL);
        csb_child_fail(&ctx, CSB_STAGE_PREPARE, errno);
    }
    ctx.empty_caps = cap_init();
    if (ctx.empty_caps == NULL) {
        csb_msg(ctx.message, sizeof ctx.message, "prepare an empty capability set", NULL);
        csb_child_fail(&ctx, CSB_STAGE_PREPARE, ENOMEM);
    }
    child_main(&ctx);
}
#endif

// MARK: - Parent side

static void parent_fail(struct csb_error *_Nonnull error, int stage, int code, const char *_Nonnull message) {
    error->stage = stage;
    error->error = code;
    csb_msg(error->message, sizeof error->message, message, NULL);
}

/// Makes the idmapped trees for CSB_BIND_IDMAP binds, in plan order, and
/// sends the go-ahead: the plan, stdout, stderr and the trees, in that
/// order ('G'), or without the plan (`plan_fd` -1: 'R', the one sent ahead
/// stands). A tree that cannot be idmapped (not root, or a filesystem
/// without idmap support) falls back to a plain bind.
static int send_go_ahead(const struct csb_spawn_config *_Nonnull config, pid_t pid, int sync_fd, int plan_fd,
                         bool parent_is_root, int32_t *_Nonnull fallbacks) {
    uint8_t present[CSB_MAX_IDMAPPED + 1];
    memset(present, 0, sizeof present);
    present[0] = plan_fd >= 0 ? 'G' : 'R';
    int fds[CSB_MAX_GO_AHEAD_FDS];
    size_t fd_count = 0;
    if (plan_fd >= 0) fds[fd_count++] = plan_fd;
    fds[fd_count++] = config->stdout_fd;
    fds[fd_count++] = config->stderr_fd;
    size_t first_tree = fd_count, bind_index = 0;
    int userns_fd = -1;
    for (size_t i = 0; i < config->mount_count; i++) {
        const struct csb_mount *m = &config->mounts[i];
        if (m->kind != CSB_MOUNT_BIND || (m->flags & CSB_BIND_IDMAP) == 0) continue;
        if (bind_index >= CSB_MAX_IDMAPPED) break;
        size_t index = bind_index++;
        if (!parent_is_root || m->source == NULL) {
            if (parent_is_root) (*fallbacks)++;
            continue;
        }
        if (userns_fd < 0) {
            char path[64], pid_text[24];
            csb_format_u64(pid_text, sizeof pid_text, (uint64_t)pid, 10);
            csb_msg(path, sizeof path, "/proc/", pid_text, "/ns/user", NULL);
            userns_fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        int tree;
        if (userns_fd >= 0 &&
            csb_make_idmapped_tree(m->source, userns_fd, m->attr, (m->flags & CSB_BIND_RECURSIVE) != 0, &tree) == 0) {
            fds[fd_count++] = tree;
            present[index + 1] = 1;
        } else {
            (*fallbacks)++;
        }
    }
    if (userns_fd >= 0) close(userns_fd);
    int error = csb_send_with_fds(sync_fd, present, 1 + bind_index, fds, fd_count);
    for (size_t i = first_tree; i < fd_count; i++) close(fds[i]);
    return error;
}

/// Takes the exported filesystems' roots the child sent before exec.
static int receive_exports(const struct csb_spawn_config *_Nonnull config, int sync_fd,
                           struct csb_child *_Nonnull child, struct csb_error *_Nonnull error) {
    int expected = 0;
    for (size_t i = 0; i < config->mount_count; i++) {
        const struct csb_mount *m = &config->mounts[i];
        if (m->kind == CSB_MOUNT_TMPFS && (m->flags & CSB_TMPFS_EXPORT) != 0) expected++;
    }
    if (expected == 0) return 0;
    uint8_t tag = 0;
    int received[CSB_MAX_EXPORTS];
    size_t count;
    bool truncated;
    ssize_t n = csb_recv_with_fds(sync_fd, &tag, 1, MSG_DONTWAIT, received, CSB_MAX_EXPORTS, &count, &truncated);
    for (size_t i = 0; i < count; i++) child->exported_fds[i] = received[i];
    child->exported_count = (int32_t)count;
    if (n != 1 || tag != 'X' || truncated || (int)count != expected) {
        parent_fail(error, CSB_STAGE_SYNC, n < 0 ? errno : EPROTO, "receive the outputs filesystem from the sandbox");
        return error->error;
    }
    return 0;
}

/// Reads the failure record, or EOF when the job's execve() succeeded.
static int read_outcome(int error_fd, struct csb_error *_Nonnull error) {
    struct csb_error record;
    ssize_t n;
    do {
        n = read(error_fd, &record, sizeof record);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return 0;
    if (n == (ssize_t)sizeof record) {
        record.message[sizeof record.message - 1] = '\0';
        *error = record;
        return record.error != 0 ? record.error : EIO;
    }
    parent_fail(error, CSB_STAGE_SYNC, n < 0 ? errno : EPROTO, "read the sandbox's setup report");
    return error->error;
}

/// SIGKILL through the pidfd, else (none, or it is what went wrong) by
/// pid: the child is not reaped yet, so the pid is still its own.
static void kill_child(pid_t pid, int pidfd) {
    if (pidfd < 0 || csb_pidfd_send_signal(pidfd, SIGKILL) != 0) kill(pid, SIGKILL);
}

static void kill_and_reap(pid_t pid, int pidfd) {
    kill_child(pid, pidfd);
    siginfo_t info;
    while (waitid(P_PID, (id_t)pid, &info, WEXITED) < 0 && errno == EINTR) {}
}

/// Moves this thread into `netns_fd`; `home` gets its own namespace back.
static int enter_netns(int netns_fd, int *_Nonnull home) {
    *home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (*home < 0) return errno;
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
        int error = errno;
        close(*home);
        *home = -1;
        return error;
    }
    return 0;
}

/// Back to the thread's own namespace. A thread of the runner left in a
/// job's namespace would open its later sockets there: if that cannot be
/// undone, nothing should go on.
static void leave_netns(int home) {
    if (setns(home, CLONE_NEWNET) != 0) abort();
    close(home);
}

int csb_spawn_start(const struct csb_start_config *_Nonnull start, struct csb_child *_Nonnull child,
                    struct csb_error *_Nonnull error) {
    memset(error, 0, sizeof *error);
    child->pid = -1;
    child->pidfd = -1;
    child->status_fd = -1;
    child->error_fd = -1;
    child->idmap_fallbacks = 0;
    child->exported_count = 0;
    child->init_region = NULL;

    struct csb_child_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.config = NULL; // the plan comes with the go-ahead
    ctx.parent_is_root = geteuid() == 0;
    ctx.cap_last = csb_last_capability();
    ctx.empty_caps = cap_init();
    if (ctx.empty_caps == NULL) {
        parent_fail(error, CSB_STAGE_PREPARE, errno, "prepare an empty capability set");
        return error->error;
    }
    int error_pipe[2], sync[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) {
        parent_fail(error, CSB_STAGE_PREPARE, errno, "create the error pipe");
        cap_free(ctx.empty_caps);
        return error->error;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0) {
        parent_fail(error, CSB_STAGE_PREPARE, errno, "create the parent/child socket");
        close(error_pipe[0]);
        close(error_pipe[1]);
        cap_free(ctx.empty_caps);
        return error->error;
    }
    ctx.error_fd = error_pipe[1];
    ctx.sync_fd = sync[1];

    // The clone makes the user, PID and cgroup namespaces; PID 1 the
    // others, in its own address space (see ctx.unshare_flags).
    uint64_t flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWCGROUP;
    ctx.unshare_flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    // A prepared network namespace is joined by this thread for the clone
    // (a child inherits it), then left.
    int home_netns = -1;
    if (start->network != CSB_NET_HOST && start->netns_fd >= 0) {
        int rc = enter_netns(start->netns_fd, &home_netns);
        if (rc != 0) {
            parent_fail(error, CSB_STAGE_PREPARE, rc, "join the prepared network namespace");
            close(error_pipe[0]);
            close(error_pipe[1]);
            close(sync[0]);
            close(sync[1]);
            cap_free(ctx.empty_caps);
            return error->error;
        }
    } else if (start->network != CSB_NET_HOST) {
        ctx.unshare_flags |= CLONE_NEWNET;
    }
    int pidfd = -1;
    const char *what = clone_message;
    pid_t pid = -1;
    bool fork_like = true;
#if CSB_EXEC_INIT
    if (!start->fork_init) {
        pid = clone_exec_init(&ctx, flags, start->cgroup_fd, &pidfd, &child->init_region, &what);
        // clone3 filtered (container runtimes' seccomp profiles answer
        // ENOSYS): the fork-like clone(2) below, whose child runs the setup itself.
        fork_like = pid < 0 && errno == ENOSYS;
    }
#endif
    if (fork_like) {
        what = clone_message;
        ctx.forked_init = true;
        pid = csb_clone_raw(flags, &pidfd, start->cgroup_fd);
        if (pid == 0) child_main(&ctx);
    }
    int clone_error = errno;
    if (home_netns >= 0) leave_netns(home_netns);
    close(error_pipe[1]);
    close(sync[1]);
    cap_free(ctx.empty_caps);
    if (pid < 0) {
        parent_fail(error, CSB_STAGE_CLONE, clone_error, what);
        close(error_pipe[0]);
        close(sync[0]);
        return error->error;
    }
    child->pid = pid;
    child->pidfd = pidfd;
    child->status_fd = sync[0];
    child->error_fd = error_pipe[0];
    csb_cpus_start_elsewhere(child);
    return 0;
}

/// Ends a started sandbox that will not run: killed, reaped, closed.
static void abandon(struct csb_child *_Nonnull child) {
    kill_and_reap(child->pid, child->pidfd);
    csb_child_close(child);
    child->pid = -1;
}

/// The parent's step failed: a child that failed on its own (a mount, say)
/// makes the parent's later steps fail too (EPIPE on the socket), so its
/// record, if any, is the cause. Stopped first (a child still waiting
/// cannot block the read), then reaped and closed.
static void fail_started(struct csb_child *_Nonnull child, struct csb_error *_Nonnull error) {
    kill_child(child->pid, child->pidfd);
    struct csb_error record;
    memset(&record, 0, sizeof record);
    if (read_outcome(child->error_fd, &record) != 0 && record.stage != CSB_STAGE_SYNC) *error = record;
    abandon(child);
}

/// Clears `error`; false (and `error` says why) for a child that
/// csb_spawn_start did not start or that already went past csb_spawn_wait.
static bool is_started(const struct csb_child *_Nonnull child, struct csb_error *_Nonnull error) {
    memset(error, 0, sizeof *error);
    if (child->pid > 0 && child->error_fd >= 0) return true;
    parent_fail(error, CSB_STAGE_PREPARE, EINVAL, "set up a sandbox that was not started (or was already)");
    return false;
}

/// The id maps, unless written already.
static int map_ids(const struct csb_spawn_config *_Nonnull config, struct csb_child *_Nonnull child,
                   bool parent_is_root, struct csb_error *_Nonnull error) {
    if (child->ids_mapped) return 0;
    int rc = csb_write_id_maps(child->pid, config->host_uid, config->host_gid, !parent_is_root,
                               error->message, sizeof error->message);
    if (rc != 0) {
        error->stage = CSB_STAGE_ID_MAP;
        error->error = rc;
        return rc;
    }
    child->ids_mapped = true;
    return 0;
}

/// The id maps (unless written already), then the plan in a memfd, sent
/// ahead ('A': the plan alone) or as the go-ahead (send_go_ahead), which
/// goes without it when `as_sent_ahead`: PID 1 keeps the plan it has.
static int send_plan(const struct csb_spawn_config *_Nonnull config, struct csb_child *_Nonnull child, bool ahead,
                     bool as_sent_ahead, struct csb_error *_Nonnull error) {
    bool parent_is_root = geteuid() == 0;
    int rc = map_ids(config, child, parent_is_root, error);
    if (rc != 0) return rc;
    int plan_fd = -1;
    if (ahead || !as_sent_ahead) {
        // The init restores this thread's mask (the job resets its own),
        // and the caller's CPUs (cpus.c), with the first plan it reads.
        sigset_t mask;
        pthread_sigmask(SIG_SETMASK, NULL, &mask);
        struct csb_cpu_mask cpus;
        csb_cpus_hand_over(child, &cpus);
        rc = csb_plan_write(config, parent_is_root, &mask, &cpus, &plan_fd);
        if (rc != 0) {
            parent_fail(error, CSB_STAGE_PREPARE, rc, "write the sandbox's plan");
            return rc;
        }
    }
    if (ahead) {
        uint8_t tag = 'A';
        rc = csb_send_with_fds(child->status_fd, &tag, 1, &plan_fd, 1);
    } else {
        rc = send_go_ahead(config, child->pid, child->status_fd, plan_fd, parent_is_root, &child->idmap_fallbacks);
    }
    if (plan_fd >= 0) close(plan_fd);
    if (rc != 0) {
        parent_fail(error, CSB_STAGE_SYNC, rc,
                    ahead ? "send the plan ahead to the sandbox" : "send the go-ahead to the sandbox");
    }
    return rc;
}

int csb_spawn_ahead(const struct csb_spawn_config *_Nonnull config, struct csb_child *_Nonnull child,
                    struct csb_error *_Nonnull error) {
    if (!is_started(child, error)) return error->error;
    if (child->plan_ahead || child->ids_mapped) {
        parent_fail(error, CSB_STAGE_PREPARE, EINVAL, "send the plan ahead: it was sent, or the go-ahead was");
        return EINVAL;
    }
    int rc = send_plan(config, child, true, false, error);
    if (rc != 0) {
        fail_started(child, error);
        return rc;
    }
    child->plan_ahead = true;
    return 0;
}

int csb_spawn_go(const struct csb_spawn_config *_Nonnull config, struct csb_child *_Nonnull child, bool as_sent_ahead,
                 struct csb_error *_Nonnull error) {
    if (!is_started(child, error)) return error->error;
    int rc = send_plan(config, child, false, as_sent_ahead && child->plan_ahead, error);
    if (rc != 0) fail_started(child, error);
    return rc;
}

int csb_spawn_place(struct csb_child *_Nonnull child, const int32_t *_Nullable join_fds, size_t join_count,
                    const struct csb_rlimit *_Nullable rlimits, size_t rlimit_count,
                    struct csb_error *_Nonnull error) {
    if (!is_started(child, error)) return error->error;
    if (join_count > CSB_MAX_CGROUP_TASKS || (join_count > 0 && join_fds == NULL) ||
        rlimit_count > CSB_MAX_PLACED_RLIMITS || (rlimit_count > 0 && rlimits == NULL)) {
        parent_fail(error, CSB_STAGE_CGROUP, EINVAL, "place the sandbox in its cgroup (too many files or rlimits)");
        fail_started(child, error);
        return EINVAL;
    }
    struct placement placed;
    memset(&placed, 0, sizeof placed);
    placed.tag = 'C';
    placed.join_count = (uint8_t)join_count;
    placed.rlimit_count = (uint8_t)rlimit_count;
    if (rlimit_count > 0) memcpy(placed.rlimits, rlimits, sizeof *rlimits * rlimit_count);
    int32_t fds[CSB_MAX_CGROUP_TASKS];
    if (join_count > 0) memcpy(fds, join_fds, sizeof fds[0] * join_count);
    int sent = csb_send_with_fds(child->status_fd, &placed, sizeof placed, fds, join_count);
    if (sent == 0) return 0;
    parent_fail(error, CSB_STAGE_SYNC, sent, "send the cgroup placement to the sandbox");
    fail_started(child, error);
    return error->error;
}

int csb_spawn_wait(const struct csb_spawn_config *_Nonnull config, struct csb_child *_Nonnull child,
                   struct csb_error *_Nonnull error) {
    if (!is_started(child, error)) return error->error;
    int rc = read_outcome(child->error_fd, error);
    close(child->error_fd);
    child->error_fd = -1;
    if (rc == 0) rc = receive_exports(config, child->status_fd, child, error);
    if (rc != 0) abandon(child);
    return rc;
}

// MARK: - After the start

int csb_reap(const struct csb_child *_Nonnull child, struct csb_usage *_Nonnull usage) {
    memset(usage, 0, sizeof *usage);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    struct rusage resources;
    memset(&resources, 0, sizeof resources);
    // waitid(2) with rusage: the raw call takes a fifth argument glibc hides.
    if (syscall(SYS_waitid, P_PIDFD, child->pidfd, &info, WEXITED | WNOHANG, &resources) != 0) return errno;
    if (info.si_pid == 0) return EAGAIN;
    usage->init_code = info.si_code;
    usage->init_status = info.si_status;
    usage->user_usec = (int64_t)resources.ru_utime.tv_sec * 1000000 + resources.ru_utime.tv_usec;
    usage->system_usec = (int64_t)resources.ru_stime.tv_sec * 1000000 + resources.ru_stime.tv_usec;
    usage->max_rss_kb = resources.ru_maxrss;
    return 0;
}

int csb_take_report(const struct csb_child *_Nonnull child, struct csb_report *_Nonnull report) {
    ssize_t n;
    do {
        n = recv(child->status_fd, report, sizeof *report, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof *report) return 0;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return EAGAIN;
    memset(report, 0, sizeof *report);
    return EPIPE;
}

int csb_release_init(const struct csb_child *_Nonnull child) {
    if (child->status_fd < 0) return EBADF;
    return shutdown(child->status_fd, SHUT_WR) == 0 ? 0 : errno;
}

int csb_signal(const struct csb_child *_Nonnull child, int signal) {
    if (csb_pidfd_send_signal(child->pidfd, signal) != 0) return errno;
    return 0;
}

void csb_child_kill_and_reap(const struct csb_child *_Nonnull child) {
    kill_and_reap(child->pid, child->pidfd);
}

void csb_child_close(struct csb_child *_Nonnull child) {
    for (int i = 0; i < child->exported_count; i++) close(child->exported_fds[i]);
    child->exported_count = 0;
    if (child->pidfd >= 0) close(child->pidfd);
    if (child->status_fd >= 0) close(child->status_fd);
    if (child->error_fd >= 0) close(child->error_fd);
    child->pidfd = -1;
    child->status_fd = -1;
    child->error_fd = -1;
#if CSB_EXEC_INIT
    // PID 1 has executed the init, or is gone: the region is unused.
    if (child->init_region != NULL) munmap(child->init_region, EXEC_INIT_REGION_SIZE);
#endif
    child->init_region = NULL;
}
