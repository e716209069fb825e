// spawn.c — cloning the sandbox and the order of its setup.
//
// Parent:  prepare pipes and capability state -> clone3 into the namespaces
//          (v2: into the job's cgroup), a child that shares the parent's
//          memory only to execute this binary again as the sandbox's init
//          (x86-64; elsewhere a fork-like clone) -> write the id maps -> make idmapped
//          trees -> send the go-ahead -> wait for EOF (exec succeeded) or a
//          failure record -> take the exported roots.
// Child:   the init's constructor rebuilds the configuration (plan.c), then
//          the flat list in child_main(); it becomes PID 1 and forks the
//          job, which runs the flat list in job_main() and execs.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
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

/// Closes everything but the descriptors this sandbox owns: another
/// sandbox's pipes may have been inherited through a concurrent clone.
static int keep_own_descriptors(struct csb_child_ctx *_Nonnull ctx) {
    const struct csb_spawn_config *config = ctx->config;
    int keep[] = {ctx->error_fd, ctx->sync_fd, config->stdout_fd, config->stderr_fd};
    int error = csb_close_fds_except(keep, sizeof keep / sizeof keep[0]);
    if (error != 0) csb_msg(ctx->message, sizeof ctx->message, "close inherited descriptors", NULL);
    return error;
}

/// Waits for the parent's go-ahead: the id maps are written, and the
/// idmapped trees (if any) arrive with it as SCM_RIGHTS.
static int wait_for_parent(struct csb_child_ctx *_Nonnull ctx) {
    uint8_t present[CSB_MAX_IDMAPPED + 1];
    char control[CMSG_SPACE(sizeof(int) * CSB_MAX_IDMAPPED)];
    struct iovec iov = {.iov_base = present, .iov_len = sizeof present};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    ssize_t n;
    do {
        n = recvmsg(ctx->sync_fd, &message, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n == 0) _exit(1); // the parent is gone: nobody to report to
    if (n < 1 || present[0] != 'G') {
        csb_msg(ctx->message, sizeof ctx->message, "receive the parent's go-ahead", NULL);
        return n < 0 ? errno : EPROTO;
    }
    int received[CSB_MAX_IDMAPPED];
    size_t count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c != NULL; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < fds && count < CSB_MAX_IDMAPPED; i++)
            memcpy(&received[count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    size_t next = 0;
    for (size_t i = 0; i < CSB_MAX_IDMAPPED && i + 1 < (size_t)n; i++)
        ctx->idmapped_fds[i] = present[i + 1] && next < count ? received[next++] : -1;
    return 0;
}

/// Hands the roots of the exported filesystems (the outputs tmpfs) to the
/// parent, which reads them after the job. One message, before the job
/// exists; the parent takes it once exec succeeded.
static int send_exports(struct csb_child_ctx *_Nonnull ctx) {
    if (ctx->exported_count == 0) return 0;
    uint8_t tag = 'X';
    char control[CMSG_SPACE(sizeof(int) * CSB_MAX_EXPORTS)];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = &tag, .iov_len = 1};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)ctx->exported_count)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)ctx->exported_count);
    memcpy(CMSG_DATA(c), ctx->exported_fds, sizeof(int) * (size_t)ctx->exported_count);
    ssize_t sent;
    do {
        sent = sendmsg(ctx->sync_fd, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        csb_msg(ctx->message, sizeof ctx->message, "send the outputs filesystem to the parent", NULL);
        return errno;
    }
    for (int i = 0; i < ctx->exported_count; i++) close(ctx->exported_fds[i]);
    return 0;
}

/// cgroup v1: this process moves itself into the job's group of every
/// hierarchy, first of all, so all the job ever does is accounted there.
/// It writes "0" to each group's `tasks` (files the parent opened): moving
/// one thread, itself, takes no global lock, where the parent writing a
/// pid to `cgroup.procs` waits for an RCU grace period (~10 ms).
/// (v2 needs nothing: clone3 created it there.)
static int join_v1_cgroups(struct csb_child_ctx *_Nonnull ctx) {
    const struct csb_spawn_config *config = ctx->config;
    for (size_t i = 0; i < config->cgroup_tasks_count; i++) {
        ssize_t written;
        do {
            written = write(config->cgroup_tasks_fds[i], "0", 1);
        } while (written < 0 && errno == EINTR);
        if (written != 1) {
            csb_msg(ctx->message, sizeof ctx->message, "move the sandbox into its cgroup (tasks)", NULL);
            return written < 0 ? errno : EIO;
        }
    }
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

/// Signal dispositions and mask as a fresh process has them (the Swift
/// parent may ignore SIGPIPE; PID 1 blocked the forwarded signals).
static int job_reset_signals(struct csb_child_ctx *_Nonnull ctx) {
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &default_action, NULL); // EINVAL for glibc-reserved signals is fine
    }
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

