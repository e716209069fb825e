// limits.c — rlimits of the job, set just before exec.
//
// Values come prepared from the parent; a core-dump limit of 0 is part of
// every configuration (a core of a job is a copy of whatever it read).
// Those that depend on the job's cgroup (RLIMIT_AS and RLIMIT_NPROC stand
// in for a missing group; RLIMIT_CPU backs up a group's CPU accounting)
// come with the placement, after the plan.
#include "internal.h"

#include <errno.h>
#include <sys/resource.h>

static const char *_Nonnull rlimit_name(int resource) {
    switch (resource) {
    case RLIMIT_AS: return "RLIMIT_AS";
    case RLIMIT_CORE: return "RLIMIT_CORE";
    case RLIMIT_CPU: return "RLIMIT_CPU";
    case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
    case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
    case RLIMIT_NPROC: return "RLIMIT_NPROC";
    case RLIMIT_STACK: return "RLIMIT_STACK";
    case RLIMIT_MEMLOCK: return "RLIMIT_MEMLOCK";
    default: return "an rlimit";
    }
}

static int set_all(struct csb_child_ctx *_Nonnull ctx, const struct csb_rlimit *_Nullable limits, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const struct csb_rlimit *limit = &limits[i];
        struct rlimit value = {.rlim_cur = limit->soft, .rlim_max = limit->hard};
        if (setrlimit((__rlimit_resource_t)limit->resource, &value) != 0) {
            csb_msg(ctx->message, sizeof ctx->message, "set ", rlimit_name(limit->resource), NULL);
            return errno;
        }
    }
    return 0;
}

int csb_job_set_rlimits(struct csb_child_ctx *_Nonnull ctx) {
    int error = set_all(ctx, ctx->config->rlimits, ctx->config->rlimit_count);
    return error != 0 ? error : set_all(ctx, ctx->placed_rlimits, ctx->placed_rlimit_count);
}
