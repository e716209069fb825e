// init.c — PID 1 of the sandbox.
//
// It reaps every orphan, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/
// SIGUSR2 to the job, reports the job's wait status, the usage of what it
// reaped and whether anything is left (struct csb_report) to the parent and
// exits when the job's main process ends. Its exit makes the kernel kill
// every other process of the PID namespace: nothing outlives the job. When
// nothing is left and PID 1 was never in the job's cgroup (the job joined
// it itself), the group is empty at the report and the parent removes it
// at once; PID 1 exits when the parent lets go, so the kernel's teardown
// of the namespaces in that exit takes no CPU from the removal.
//
// Die-with-parent: PR_SET_PDEATHSIG fires when the parent *thread* exits,
// and the parent here is a thread of a Swift process that may retire it at
// any time. PID 1 watches its socket to the parent instead: EOF means the
// parent process is gone, and PID 1 exits, taking the namespace with it.
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/// What the report will say: the usage of every process reaped so far.
/// (PID 1 is single-threaded.)
static struct csb_report totals;

static void add_usage(const struct rusage *_Nonnull usage) {
    totals.user_usec += (int64_t)usage->ru_utime.tv_sec * 1000000 + usage->ru_utime.tv_usec;
    totals.system_usec += (int64_t)usage->ru_stime.tv_sec * 1000000 + usage->ru_stime.tv_usec;
    if (usage->ru_maxrss > totals.max_rss_kb) totals.max_rss_kb = usage->ru_maxrss;
}

static void send_all(int fd, const void *_Nonnull bytes, size_t length) {
    ssize_t written;
    do {
        written = send(fd, bytes, length, MSG_NOSIGNAL);
    } while (written < 0 && errno == EINTR);
}

/// Sleeps until the parent lets go: it shuts its end of the socket down
/// (csb_release_init) or exits. Until then this process's exit, where the
/// kernel tears the namespaces down (~0.5 ms of CPU), stays out of the
/// way of the parent's removal of the job's cgroup and its writing of the
/// results, on a machine of two CPUs. Nothing of the job is left by then,
/// and this process holds no lock while it sleeps.
static void await_release(int fd) {
    struct pollfd hangup = {.fd = fd, .events = POLLIN, .revents = 0};
    int ready;
    do {
        ready = poll(&hangup, 1, -1);
    } while (ready < 0 && errno == EINTR);
}

/// Tells the parent how the job ended (and whether anything is left, and
/// whether the job's cgroup is empty now) and exits: once the parent lets
/// go when the group is empty (the parent removes it meanwhile), at once
/// otherwise.
static _Noreturn void report_and_exit(struct csb_child_ctx *_Nonnull ctx, int status, bool alone) {
    totals.wait_status = status;
    totals.alone = alone;
    totals.cgroup_empty = alone && ctx->job_joins_cgroup;
    // The pipes end before the report comes: the runner drains them to
    // their end once it has it (become_init).
    if (ctx->config->stdout_fd >= 3) close(ctx->config->stdout_fd);
    if (ctx->config->stderr_fd >= 3) close(ctx->config->stderr_fd);
    send_all(ctx->sync_fd, &totals, sizeof totals);
    if (totals.cgroup_empty) await_release(ctx->sync_fd);
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    _exit(128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
}

/// Reaps every exited child; once the job itself was among them, reports
/// (alone when no child is left: ECHILD) and exits.
static void reap(struct csb_child_ctx *_Nonnull ctx, pid_t job) {
    bool job_ended = false;
    int job_status = 0;
    for (;;) {
        int status;
        struct rusage usage;
        pid_t pid = wait4(-1, &status, WNOHANG, &usage);
        if (pid <= 0) { // 0: others still run (this exit kills them); -1 ECHILD: nothing left
            if (job_ended) report_and_exit(ctx, job_status, pid < 0 && errno == ECHILD);
            return;
        }
        add_usage(&usage);
        if (pid == job) {
            job_ended = true;
            job_status = status;
        }
    }
}

_Noreturn void csb_init_run(struct csb_child_ctx *_Nonnull ctx, pid_t job) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&set, forwarded[i]);
    // The signals were blocked before the job was forked (no window to lose one).
    int signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) {
        kill(job, SIGKILL);
        _exit(127);
    }
    struct pollfd fds[2] = {{.fd = signal_fd, .events = POLLIN}, {.fd = ctx->sync_fd, .events = POLLIN}};
    reap(ctx, job); // the job may already be gone
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(127);
        }
        if (fds[1].revents != 0) {
            char byte;
            ssize_t n = recv(ctx->sync_fd, &byte, 1, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) _exit(137); // parent gone
        }
        struct signalfd_siginfo info;
        while (read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
            if (info.ssi_signo == SIGCHLD) reap(ctx, job);
            else kill(job, (int)info.ssi_signo);
        }
    }
}