/// PID 1 after the fork: hold nothing of the host (no terminal, no pipes),
/// keep no privilege, be unreadable through /proc, then supervise.
static _Noreturn void become_init(struct csb_child_ctx *_Nonnull ctx, pid_t job) {
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
    }
    int keep[] = {ctx->sync_fd};
    int error = csb_close_fds_except(keep, 1);
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

/// Forks the job; this process goes on as PID 1. The forwarded signals
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
    pid_t job = csb_fork_raw();
    if (job < 0) {
        csb_msg(ctx->message, sizeof ctx->message, "fork the job from PID 1", NULL);
        return errno;
    }
    if (job == 0) job_main(ctx);
    become_init(ctx, job);
}

/// The sandbox's setup, in order. Each step returns 0 or an errno and
/// fills ctx->message; the first failure is reported and ends the child.
static _Noreturn void child_main(struct csb_child_ctx *_Nonnull ctx) {
    STEP(ctx, CSB_STAGE_CGROUP, join_v1_cgroups(ctx));
    STEP(ctx, CSB_STAGE_PREPARE, keep_own_descriptors(ctx));
    STEP(ctx, CSB_STAGE_SYNC, wait_for_parent(ctx));
    STEP(ctx, CSB_STAGE_MOUNT, csb_child_open_sources(ctx));
    STEP(ctx, CSB_STAGE_ID_MAP, csb_child_become_root(ctx));
    STEP(ctx, CSB_STAGE_HOSTNAME, set_hostname(ctx));
    STEP(ctx, CSB_STAGE_NETWORK, csb_child_configure_network(ctx));
    STEP(ctx, CSB_STAGE_MOUNT, csb_child_assemble_root(ctx));
    STEP(ctx, CSB_STAGE_MOUNT, send_exports(ctx));
    STEP(ctx, CSB_STAGE_PIVOT, csb_child_pivot_root(ctx));
    STEP(ctx, CSB_STAGE_INIT, start_job(ctx));
    _exit(127);
}

// MARK: - The init, executed afresh

static const char clone_message[] = "clone into new user, mount, pid, net, ipc, uts namespaces";

#if CSB_EXEC_INIT
#define CSB_INIT_NAME "syft-sandbox-init"

/// What the short-lived child that shares the parent's memory needs to
/// execute the init: all of it prepared by the parent.
struct exec_init {
    struct csb_child_ctx *_Nonnull ctx;
    int self_fd;   // this executable (O_PATH)
    int plan_fd;   // the configuration (plan.c)
    char plan_text[24];
    char error_text[24];
    char *_Nullable argv[4];
    char *_Nullable envp[1];
};

/// The kernel's capget/capset records (version 3: two 32-bit words).
struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };
#define CAP_VERSION_3 0x20080522

/// At most this many descriptors cross into the init (4 + the v1 hierarchies).
#define CSB_MAX_PASSED_FDS 16

/// The descriptors the init takes over: the error pipe, the socket, stdout,
/// stderr and the v1 cgroups' `tasks`. Returns how many (at most `capacity`).
static size_t passed_fds(const struct csb_child_ctx *_Nonnull ctx, int *_Nonnull fds, size_t capacity) {
    const struct csb_spawn_config *config = ctx->config;
    int fixed[] = {ctx->error_fd, ctx->sync_fd, config->stdout_fd, config->stderr_fd};
    size_t count = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && count < capacity; i++) fds[count++] = fixed[i];
    for (size_t i = 0; i < config->cgroup_tasks_count && count < capacity; i++) fds[count++] = config->cgroup_tasks_fds[i];
    return count;
}

