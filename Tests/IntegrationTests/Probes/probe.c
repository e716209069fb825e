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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <linux/nsfs.h>
#include <sys/prctl.h>
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

// The default filter itself, not the sandbox around it: run on the host by
// root (every capability), each call in its own child with arguments the
// kernel rejects harmlessly (bad magic, bad flags, missing paths, bad fds)
// once past its capability check. `filtered none` prints what the kernel
// says without a filter; `filtered FILE` installs the BPF program in FILE
// first, so that only the filter can turn an answer into EPERM.
struct call {
    const char *name;
    long (*run)(void);
};

static long c_mount(void) { return mount(NULL, NULL, NULL, 0, NULL); }
static long c_umount2(void) { return umount2("/nonexistent-syft-probe", 0); }
static long c_pivot_root(void) { return syscall(SYS_pivot_root, "/nonexistent-syft-a", "/nonexistent-syft-b"); }
static long c_chroot(void) { return chroot("/nonexistent-syft-probe"); }
static long c_unshare_ns(void) { return unshare(CLONE_NEWNS); }
static long c_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static long c_setns(void) { return setns(-1, 0); }
static long c_clone_newns(void) {
    long rc = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);
    if (rc == 0) _exit(0);
    return rc;
}
static long c_clone3(void) {
    struct clone_args args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    long rc = syscall(SYS_clone3, &args, sizeof args);
    if (rc == 0) _exit(0);
    return rc;
}
static long c_keyctl(void) { return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -999, 0, 0, 0); }
static long c_add_key(void) { return syscall(SYS_add_key, "user", "syft-probe", "x", 1, -999); }
static long c_request_key(void) { return syscall(SYS_request_key, "user", "syft-probe-none", NULL, 0); }
static long c_bpf(void) { return syscall(SYS_bpf, -1, NULL, 0); }
static long c_perf_event_open(void) { return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0); }
static long c_userfaultfd(void) { return syscall(SYS_userfaultfd, ~0); }
static long c_open_by_handle_at(void) { return syscall(SYS_open_by_handle_at, -1, NULL, 0); }
static long c_name_to_handle_at(void) { return syscall(SYS_name_to_handle_at, AT_FDCWD, "/nonexistent-syft-probe", NULL, NULL, 0); }
static long c_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, NULL, 0xffff0000ul); }
static long c_kexec_file_load(void) { return syscall(SYS_kexec_file_load, -1, -1, 0, NULL, ~0ul); }
static long c_init_module(void) { return syscall(SYS_init_module, NULL, 0, ""); }
static long c_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
static long c_delete_module(void) { return syscall(SYS_delete_module, "syft_probe_none", 0); }
static long c_io_uring_setup(void) { char params[120] = {0}; return syscall(SYS_io_uring_setup, 0, params); }
static long c_io_uring_enter(void) { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0); }
static long c_io_uring_register(void) { return syscall(SYS_io_uring_register, -1, 0, NULL, 0); }
static long c_ptrace(void) { return syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 0x3fffffff, NULL, NULL); }
static long c_process_vm_readv(void) { return syscall(SYS_process_vm_readv, 0x3fffffff, NULL, 0, NULL, 0, 0); }
static long c_process_vm_writev(void) { return syscall(SYS_process_vm_writev, 0x3fffffff, NULL, 0, NULL, 0, 0); }
static long c_reboot(void) { return syscall(SYS_reboot, 0, 0, 0, NULL); }
static long c_swapon(void) { return syscall(SYS_swapon, "/nonexistent-syft-probe", 0); }
static long c_swapoff(void) { return syscall(SYS_swapoff, "/nonexistent-syft-probe"); }
static long c_acct(void) { return syscall(SYS_acct, "/nonexistent-syft-probe/x"); }
static long c_quotactl(void) { return syscall(SYS_quotactl, 0, "/nonexistent-syft-probe", 0, NULL); }
static long c_fsopen(void) { return syscall(SYS_fsopen, "syft-probe-fs", 0); }
static long c_fsconfig(void) { return syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0); }
static long c_fsmount(void) { return syscall(SYS_fsmount, -1, 0, 0); }
static long c_move_mount(void) { return syscall(SYS_move_mount, -1, "", -1, "", 0); }
static long c_open_tree(void) { return syscall(SYS_open_tree, -1, "", ~0u); }
static long c_mount_setattr(void) { return syscall(SYS_mount_setattr, -1, "", 0, NULL, 0); }
static long c_fspick(void) { return syscall(SYS_fspick, -1, "", 0); }
static long c_getpid(void) { return syscall(SYS_getpid); }
static long c_x32(void) { return syscall(0x40000000 | SYS_getpid); }
static long c_i386(void) {
    long rc;
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20) : "memory");
    if (rc < 0) { errno = (int)-rc; return -1; }
    return rc;
}

