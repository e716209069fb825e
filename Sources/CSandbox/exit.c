// exit.c — the process's end, with the teardown of its memory handed off.
//
// A one-shot run's process is large for what it does (a static Swift
// runtime, five threads, ~10 MB resident), and the kernel frees all of it
// in exit_group before the process counts as exited: 0.3 ms between the
// exit and the caller's wait returning. When another process still shares
// the memory, the exit only drops a reference, and the unmapping happens
// when that process exits, after the caller was told.
#include "internal.h"

#include <poll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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
        // The descriptor table is shared: closed here, closed for the helper.
        if (pidfd > 0) (void)syscall(SYS_close_range, 0, pidfd - 1, 0);
        (void)syscall(SYS_close_range, pidfd + 1, ~0U, 0);
    }
#endif
    _exit(status);
}
