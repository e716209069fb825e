// seccomp.c — compiling a seccomp profile in the parent.
//
// libseccomp builds the filter (it allocates, so this happens before
// clone); the result is exported as a plain classic-BPF program that the
// child loads with seccomp(2) (seccomp_load.c), shortened where it can be
// by reading it over ranges of syscall numbers (seccomp_ranges.c). Only
// the native ABI is filtered: every other one (i386 through int $0x80,
// x32) hits the bad-architecture action, which kills the process.
#include "internal.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int action_value(uint32_t action, uint32_t errno_ret, uint32_t *_Nonnull out) {
    switch (action) {
    case CSB_SECCOMP_ALLOW: *out = SCMP_ACT_ALLOW; return 0;
    case CSB_SECCOMP_ERRNO: *out = SCMP_ACT_ERRNO(errno_ret & 0xffff); return 0;
    case CSB_SECCOMP_KILL_PROCESS: *out = SCMP_ACT_KILL_PROCESS; return 0;
    case CSB_SECCOMP_KILL_THREAD: *out = SCMP_ACT_KILL_THREAD; return 0;
    case CSB_SECCOMP_TRAP: *out = SCMP_ACT_TRAP; return 0;
    case CSB_SECCOMP_LOG: *out = SCMP_ACT_LOG; return 0;
    default: return EINVAL;
    }
}

/// Adds `rule` (resolved to `number`) to `ctx`.
static int add_rule(scmp_filter_ctx _Nonnull ctx, const struct csb_seccomp_rule *_Nonnull rule, int number,
                    uint32_t default_action, char *_Nonnull message, size_t message_size) {
    uint32_t action;
    if (action_value(rule->action, rule->errno_ret, &action) != 0) {
        snprintf(message, message_size, "rule for %s: unknown action %u", rule->name, rule->action);
        return EINVAL;
    }
    if (action == default_action) return 0; // libseccomp refuses rules that change nothing
    if (rule->arg_count > 6) {
        snprintf(message, message_size, "rule for %s: more than 6 argument conditions", rule->name);
        return EINVAL;
    }
    struct scmp_arg_cmp comparisons[6];
    for (uint32_t i = 0; i < rule->arg_count; i++) {
        const struct csb_seccomp_arg *arg = &rule->args[i];
        if (arg->index > 5 || arg->op < CSB_SECCOMP_OP_NE || arg->op > CSB_SECCOMP_OP_MASKED_EQ) {
            snprintf(message, message_size, "rule for %s: bad argument condition (index %u, op %u)", rule->name,
                     arg->index, arg->op);
            return EINVAL;
        }
        comparisons[i] = (struct scmp_arg_cmp){.arg = arg->index, .op = (enum scmp_compare)arg->op,
                                               .datum_a = arg->value, .datum_b = arg->value_two};
    }
    int rc = seccomp_rule_add_array(ctx, action, number, rule->arg_count, comparisons);
    // The same rule listed twice (Docker's profiles do) is not a conflict.
    if (rc == -EEXIST) return 0;
    if (rc < 0) {
        snprintf(message, message_size, "rule for %s: libseccomp refused it (%s)", rule->name, strerror(-rc));
        return -rc;
    }
    return 0;
}

static int export_program(scmp_filter_ctx _Nonnull ctx, struct csb_bpf *_Nonnull out, char *_Nonnull message,
                          size_t message_size) {
    int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(message, message_size, "memfd_create for the BPF program: %s", strerror(errno));
        return errno;
    }
    int rc = seccomp_export_bpf(ctx, fd);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    // struct sock_filter is 8 bytes; the kernel takes at most 4096 of them.
    if (rc != 0 || size <= 0 || size % 8 != 0 || size / 8 > 4096) {
        snprintf(message, message_size, "export the BPF program (%s)", rc != 0 ? strerror(-rc) : "bad size");
        close(fd);
        return rc != 0 ? -rc : E2BIG;
    }
    void *filter = malloc((size_t)size);
    if (filter == NULL || pread(fd, filter, (size_t)size, 0) != size) {
        snprintf(message, message_size, "read the BPF program back");
        free(filter);
        close(fd);
        return EIO;
    }
    close(fd);
    out->filter = filter;
    out->length = (uint16_t)(size / 8);
    return 0;
}