/// Sets `flags` (0: kept across exec, FD_CLOEXEC: closed) on the
/// descriptors the init takes over. 0 or an errno.
static int set_passed_fd_flags(const struct csb_child_ctx *_Nonnull ctx, int flags) {
    int fds[CSB_MAX_PASSED_FDS];
    size_t count = passed_fds(ctx, fds, CSB_MAX_PASSED_FDS);
    for (size_t i = 0; i < count; i++) {
        if (fcntl(fds[i], F_SETFD, flags) != 0) return errno;
    }
    return 0;
}

/// Runs in a child that shares the parent's memory, on a stack of its own,
/// while the calling thread waits (CLONE_VFORK): plain syscalls on data the
/// parent prepared, then execve. The descriptors the init needs stay open
/// across it, and so do the capabilities, as ambient ones: the id maps are
/// not written yet, so the kernel would not see this process as root in
/// its namespace.
static int exec_init_child(void *_Nonnull arg) {
    struct exec_init *e = arg;
    struct csb_child_ctx *ctx = e->ctx;
    // Everything else of the parent's first (its locks, other sandboxes'
    // pipes): they would stay open, close-on-exec or not, until the exec
    // completes, and that takes a while.
    int keep[CSB_MAX_PASSED_FDS + 2] = {e->self_fd, e->plan_fd};
    size_t kept = 2 + passed_fds(ctx, keep + 2, CSB_MAX_PASSED_FDS);
    int error = csb_close_fds_except(keep, kept);
    if (error == 0) error = fcntl(e->plan_fd, F_SETFD, 0) != 0 ? errno : set_passed_fd_flags(ctx, 0);
    if (error != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "pass a descriptor to the sandbox's init", NULL);
        csb_child_fail(ctx, CSB_STAGE_PREPARE, error);
    }
    struct cap_header header = {.version = CAP_VERSION_3, .pid = 0};
    struct cap_data data[2];
    if (syscall(SYS_capget, &header, data) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "read the sandbox's capabilities", NULL);
        csb_child_fail(ctx, CSB_STAGE_PREPARE, errno);
    }
    data[0].inheritable = data[0].permitted;
    data[1].inheritable = data[1].permitted;
    if (syscall(SYS_capset, &header, data) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "make the sandbox's capabilities inheritable", NULL);
        csb_child_fail(ctx, CSB_STAGE_PREPARE, errno);
    }
    for (int cap = 0; cap <= ctx->cap_last; cap++) {
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
            csb_msg(ctx->message, sizeof ctx->message, "keep the sandbox's capabilities across exec", NULL);
            csb_child_fail(ctx, CSB_STAGE_PREPARE, errno);
        }
    }
    syscall(SYS_execveat, e->self_fd, "", e->argv, e->envp, AT_EMPTY_PATH);
    csb_msg(ctx->message, sizeof ctx->message, "execute the sandbox's init (this program, again)", NULL);
    csb_child_fail(ctx, CSB_STAGE_PREPARE, errno);
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
/// which rebuilds the configuration and runs child_main() in an address
/// space of its own. Returns the pid or -1 with errno and `what` failed.
static pid_t clone_exec_init(struct csb_child_ctx *_Nonnull ctx, uint64_t flags, int *_Nonnull pidfd,
                             const char *_Nonnull *_Nonnull what) {
    struct exec_init e;
    memset(&e, 0, sizeof e);
    e.ctx = ctx;
    e.plan_fd = -1;
    *what = "open this executable (/proc/self/exe) to start the sandbox's init";
    e.self_fd = self_executable();
    if (e.self_fd < 0) return -1;
    // Every signal blocked until the init restores this mask: no handler
    // of the parent's may run in the child that shares its memory.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    int error = csb_plan_write(ctx, &saved, &e.plan_fd);
    const size_t stack_size = 64 * 1024;
    void *stack = MAP_FAILED;
    if (error == 0) {
        stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) error = errno;
    }
    pid_t pid = -1;
    if (error == 0) {
        csb_format_u64(e.plan_text, sizeof e.plan_text, (uint64_t)e.plan_fd, 10);
        csb_format_u64(e.error_text, sizeof e.error_text, (uint64_t)ctx->error_fd, 10);
        e.argv[0] = CSB_INIT_NAME;
        e.argv[1] = e.plan_text;
        e.argv[2] = e.error_text;
        *what = clone_message;
        pid = csb_clone_vm(flags, pidfd, ctx->config->cgroup_fd, stack, stack_size, exec_init_child, &e);
        if (pid < 0) error = errno;
    } else {
        *what = "prepare the sandbox's init (its plan and a stack to start it on)";
    }
    if (stack != MAP_FAILED) munmap(stack, stack_size); // the child has executed or exited
    if (e.plan_fd >= 0) close(e.plan_fd);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    errno = error;
    return pid;
}