static const struct call calls[] = {
    {"mount", c_mount}, {"umount2", c_umount2}, {"pivot_root", c_pivot_root}, {"chroot", c_chroot},
    {"unshare_ns", c_unshare_ns}, {"unshare_user", c_unshare_user}, {"setns", c_setns},
    {"clone_newns", c_clone_newns}, {"clone3", c_clone3}, {"keyctl", c_keyctl}, {"add_key", c_add_key},
    {"request_key", c_request_key}, {"bpf", c_bpf}, {"perf_event_open", c_perf_event_open},
    {"userfaultfd", c_userfaultfd}, {"open_by_handle_at", c_open_by_handle_at},
    {"name_to_handle_at", c_name_to_handle_at}, {"kexec_load", c_kexec_load}, {"kexec_file_load", c_kexec_file_load},
    {"init_module", c_init_module}, {"finit_module", c_finit_module}, {"delete_module", c_delete_module},
    {"io_uring_setup", c_io_uring_setup}, {"io_uring_enter", c_io_uring_enter},
    {"io_uring_register", c_io_uring_register}, {"ptrace", c_ptrace}, {"process_vm_readv", c_process_vm_readv},
    {"process_vm_writev", c_process_vm_writev}, {"reboot", c_reboot}, {"swapon", c_swapon}, {"swapoff", c_swapoff},
    {"acct", c_acct}, {"quotactl", c_quotactl}, {"fsopen", c_fsopen}, {"fsconfig", c_fsconfig},
    {"fsmount", c_fsmount}, {"move_mount", c_move_mount}, {"open_tree", c_open_tree},
    {"mount_setattr", c_mount_setattr}, {"fspick", c_fspick}, {"getpid", c_getpid}, {"x32", c_x32}, {"i386", c_i386},
};

static int filtered(const char *program) {
    if (strcmp(program, "none") != 0) {
        static unsigned char bytes[1 << 20];
        FILE *file = fopen(program, "rb");
        if (!file) { perror(program); return 2; }
        size_t length = fread(bytes, 1, sizeof bytes, file);
        fclose(file);
        struct sock_fprog filter = {.len = (unsigned short)(length / sizeof(struct sock_filter)),
                                    .filter = (struct sock_filter *)bytes};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) != 0) {
            perror("seccomp");
            return 2;
        }
    }
    for (size_t index = 0; index < sizeof calls / sizeof calls[0]; index++) {
        int pipe_ends[2];
        if (pipe(pipe_ends) != 0) return 2;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(pipe_ends[0]);
            errno = 0;
            long rc = calls[index].run();
            const char *answer = rc >= 0 ? "ok" : (strerrorname_np(errno) ? strerrorname_np(errno) : "unknown");
            if (write(pipe_ends[1], answer, strlen(answer)) < 0) _exit(3);
            _exit(0);
        }
        close(pipe_ends[1]);
        char answer[64] = {0};
        ssize_t length = read(pipe_ends[0], answer, sizeof answer - 1);
        close(pipe_ends[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) printf("%s=killed:%s\n", calls[index].name, sigabbrev_np(WTERMSIG(status)));
        else printf("%s=%s\n", calls[index].name, length > 0 ? answer : "none");
    }
    return 0;
}

// Executes PROGRAM (argv) with the system call `nr` answering `error`.
static int with_syscall_failing(int nr, int error, char **argv) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)error),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog filter = {.len = sizeof code / sizeof code[0], .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) != 0) {
        perror("seccomp");
        return 2;
    }
    execv(argv[0], argv);
    perror(argv[0]);
    return 2;
}

// `noclone3 PROGRAM ARGS...`: executes PROGRAM with clone3 answering
// ENOSYS, as container runtimes' seccomp profiles make it.
static int without_clone3(char **argv) { return with_syscall_failing(SYS_clone3, ENOSYS, argv); }

// `noexecveat PROGRAM ARGS...`: executes PROGRAM with execveat answering
// EACCES (the runner starts its sandboxes' init with it).
static int without_execveat(char **argv) { return with_syscall_failing(SYS_execveat, EACCES, argv); }

