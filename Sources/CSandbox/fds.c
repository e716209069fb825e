// fds.c — closing every inherited descriptor but a known few.
//
// A sandbox cloned while another one is being set up inherits the other's
// pipes and sockets (they are close-on-exec, but PID 1 never execs), so
// the child closes everything it does not own as its first step (where
// the sandbox starts by executing its init, the short-lived child that
// executes it does, before the exec).
#include "internal.h"

#include <errno.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

/// errno is not written (x86-64): the child that executes the sandbox's
/// init calls this while it shares the memory, and the TLS, of a running
/// thread of the caller.
static int close_range_raw(unsigned first, unsigned last) {
    if (first > last) return 0;
#if defined(__x86_64__)
    long result = csb_raw_syscall(SYS_close_range, first, last, 0, 0, 0);
    return result < 0 ? (int)-result : 0;
#else
    if (syscall(SYS_close_range, first, last, 0) != 0) return errno;
    return 0;
#endif
}

/// Closes every fd >= `first` that is not in `keep` (entries below
/// `first` ignored).
int csb_close_fds_from_except(unsigned first, const int *_Nonnull keep, size_t count) {
    // Sort a copy (insertion sort: a handful of entries).
    int sorted[CSB_MAX_IDMAPPED + 8];
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (keep[i] < 0 || (unsigned)keep[i] < first) continue;
        if (n == sizeof sorted / sizeof sorted[0]) return E2BIG; // never close one that was to be kept
        size_t j = n++;
        while (j > 0 && sorted[j - 1] > keep[i]) { sorted[j] = sorted[j - 1]; j--; }
        sorted[j] = keep[i];
    }
    unsigned next = first;
    for (size_t i = 0; i < n; i++) {
        unsigned fd = (unsigned)sorted[i];
        if (fd < next) continue; // duplicate
        int rc = close_range_raw(next, fd - 1);
        if (rc != 0) return rc;
        next = fd + 1;
    }
    return close_range_raw(next, ~0U);
}

/// Closes every fd >= 3 that is not in `keep` (negative entries ignored).
int csb_close_fds_except(const int *_Nonnull keep, size_t count) {
    return csb_close_fds_from_except(3, keep, count);
}
