// caps.c — dropping every capability for good.
//
// Order matters: the securebits and the bounding set need CAP_SETPCAP, so
// they go first (csb_limit_capabilities: PID 1 does it before its go-ahead,
// and the job inherits it); the empty permitted/effective/
// inheritable sets go last.
// With SECBIT_NOROOT locked, an execve by uid 0 (the job's id inside) no
// longer grants capabilities, and the empty bounding set would cap them anyway.
#include "internal.h"

#include <errno.h>
#include <sys/prctl.h>
#include <linux/securebits.h>

int csb_limit_capabilities(struct csb_child_ctx *_Nonnull ctx) {
    const unsigned bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                          SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                          SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (cap_set_secbits(bits) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "lock the securebits", NULL);
        return errno;
    }
    // Up to the kernel's last capability: EINVAL past it (PID 1 limits
    // itself before the plan arrives).
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0) == 0) continue;
        if (errno == EINVAL) break;
        csb_msg(ctx->message, sizeof ctx->message, "drop a capability from the bounding set", NULL);
        return errno;
    }
    ctx->bounding_set_dropped = true;
    return 0;
}

int csb_last_capability(void) {
    static int cached = -1;
    int last = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (last >= 0) return last;
    // The highest number the bounding set answers for (capability 0
    // always exists): a binary search, six prctl calls.
    int low = 0, high = 63;
    while (low < high) {
        int middle = (low + high + 1) / 2;
        if (prctl(PR_CAPBSET_READ, (unsigned long)middle, 0, 0, 0) >= 0) low = middle;
        else high = middle - 1;
    }
    __atomic_store_n(&cached, low, __ATOMIC_RELAXED);
    return low;
}

int csb_drop_capabilities(struct csb_child_ctx *_Nonnull ctx) {
    if (!ctx->bounding_set_dropped) {
        int error = csb_limit_capabilities(ctx);
        if (error != 0) return error;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "clear the ambient capabilities", NULL);
        return errno;
    }
    if (cap_set_proc(ctx->empty_caps) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "clear the permitted, effective and inheritable sets", NULL);
        return errno;
    }
    return 0;
}
