// seccomp_load.c — loading the filter compiled in the parent.
//
// libseccomp allocates while it loads, so the child installs the prepared
// classic-BPF program with the raw seccomp(2) call, after no_new_privs.
#include "internal.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int csb_job_set_no_new_privs(struct csb_child_ctx *_Nonnull ctx) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "set no_new_privs", NULL);
        return errno;
    }
    return 0;
}

int csb_job_load_seccomp(struct csb_child_ctx *_Nonnull ctx) {
    const struct csb_bpf *bpf = ctx->config->seccomp;
    if (bpf->filter == NULL || bpf->length == 0) {
        csb_msg(ctx->message, sizeof ctx->message, "no seccomp program was prepared", NULL);
        return EINVAL;
    }
    struct sock_fprog program = {.len = bpf->length, .filter = (struct sock_filter *)bpf->filter};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "load the seccomp filter", NULL);
        return errno;
    }
    return 0;
}