static int parse_fd(const char *_Nonnull text) {
    int value = 0;
    for (; *text >= '0' && *text <= '9' && value < 1 << 20; text++) value = value * 10 + (*text - '0');
    return *text == '\0' ? value : -1;
}

/// The init's entry, before anything else of the binary runs (the Swift
/// runtime included) and instead of it: argv is {CSB_INIT_NAME, plan fd,
/// error fd}. After libcap's own constructor (priority 300).
__attribute__((constructor(1000))) static void exec_init_entry(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc != 3 || argv[0] == NULL || strcmp(argv[0], CSB_INIT_NAME) != 0) return;
    static struct csb_child_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    int plan_fd = parse_fd(argv[1]);
    ctx.error_fd = parse_fd(argv[2]);
    if (plan_fd < 0 || ctx.error_fd < 0) _exit(127);
    sigset_t mask;
    int error = csb_plan_read(plan_fd, &ctx, &mask);
    if (error != 0) {
        csb_msg(ctx.message, sizeof ctx.message, "read the sandbox's plan", NULL);
        csb_child_fail(&ctx, CSB_STAGE_PREPARE, error);
    }
    close(plan_fd);
    // Close-on-exec again, as in the parent; no ambient capabilities left
    // (the permitted and effective sets stay, for the setup).
    (void)set_passed_fd_flags(&ctx, FD_CLOEXEC);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        csb_msg(ctx.message, sizeof ctx.message, "clear the ambient capabilities of the sandbox's init", NULL);
        csb_child_fail(&ctx, CSB_STAGE_PREPARE, errno);
    }
    ctx.empty_caps = cap_init();
    if (ctx.empty_caps == NULL) {
        csb_msg(ctx.message, sizeof ctx.message, "prepare an empty capability set", NULL);
        csb_child_fail(&ctx, CSB_STAGE_PREPARE, ENOMEM);
    }
    sigprocmask(SIG_SETMASK, &mask, NULL);
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
/// sends them with the go-ahead. A tree that cannot be idmapped (not
/// root, or a filesystem without idmap support) falls back to a plain bind.
static int send_go_ahead(const struct csb_spawn_config *_Nonnull config, pid_t pid, int sync_fd,
                         bool parent_is_root, int32_t *_Nonnull fallbacks) {
    uint8_t present[CSB_MAX_IDMAPPED + 1];
    memset(present, 0, sizeof present);
    present[0] = 'G';
    int trees[CSB_MAX_IDMAPPED];
    size_t tree_count = 0, bind_index = 0;
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
            trees[tree_count++] = tree;
            present[index + 1] = 1;
        } else {
            (*fallbacks)++;
        }
    }
    if (userns_fd >= 0) close(userns_fd);
    char control[CMSG_SPACE(sizeof(int) * CSB_MAX_IDMAPPED)];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = present, .iov_len = 1 + bind_index};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    if (tree_count > 0) {
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * tree_count);
        struct cmsghdr *c = CMSG_FIRSTHDR(&message);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * tree_count);
        memcpy(CMSG_DATA(c), trees, sizeof(int) * tree_count);
    }
    ssize_t sent;
    do {
        sent = sendmsg(sync_fd, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    int error = sent < 0 ? errno : 0;
    for (size_t i = 0; i < tree_count; i++) close(trees[i]);
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
    char control[CMSG_SPACE(sizeof(int) * CSB_MAX_EXPORTS)];
    struct iovec iov = {.iov_base = &tag, .iov_len = 1};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    ssize_t n;
    do {
        n = recvmsg(sync_fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    int received = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); n > 0 && c != NULL; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < fds; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (received < CSB_MAX_EXPORTS) child->exported_fds[received++] = fd;
            else close(fd);
        }
    }
    child->exported_count = received;
    if (n != 1 || tag != 'X' || received != expected) {
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
static void kill_and_reap(pid_t pid, int pidfd) {
    if (pidfd < 0 || csb_pidfd_send_signal(pidfd, SIGKILL) != 0) kill(pid, SIGKILL);
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

int csb_spawn(const struct csb_spawn_config *_Nonnull config, struct csb_child *_Nonnull child,
              struct csb_error *_Nonnull error) {
    memset(error, 0, sizeof *error);
    child->pid = -1;
    child->pidfd = -1;
    child->status_fd = -1;
    child->idmap_fallbacks = 0;
    child->exported_count = 0;

    struct csb_child_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.config = config;
    ctx.parent_is_root = geteuid() == 0;
    ctx.cap_last = (int)cap_max_bits() - 1;
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

    uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
    // A prepared network namespace is joined by this thread for the clone
    // (a child inherits it), then left.
    int home_netns = -1;
    if (config->network != CSB_NET_HOST && config->netns_fd >= 0) {
        int rc = enter_netns(config->netns_fd, &home_netns);
        if (rc != 0) {
            parent_fail(error, CSB_STAGE_PREPARE, rc, "join the prepared network namespace");
            close(error_pipe[0]);
            close(error_pipe[1]);
            close(sync[0]);
            close(sync[1]);
            cap_free(ctx.empty_caps);
            return error->error;
        }
    } else if (config->network != CSB_NET_HOST) {
        flags |= CLONE_NEWNET;
    }
    int pidfd = -1;
    const char *what = clone_message;
    pid_t pid = -1;
    bool fork_like = true;
#if CSB_EXEC_INIT
    pid = clone_exec_init(&ctx, flags, &pidfd, &what);
    // clone3 filtered (container runtimes' seccomp profiles answer ENOSYS):
    // the fork-like clone(2) below, whose child runs the setup itself.
    fork_like = pid < 0 && errno == ENOSYS;
#endif
    if (fork_like) {
        what = clone_message;
        pid = csb_clone_raw(flags, &pidfd, config->cgroup_fd);
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

    int rc = csb_write_id_maps(pid, config->host_uid, config->host_gid, !ctx.parent_is_root,
                               error->message, sizeof error->message);
    if (rc != 0) {
        error->stage = CSB_STAGE_ID_MAP;
        error->error = rc;
    }
    if (rc == 0) {
        rc = send_go_ahead(config, pid, sync[0], ctx.parent_is_root, &child->idmap_fallbacks);
        if (rc != 0) parent_fail(error, CSB_STAGE_SYNC, rc, "send the go-ahead to the sandbox");
    }
    if (rc == 0) {
        rc = read_outcome(error_pipe[0], error);
    } else {
        // A child that failed on its own (a mount, say) makes the parent's
        // later steps fail too (EPIPE on the socket): its record is the
        // cause. Stop it first, so a child still waiting cannot block the read.
        if (pidfd >= 0) csb_pidfd_send_signal(pidfd, SIGKILL);
        else kill(pid, SIGKILL);
        struct csb_error record;
        memset(&record, 0, sizeof record);
        if (read_outcome(error_pipe[0], &record) != 0 && record.stage != CSB_STAGE_SYNC) *error = record;
    }
    close(error_pipe[0]);
    if (rc == 0) rc = receive_exports(config, sync[0], child, error);
    if (rc != 0) {
        for (int i = 0; i < child->exported_count; i++) close(child->exported_fds[i]);
        child->exported_count = 0;
        kill_and_reap(pid, pidfd);
        if (pidfd >= 0) close(pidfd);
        close(sync[0]);
        return rc;
    }
    child->pid = pid;
    child->pidfd = pidfd;
    child->status_fd = sync[0];
    return 0;
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
    int32_t status;
    if (recv(child->status_fd, &status, sizeof status, MSG_DONTWAIT) == (ssize_t)sizeof status) {
        usage->job_reported = 1;
        usage->job_wait_status = status;
    }
    return 0;
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
    child->pidfd = -1;
    child->status_fd = -1;
}
