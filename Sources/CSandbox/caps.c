// caps.c — dropping every capability for good.
//
// Order matters: the securebits and the bounding set need CAP_SETPCAP, so
// they go first; the empty permitted/effective/inheritable sets go last.
// With SECBIT_NOROOT locked, an execve by uid 0 (the job's id inside) no
// longer grants capabilities, and the empty bounding set would cap them anyway.
#include "internal.h"

#include <errno.h>
#include <sys/prctl.h>
#include <linux/securebits.h>

int csb_drop_capabilities(struct csb_child_ctx *_Nonnull ctx) {
    const unsigned bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                          SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                          SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (cap_set_secbits(bits) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "lock the securebits", NULL);
        return errno;
    }
    for (int cap = 0; cap <= ctx->cap_last; cap++) {
        if (cap_drop_bound((cap_value_t)cap) != 0 && errno != EINVAL) {
            csb_msg(ctx->message, sizeof ctx->message, "drop a capability from the bounding set", NULL);
            return errno;
        }
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
