// exit.c — the process's end, with the teardown of its memory handed off.
//
// A one-shot run's process is large for what it does (a static Swift
// runtime, five threads, ~10 MB resident), and the kernel frees all of it
// in exit_group before the process counts as exited: 0.3 ms between the
// exit and the caller's wait returning. When another process still shares
// the memory, the exit only drops a reference, and the unmapping happens
// when that process exits, after the caller was told. Descriptors handed
// to csb_exit_close_later stay open in the helper's table and close with
// it: a file unlinked while one is open is freed at that close, so its
// blocks and inode are freed after the caller was told, too.
#include "internal.h"

#include <errno.h>
#include <poll.h>
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
/// The helper: waits until the process it shares memory with has exited
/// (its pidfd turns readable), at most 10 s, then returns, which exits.
/// Raw syscalls only: it shares the exiting thread's TLS pointer, so
/// nothing may write errno there.
static int hold_memory(void *_Nonnull arg) {
    static const char name[16] = "syft-exit";
    (void)csb_raw_syscall(SYS_prctl, PR_SET_NAME, (long)name, 0, 0, 0);
    struct pollfd exited = {.fd = (int)(intptr_t)arg, .events = POLLIN, .revents = 0};
    (void)csb_raw_syscall(SYS_poll, (long)&exited, 1, 10 * 1000, 0, 0);
    return 0;
}

/// Starts the helper, or returns false. It gets a pidfd of this process
/// and every signal blocked (the caller's mask, set here; the process is
/// ending, so it stays).
static bool start_holder(int pidfd) {
    const size_t stack_size = 16 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return false;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    return csb_clone_sharing(stack, stack_size, hold_memory, (void *)(intptr_t)pidfd) > 0;
}
#endif

_Noreturn void csb_exit_process(int status) {
    fflush(NULL);
#if defined(__x86_64__)
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd >= 0 && start_holder(pidfd)) {
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
