// syscalls.c — raw system calls that glibc 2.36 does not wrap.
//
// The raw clone variants deliberately bypass glibc's fork(): they run no
// atfork handlers, which in a multithreaded Swift process could take locks
// held by other threads. Callers are async-signal-safe code only.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int csb_openat2(int dirfd, const char *_Nonnull path, int flags, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int csb_open_beneath(int dirfd, const char *_Nonnull path, int flags) {
    return csb_openat2(dirfd, path, flags | O_CLOEXEC,
                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
}

/// clone3's arguments for a child in `flags`' namespaces, with a pidfd
/// when `pidfd` is set, and born in the cgroup `cgroup_fd` (-1: the caller's).
static void sandbox_clone_args(struct clone_args *_Nonnull args, uint64_t flags, int *_Nullable pidfd, int cgroup_fd) {
    memset(args, 0, sizeof *args);
    args->flags = flags | (pidfd != NULL ? CLONE_PIDFD : 0);
    args->pidfd = (uint64_t)(uintptr_t)pidfd;
    args->exit_signal = SIGCHLD;
    if (cgroup_fd >= 0) {
        args->flags |= CLONE_INTO_CGROUP;
        args->cgroup = (uint64_t)cgroup_fd;
    }
}

/// clone3 into new namespaces (fork-like: no CLONE_VM, same stack), falling
/// back to clone(2) where clone3 is missing or filtered (ENOSYS, as under
/// container runtimes' seccomp profiles). Returns the pid, 0 in the child,
/// -1 with errno on failure.
pid_t csb_clone_raw(uint64_t flags, int *_Nullable pidfd, int cgroup_fd) {
    struct clone_args args;
    sandbox_clone_args(&args, flags, pidfd, cgroup_fd);
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid >= 0 || errno != ENOSYS || cgroup_fd >= 0) return (pid_t)pid;
    // clone(flags, stack, parent_tid, child_tid, tls) on x86_64; with
    // CLONE_PIDFD the pidfd is stored through parent_tid.
    unsigned long legacy = (unsigned long)(flags | SIGCHLD | (pidfd != NULL ? CLONE_PIDFD : 0));
    return (pid_t)syscall(SYS_clone, legacy, NULL, pidfd, NULL, NULL);
}

pid_t csb_fork_raw(void) {
    return (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
}

int csb_pidfd_send_signal(int pidfd, int signal) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

#if defined(__x86_64__)
/// clone3 with `args` (which share the caller's memory: CLONE_VM and a
/// stack of the child's own): the child runs fn(arg) on that stack and
/// exits with its result. The syscall is issued here, not through
/// syscall(3): a child returning through the caller's frames would
/// overwrite them on the shared stack. Returns the pid, or -1 with errno.
static pid_t clone3_on_stack(struct clone_args *_Nonnull args, int (*_Nonnull fn)(void *_Nonnull),
                             void *_Nonnull arg) {
    // Callee-saved registers survive the syscall in both processes.
    register void *child_fn __asm__("r12") = (void *)fn;
    register void *child_arg __asm__("r13") = arg;
    long result = SYS_clone3;
    __asm__ volatile("syscall\n\t"
                     "testq %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     // The child, on its own stack.
                     "xorl %%ebp, %%ebp\n\t"
                     "movq %%r13, %%rdi\n\t"
                     "callq *%%r12\n\t"
                     "movl %%eax, %%edi\n\t"
                     "movl $60, %%eax\n\t" // SYS_exit
                     "syscall\n\t"
                     "ud2\n"
                     "1:"
                     : "+a"(result)
                     : "D"(args), "S"(sizeof *args), "r"(child_fn), "r"(child_arg)
                     : "rcx", "r11", "memory");
    if (result < 0) {
        errno = (int)-result;
        return -1;
    }
    return (pid_t)result;
}

/// The stack's top, 16-byte aligned as the ABI wants it at a call.
static void set_stack(struct clone_args *_Nonnull args, void *_Nonnull stack, size_t stack_size) {
    args->stack = (uint64_t)(uintptr_t)stack;
    args->stack_size = stack_size & ~(size_t)15;
}

/// clone3 with CLONE_VM into `stack`: the child runs fn(arg) there and
/// exits with its result (fn is meant to execve). With CLONE_VFORK in
/// `flags` the calling thread resumes once the child has executed or
/// exited; without it the thread goes on at once, and the child must touch
/// nothing the caller may change or free meanwhile (`stack` stays mapped
/// until the child has executed or exited). Returns the pid, or -1 with errno.
pid_t csb_clone_vm(uint64_t flags, int *_Nullable pidfd, int cgroup_fd, void *_Nonnull stack, size_t stack_size,
                   int (*_Nonnull fn)(void *_Nonnull), void *_Nonnull arg) {
    struct clone_args args;
    sandbox_clone_args(&args, flags | CLONE_VM, pidfd, cgroup_fd);
    set_stack(&args, stack, stack_size);
    return clone3_on_stack(&args, fn, arg);
}

/// A process sharing the caller's memory and descriptor table, running
/// fn(arg) on `stack` next to the caller (no CLONE_VFORK). Returns the
/// pid, or -1 with errno.
pid_t csb_clone_sharing(void *_Nonnull stack, size_t stack_size, int (*_Nonnull fn)(void *_Nonnull),
                        void *_Nonnull arg) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_VM | CLONE_FILES;
    args.exit_signal = SIGCHLD;
    set_stack(&args, stack, stack_size);
    return clone3_on_stack(&args, fn, arg);
}
#endif
