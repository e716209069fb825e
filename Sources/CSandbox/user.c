// user.c — the user namespace: id maps, idmapped mounts, becoming root inside.
//
// The sandbox's uid/gid 0 map to one unprivileged host id. Run as root, that
// is a dedicated id (never 0); run unprivileged, it is the caller's own id,
// the only mapping an unprivileged writer may set.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int write_proc_file(pid_t pid, const char *_Nonnull name, const char *_Nonnull content,
                           char *_Nonnull message, size_t message_size) {
    char path[64], pid_text[24];
    csb_format_u64(pid_text, sizeof pid_text, (uint64_t)pid, 10);
    csb_msg(path, sizeof path, "/proc/", pid_text, "/", name, NULL);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        int error = errno;
        csb_msg(message, message_size, "open ", path, NULL);
        return error;
    }
    size_t length = strlen(content);
    ssize_t written = write(fd, content, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : EIO);
    close(fd);
    if (error != 0) csb_msg(message, message_size, "write '", content, "' to ", path, NULL);
    return error;
}

/// Parent side: maps the child's 0 to the host ids. `deny_setgroups` is
/// required of an unprivileged writer; a privileged one leaves setgroups
/// allowed so the child can drop the supplementary groups it inherited.
int csb_write_id_maps(pid_t pid, uint32_t host_uid, uint32_t host_gid, bool deny_setgroups,
                      char *_Nonnull message, size_t message_size) {
    char line[48], id[24];
    csb_format_u64(id, sizeof id, host_uid, 10);
    csb_msg(line, sizeof line, "0 ", id, " 1\n", NULL);
    int error = write_proc_file(pid, "uid_map", line, message, message_size);
    if (error != 0) return error;
    if (deny_setgroups) {
        error = write_proc_file(pid, "setgroups", "deny", message, message_size);
        if (error != 0) return error;
    }
    csb_format_u64(id, sizeof id, host_gid, 10);
    csb_msg(line, sizeof line, "0 ", id, " 1\n", NULL);
    return write_proc_file(pid, "gid_map", line, message, message_size);
}

/// Parent side: a detached copy of `source` whose ownership is seen through
/// `userns_fd`'s mapping, so files the invoking root owns (even mode 0600)
/// belong to the sandbox's root. Needs CAP_SYS_ADMIN over the filesystem,
/// i.e. a root parent; the caller falls back to a plain bind otherwise.
int csb_make_idmapped_tree(const char *_Nonnull source, int userns_fd, uint32_t attr, bool recursive,
                           int *_Nonnull tree_fd) {
    int source_fd = csb_openat2(AT_FDCWD, source, O_PATH | O_CLOEXEC,
                                RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (source_fd < 0) return errno;
    unsigned recursion = recursive ? AT_RECURSIVE : 0;
    int fd = open_tree(source_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | recursion);
    int error = fd < 0 ? errno : 0;
    close(source_fd);
    if (error != 0) return error;
    struct mount_attr mattr;
    memset(&mattr, 0, sizeof mattr);
    mattr.attr_set = MOUNT_ATTR_IDMAP | attr;
    mattr.userns_fd = (uint64_t)userns_fd;
    if (mount_setattr(fd, "", AT_EMPTY_PATH | recursion, &mattr, sizeof mattr) != 0) {
        error = errno;
        close(fd);
        return error;
    }
    *tree_fd = fd;
    return 0;
}

/// Child side, after the parent wrote the maps: become uid/gid 0 of the new
/// namespace (the unprivileged host id), without the supplementary groups a
/// root parent had (host gid 0 among them).
///
/// Raw syscalls on purpose: glibc's setresuid/setgroups in a process it
/// believes multithreaded signal every other thread to change their ids
/// too, and wait for them; in the cloned child those threads do not exist.
int csb_child_become_root(struct csb_child_ctx *_Nonnull ctx) {
    if (ctx->became_root) return 0;
    if (ctx->parent_is_root && syscall(SYS_setgroups, 0, NULL) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "setgroups(0) inside the user namespace", NULL);
        return errno;
    }
    if (syscall(SYS_setresgid, 0, 0, 0) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "setresgid(0) inside the user namespace", NULL);
        return errno;
    }
    if (syscall(SYS_setresuid, 0, 0, 0) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "setresuid(0) inside the user namespace", NULL);
        return errno;
    }
    ctx->became_root = true;
    return 0;
}