/// `init-plan PLAN BINARY`: plays the runner's side of a sandbox's start
/// against BINARY executed as "syft-sandbox-init" (no namespaces: the init
/// only has to reach its plan): sends the go-ahead with PLAN as the plan and
/// this process's stdout and stderr, then prints the init's exit status and
/// the message of the failure record it wrote ("status=N", "message=...").
static int init_plan(const char *plan_path, const char *binary) {
    int sync[2], error_pipe[2];
    int plan = open(plan_path, O_RDONLY | O_CLOEXEC);
    if (plan < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0 ||
        pipe2(error_pipe, O_CLOEXEC) != 0) { perror("init-plan"); return 2; }
    pid_t pid = fork();
    if (pid == 0) {
        int child_sync = dup(sync[1]), child_error = dup(error_pipe[1]); // not close-on-exec
        char sync_text[16], error_text[16];
        snprintf(sync_text, sizeof sync_text, "%d", child_sync);
        snprintf(error_text, sizeof error_text, "%d", child_error);
        char *args[] = {"syft-sandbox-init", sync_text, error_text, "0", NULL}; // no namespaces to make
        execv(binary, args);
        _exit(3);
    }
    close(sync[1]);
    close(error_pipe[1]);
    int fds[] = {plan, 1, 2};
    char control[CMSG_SPACE(sizeof fds)];
    memset(control, 0, sizeof control);
    char tag = 'G';
    struct iovec iov = {.iov_base = &tag, .iov_len = 1};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (sendmsg(sync[0], &message, 0) != 1) { perror("sendmsg"); return 2; }
    // struct csb_error: stage, errno, then a 240-byte message.
    char record[8 + 240];
    memset(record, 0, sizeof record);
    ssize_t n = read(error_pipe[0], record, sizeof record);
    int status;
    waitpid(pid, &status, 0);
    printf("status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    record[sizeof record - 1] = '\0';
    printf("record=%zd\nmessage=%s\n", n, n > 8 ? record + 8 : "");
    return 0;
}

/// `reaper PROGRAM ARGS...`: runs PROGRAM with this process as a child
/// subreaper, so that whatever PROGRAM leaves behind becomes a child of
/// this one. Prints PROGRAM's status, how many orphans ended within 5 s,
/// and whether one was still running then.
static int reaper(char **argv) {
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) { perror("subreaper"); return 2; }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    int ended = 0;
    for (int i = 0; i < 500; i++) {
        pid_t orphan = waitpid(-1, NULL, WNOHANG);
        if (orphan > 0) { ended++; continue; }
        if (orphan < 0) break; // ECHILD: none left
        usleep(10000);
    }
    // 0: a child is still running; -1 (ECHILD): none is.
    int lingering = waitpid(-1, NULL, WNOHANG) == 0;
    printf("orphans=%d\nlingering=%d\n", ended, lingering);
    return 0;
}

/// Who owns this process's network namespace: its own user namespace
/// ("own"), or one outside it ("outside": NS_GET_USERNS answers EPERM for
/// a user namespace beyond the caller's scope). Also prints the namespace.
static int netns_owner(void) {
    int net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    struct stat own, owner, netns;
    if (net < 0 || fstat(net, &netns) != 0 || stat("/proc/self/ns/user", &own) != 0) { perror("ns"); return 2; }
    printf("netns=%llu\n", (unsigned long long)netns.st_ino);
    int user = ioctl(net, NS_GET_USERNS);
    if (user < 0) {
        printf("netns-owner=%s\n", errno == EPERM ? "outside" : strerror(errno));
        return 0;
    }
    if (fstat(user, &owner) != 0) { perror("fstat"); return 2; }
    printf("netns-owner=%s\n", owner.st_ino == own.st_ino ? "own" : "other");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: probe syscalls|fd N|connect HOST PORT|escape\n"); return 2; }
    if (strcmp(argv[1], "syscalls") == 0) return syscalls();
    if (strcmp(argv[1], "fd") == 0 && argc > 2) return check_fd(atoi(argv[2]));
    if (strcmp(argv[1], "connect") == 0 && argc > 3) return connect_to(argv[2], atoi(argv[3]));
    if (strcmp(argv[1], "escape") == 0) return escape();
    if (strcmp(argv[1], "filtered") == 0 && argc > 2) return filtered(argv[2]);
    if (strcmp(argv[1], "noclone3") == 0 && argc > 2) return without_clone3(argv + 2);
    if (strcmp(argv[1], "noexecveat") == 0 && argc > 2) return without_execveat(argv + 2);
    if (strcmp(argv[1], "netns-owner") == 0) return netns_owner();
    if (strcmp(argv[1], "reaper") == 0 && argc > 2) return reaper(argv + 2);
    if (strcmp(argv[1], "init-plan") == 0 && argc > 3) return init_plan(argv[2], argv[3]);
    fprintf(stderr, "unknown probe %s\n", argv[1]);
    return 2;
}
