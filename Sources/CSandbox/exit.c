// exit.c — the process's end, with the teardown of its memory handed off.
//
// A one-shot run's process is large for what it does (a static Swift
// runtime, ~10 MB resident), and the kernel frees all of it
// in exit_group before the process counts as exited: 0.3 ms between the
// exit and the caller's wait returning. When another process still shares
// the memory, the exit only drops a reference, and the unmapping happens
// when that process exits, after the caller was told. Descriptors handed
// to csb_exit_close_later stay open in the helper's table and close with
// it: a file unlinked while one is open is freed at that close, so its
// blocks and inode are freed after the caller was told, too. The helper
// can be started ahead (csb_exit_prepare), while the caller has time.
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/// The descriptors the exit leaves to the helper (csb_exit_close_later).
static int later[CSB_EXIT_CLOSE_LATER_MAX];
_Static_assert(CSB_EXIT_CLOSE_LATER_MAX + 1 <= CSB_MAX_IDMAPPED + 8, "csb_close_fds_from_except keeps this many");
static size_t later_count;

int csb_exit_close_later(int fd) {
    if (fd < 0) return EBADF;
    size_t slot = __atomic_fetch_add(&later_count, 1, __ATOMIC_RELAXED);
    if (slot >= CSB_EXIT_CLOSE_LATER_MAX) {
        __atomic_fetch_sub(&later_count, 1, __ATOMIC_RELAXED);
        return ENOSPC;
    }
    later[slot] = fd;
    return 0;
}

#if defined(__x86_64__)
/// What a helper waits for: the pidfd of the process it shares memory
/// with, and for how long (-1: as long as that process lives).
struct holding {
    int pidfd;
    int timeout_ms;
};

/// The helper: waits until the process it shares memory with has exited
/// (its pidfd turns readable), or its timeout, yields the CPU once, then
/// returns, which exits.
/// Raw syscalls only: it shares a thread's TLS pointer, so nothing may
/// write errno there.
static int hold_memory(void *_Nonnull arg) {
    const struct holding *holding = arg;
    static const char name[16] = "syft-exit";
    (void)csb_raw_syscall(SYS_prctl, PR_SET_NAME, (long)name, 0, 0, 0);
    struct pollfd exited = {.fd = holding->pidfd, .events = POLLIN, .revents = 0};
    long ready;
    do {
        ready = csb_raw_syscall(SYS_poll, (long)&exited, 1, holding->timeout_ms, 0, 0);
    } while (ready == -EINTR);
    // The exit that woke this helper woke the caller's wait too, often
    // onto this CPU: the caller runs first, the unmapping after. (Without
    // the yield, about half of a trivial job's runs 20 ms apart had their
    // caller's wait return ~0.1 ms later, behind the teardown.)
    (void)csb_raw_syscall(SYS_sched_yield, 0, 0, 0, 0, 0);
    return 0;
}

/// Starts a helper for `holding` (a static: the helper reads it from the
/// shared memory), with every signal blocked; the caller's mask is kept.
/// False when it could not.
static bool start_holder(struct holding *_Nonnull holding) {
    const size_t stack_size = 16 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return false;
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    bool started = csb_clone_sharing(stack, stack_size, hold_memory, holding) > 0;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (!started) munmap(stack, stack_size);
    return started;
}

/// A pidfd of this process into `holding`, and its helper started: 0, or
/// the errno (then nothing is left open).
static int hold(struct holding *_Nonnull holding) {
    holding->pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (holding->pidfd < 0) return errno;
    if (start_holder(holding)) return 0;
    int error = errno != 0 ? errno : EAGAIN;
    close(holding->pidfd);
    holding->pidfd = -1;
    return error;
}

/// The helper started ahead (csb_exit_prepare), and the one started at
/// the exit otherwise.
static struct holding ahead = {.pidfd = -1, .timeout_ms = -1};
static struct holding at_exit = {.pidfd = -1, .timeout_ms = 10 * 1000};
static bool ahead_started;
#endif

int csb_exit_prepare(void) {
#if defined(__x86_64__)
    if (__atomic_load_n(&ahead_started, __ATOMIC_ACQUIRE)) return 0;
    int error = hold(&ahead);
    if (error == 0) __atomic_store_n(&ahead_started, true, __ATOMIC_RELEASE);
    return error;
#else
    return ENOSYS;
#endif
}

_Noreturn void csb_exit_process(int status) {
    fflush(NULL);
#if defined(__x86_64__)
    int pidfd = -1;
    if (__atomic_load_n(&ahead_started, __ATOMIC_ACQUIRE)) {
        pidfd = ahead.pidfd;
    } else if (hold(&at_exit) == 0) {
        pidfd = at_exit.pidfd;
    }
    if (pidfd >= 0) {
        // The process is ending: no signal handler runs from here on.
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, NULL);
        // The descriptor table is shared: closed here, closed for the
        // helper. What it keeps (its pidfd, the later ones) closes with it.
        int keep[CSB_EXIT_CLOSE_LATER_MAX + 1] = {pidfd};
        size_t count = 1 + __atomic_load_n(&later_count, __ATOMIC_RELAXED);
        if (count > CSB_EXIT_CLOSE_LATER_MAX + 1) count = CSB_EXIT_CLOSE_LATER_MAX + 1;
        memcpy(keep + 1, later, sizeof keep[0] * (count - 1));
        (void)csb_close_fds_from_except(0, keep, count);
    }
#endif
    _exit(status);
}