/// libseccomp's program for the rules of `profile` whose syscall number is
/// resolved in `numbers` (-1: unknown here) — all of them, or (`only`
/// non-NULL) those of the numbers listed there.
static int libseccomp_program(const struct csb_seccomp_profile *_Nonnull profile, const int *_Nonnull numbers,
                              const uint32_t *_Nullable only, size_t only_count, struct csb_bpf *_Nonnull out,
                              char *_Nonnull message, size_t message_size) {
    uint32_t default_action;
    if (action_value(profile->default_action, profile->default_errno, &default_action) != 0) {
        snprintf(message, message_size, "unknown default action %u", profile->default_action);
        return EINVAL;
    }
    scmp_filter_ctx ctx = seccomp_init(default_action);
    if (ctx == NULL) {
        snprintf(message, message_size, "seccomp_init failed");
        return ENOMEM;
    }
    // seccomp_init filters the native ABI only; say what other ABIs get.
    int error = -seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (error != 0) snprintf(message, message_size, "set the bad-architecture action");
    // A binary tree of syscall numbers instead of a linear list: a job's
    // every syscall walks the filter. Best effort (libseccomp >= 2.5).
    if (error == 0) (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    for (size_t i = 0; i < profile->rule_count && error == 0; i++) {
        if (numbers[i] < 0 || (only != NULL && !csb_seccomp_listed((uint32_t)numbers[i], only, only_count))) continue;
        error = add_rule(ctx, &profile->rules[i], numbers[i], default_action, message, message_size);
    }
    if (error == 0) error = export_program(ctx, out, message, message_size);
    seccomp_release(ctx);
    return error;
}

/// The profile's program over ranges of syscall numbers (seccomp_ranges.c):
/// libseccomp's program for the whole profile, read by intervals, and
/// libseccomp's program for the syscalls with argument conditions. ENOTSUP
/// when it cannot be shorter or libseccomp's program has another shape.
static int ranges_program(const struct csb_seccomp_profile *_Nonnull profile, const int *_Nonnull numbers,
                          const struct csb_bpf *_Nonnull full, struct csb_bpf *_Nonnull out) {
    uint32_t *with_arguments = calloc(profile->rule_count + 1, sizeof *with_arguments);
    if (with_arguments == NULL) return ENOMEM;
    size_t count = 0;
    for (size_t i = 0; i < profile->rule_count; i++) {
        if (numbers[i] < 0 || profile->rules[i].arg_count == 0) continue;
        uint32_t number = (uint32_t)numbers[i];
        if (!csb_seccomp_listed(number, with_arguments, count)) with_arguments[count++] = number;
    }
    struct csb_bpf arguments = {0};
    char ignored[256];
    int error = libseccomp_program(profile, numbers, with_arguments, count, &arguments, ignored, sizeof ignored);
    if (error == 0)
        error = csb_seccomp_ranges(full, seccomp_arch_native(), &arguments, with_arguments, count, out);
    csb_bpf_free(&arguments);
    free(with_arguments);
    return error;
}

int csb_seccomp_compile(const struct csb_seccomp_profile *_Nonnull profile, enum csb_seccomp_encoding encoding,
                        struct csb_bpf *_Nonnull out, enum csb_seccomp_encoding *_Nullable used,
                        size_t *_Nullable skipped, char *_Nonnull message, size_t message_size) {
    out->filter = NULL;
    out->length = 0;
    message[0] = '\0';
    if (used != NULL) *used = CSB_SECCOMP_LIBSECCOMP;
    int *numbers = calloc(profile->rule_count + 1, sizeof *numbers);
    if (numbers == NULL) {
        snprintf(message, message_size, "out of memory");
        return ENOMEM;
    }
    size_t skipped_count = 0;
    for (size_t i = 0; i < profile->rule_count; i++) {
        int number = seccomp_syscall_resolve_name(profile->rules[i].name);
        // Not a syscall of this architecture (or newer than libseccomp): skipped.
        numbers[i] = number == __NR_SCMP_ERROR || number < 0 ? -1 : number;
        if (numbers[i] < 0) skipped_count++;
    }
    if (skipped != NULL) *skipped = skipped_count;
    struct csb_bpf full = {0};
    int error = libseccomp_program(profile, numbers, NULL, 0, &full, message, message_size);
    struct csb_bpf ranges = {0};
    if (error == 0 && encoding == CSB_SECCOMP_RANGES && ranges_program(profile, numbers, &full, &ranges) == 0) {
        csb_bpf_free(&full);
        *out = ranges;
        if (used != NULL) *used = CSB_SECCOMP_RANGES;
    } else if (error == 0) {
        *out = full;
    }
    free(numbers);
    return error;
}

void csb_bpf_free(struct csb_bpf *_Nonnull bpf) {
    free(bpf->filter);
    bpf->filter = NULL;
    bpf->length = 0;
}
