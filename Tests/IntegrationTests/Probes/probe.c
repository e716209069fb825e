// probe.c — attacks run from inside the sandbox by the integration tests.
//
// Built statically by the tests (cc -static) and copied into a job folder.
// Each subcommand tries one thing and prints "name=result" lines, where
// result is "ok" or the errno's name, or "killed:SIG" for a child that a
// signal ended. The tests assert on these lines.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static void report(const char *name, long rc) {
    if (rc >= 0) printf("%s=ok\n", name);
    else printf("%s=%s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "unknown");
}

// Runs fn in a child; prints how the child ended ("exit:N" or "killed:SIG").
static void in_child(const char *name, void (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) printf("%s=killed:%s\n", name, sigabbrev_np(WTERMSIG(status)));
    else printf("%s=exit:%d\n", name, WEXITSTATUS(status));
}

static void x32_getpid(void) {
    // x32 ABI: syscall number with bit 30 set, on the x86_64 entry point.
    long rc = syscall(0x40000000 | SYS_getpid);
    _exit(rc > 0 ? 0 : 3);
}

static void i386_getpid(void) {
    // The 32-bit entry point: int $0x80 with i386's getpid (20).
    long rc;
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20) : "memory");
    _exit(rc > 0 ? 0 : 3);
}

static int syscalls(void) {
    char buffer[64];
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("umount2", umount2("/proc", MNT_DETACH));
    report("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    report("chroot", chroot("/tmp"));
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("unshare_ns", unshare(CLONE_NEWNS));
    report("unshare_net", unshare(CLONE_NEWNET));
    report("setns", setns(0, 0));
    report("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL));
    report("clone_newpid", syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL));
    struct clone_args args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    report("clone3", syscall(SYS_clone3, &args, sizeof args));
    report("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
    report("add_key", syscall(SYS_add_key, "user", "x", "y", 1, 0));
    report("request_key", syscall(SYS_request_key, "user", "x", NULL, 0));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
    report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0));
    report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    report("finit_module", syscall(SYS_finit_module, -1, "", 0));
    report("delete_module", syscall(SYS_delete_module, "x", 0));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, buffer));
    report("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
    report("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
    report("ptrace", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, NULL, NULL));
    report("process_vm_readv", syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0));
    report("process_vm_writev", syscall(SYS_process_vm_writev, 1, NULL, 0, NULL, 0, 0));
    report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    report("swapon", syscall(SYS_swapon, "/tmp/x", 0));
    report("swapoff", syscall(SYS_swapoff, "/tmp/x"));
    report("acct", syscall(SYS_acct, NULL));
    report("quotactl", syscall(SYS_quotactl, 0, NULL, 0, NULL));
    report("getpid", syscall(SYS_getpid));
    pid_t child = fork();
    if (child == 0) _exit(0);
    report("fork", child);
    if (child > 0) waitpid(child, NULL, 0);
    in_child("x32", x32_getpid);
    in_child("i386", i386_getpid);
    return 0;
}

// Is fd N open? ("fd=open" / "fd=closed")
static int check_fd(int fd) {
    printf("fd%d=%s\n", fd, fcntl(fd, F_GETFD) >= 0 ? "open" : "closed");
    return 0;
}

static int connect_to(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { report("socket", -1); return 0; }
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &address.sin_addr);
    report("connect", connect(fd, (struct sockaddr *)&address, sizeof address));
    close(fd);
    return 0;
}

// Starts a process that escapes into its own session and double-forks,
// then prints its pid and returns (the job ends with it still running).
static int escape(void) {
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (fork() == 0) {
            for (;;) pause();
        }
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("escaped\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: probe syscalls|fd N|connect HOST PORT|escape\n"); return 2; }
    if (strcmp(argv[1], "syscalls") == 0) return syscalls();
    if (strcmp(argv[1], "fd") == 0 && argc > 2) return check_fd(atoi(argv[2]));
    if (strcmp(argv[1], "connect") == 0 && argc > 3) return connect_to(argv[2], atoi(argv[3]));
    if (strcmp(argv[1], "escape") == 0) return escape();
    fprintf(stderr, "unknown probe %s\n", argv[1]);
    return 2;
}
