// proc.c — the sandbox's /proc: a procfs of its PID namespace whose kernel
// knobs are read-only and whose files about the host's kernel are hidden
// (the paths Docker and runc treat so by default).
//
// Nothing of it depends on the plan, and it creates no file, so PID 1 makes
// it before the plan arrives, while it would wait anyway
// (csb_child_prepare_proc): on top of its own /proc, in its private mount
// namespace. The plan's proc mount then moves it, masks and all, into the
// new root, or makes a fresh one the same way when there is none (it
// could not be made then, or the mount asks for other attributes).
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

_Static_assert(CSB_PROC_ATTR == (CSB_ATTR_NOSUID | CSB_ATTR_NODEV | CSB_ATTR_NOEXEC), "the prepared /proc's attributes");

/// Made read-only mounts of their own: writing a sysctl, the SysRq trigger,
/// an IRQ's affinity, a bus's settings or binfmt_misc needs none of a job.
static const char *const read_only_paths[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};

/// Hidden: the host's memory and kernel log, its keys, symbols and timers,
/// its page tables' statistics and its hardware.
static const char *const hidden_paths[] = {
    "kcore", "kmsg", "keys", "timer_list", "sched_debug", "latency_stats", "acpi", "scsi", "asound",
    "kallsyms", "kpagecount", "kpageflags", "kpagecgroup", "vmallocinfo", "pagetypeinfo",
};

/// A new procfs instance with `attr`, attached on `target_fd`, then its
/// knobs made read-only and the host's files hidden: its root (the mount,
/// attached) in `*root_out`. What failed goes to `message`; a failure after
/// the attach leaves that procfs where it is (the sandbox does not start
/// then, and before the plan it only covers PID 1's own /proc).
static int mount_proc(int target_fd, uint32_t attr, char *_Nonnull message, size_t size, int *_Nonnull root_out) {
    int root = -1, error = 0;
    int fs = fsopen("proc", FSOPEN_CLOEXEC);
    if (fs < 0) error = errno;
    if (error == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) error = errno;
    if (error == 0) {
        root = fsmount(fs, FSMOUNT_CLOEXEC, attr);
        if (root < 0) error = errno;
    }
    if (fs >= 0) close(fs);
    if (error == 0) error = csb_mount_attach(root, target_fd);
    if (error != 0) {
        csb_msg(message, size, "mount a procfs", NULL);
        if (root >= 0) close(root);
        return error;
    }
    for (size_t i = 0; i < sizeof read_only_paths / sizeof read_only_paths[0] && error == 0; i++) {
        error = csb_make_read_only(root, read_only_paths[i], attr);
        if (error != 0) csb_msg(message, size, "make /proc/", read_only_paths[i], " read-only", NULL);
    }
    struct csb_masks masks;
    csb_masks_init(&masks, error == 0 ? csb_openat2(AT_FDCWD, "/dev/null", O_PATH | O_CLOEXEC,
                                                    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
                                      : -1);
    if (error == 0 && masks.source_fd < 0) {
        error = errno;
        csb_msg(message, size, "open /dev/null to hide /proc's host files with", NULL);
    }
    for (size_t i = 0; i < sizeof hidden_paths / sizeof hidden_paths[0] && error == 0; i++) {
        error = csb_mask(root, hidden_paths[i], &masks);
        if (error != 0) csb_msg(message, size, "hide /proc/", hidden_paths[i], NULL);
    }
    csb_masks_close(&masks);
    if (masks.source_fd >= 0) close(masks.source_fd);
    if (error != 0) {
        close(root);
        return error;
    }
    *root_out = root;
    return 0;
}

int csb_child_prepare_proc(struct csb_child_ctx *_Nonnull ctx) {
    // Only as PID 1 of its own PID namespace, in the mount namespace it
    // has just made: an init executed by hand in the host's namespaces
    // (as root) must not touch the host's mounts.
    if ((ctx->unshare_flags & CLONE_NEWNS) == 0 || getpid() != 1) return 0;
    // Nothing mounted here may propagate back to the host.
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return 0;
    ctx->mounts_private = true;
    int target = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (target < 0) return 0;
    char ignored[CSB_ERROR_MESSAGE_MAX];
    int root;
    if (mount_proc(target, CSB_PROC_ATTR, ignored, sizeof ignored, &root) == 0) {
        ctx->prepared_proc_fd = root;
        ctx->proc_prepared = true;
    }
    close(target);
    return 0;
}

int csb_proc_attach(struct csb_child_ctx *_Nonnull ctx, int target_fd, uint32_t attr) {
    if (ctx->proc_prepared && attr == CSB_PROC_ATTR) {
        ctx->proc_prepared = false;
        int error = csb_mount_attach(ctx->prepared_proc_fd, target_fd); // moved, with its mounts
        close(ctx->prepared_proc_fd);
        ctx->prepared_proc_fd = -1;
        if (error == 0) return 0;
    }
    int root;
    int error = mount_proc(target_fd, attr, ctx->message, sizeof ctx->message, &root);
    if (error == 0) close(root);
    return error;
}

void csb_proc_forget_prepared(struct csb_child_ctx *_Nonnull ctx) {
    if (!ctx->proc_prepared) return;
    ctx->proc_prepared = false;
    close(ctx->prepared_proc_fd);
    ctx->prepared_proc_fd = -1;
}
