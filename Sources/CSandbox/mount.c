// mount.c — assembling the new root from the mount plan, then pivot_root.
//
// Every mount is made with the fd-based mount API (open_tree, fsopen,
// fsmount, mount_setattr, move_mount). Targets are opened beneath the new
// root with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, sources with
// RESOLVE_NO_SYMLINKS: a symlink in a job folder, a rootfs or on a host path
// can make a mount fail, never redirect it onto the host.
//
// Layout while assembling, private to the child's mount namespace:
//   <staging>/            a tmpfs hiding the host directory
//   <staging>/root/       a tmpfs: the new root
//   <staging>/.layers/N/  overlay layers for binds that need mount points
//   <staging>/.layers/spread-N/  a bind whose entries are laid out one by
//                         one in the root instead (mount_spread.c)
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
#define NO_LINKS (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

// MARK: - Paths

static const char *_Nonnull display(const char *_Nonnull target, char *_Nonnull buffer, size_t size) {
    csb_msg(buffer, size, "/", target, NULL);
    return buffer;
}

static void set_message(struct csb_assembly *_Nonnull a, const char *_Nonnull what, const char *_Nonnull target) {
    char shown[CSB_PATH_MAX];
    csb_msg(a->ctx->message, sizeof a->ctx->message, what, display(target, shown, sizeof shown), NULL);
}

/// Splits "a/b/c" into "a/b" and "c" in `buffer` (the parent may be "").
static void split_parent(const char *_Nonnull path, char *_Nonnull buffer, size_t size,
                         const char *_Nonnull *_Nonnull parent, const char *_Nonnull *_Nonnull name) {
    csb_msg(buffer, size, path, NULL);
    char *slash = strrchr(buffer, '/');
    if (slash == NULL) {
        *parent = "";
        *name = buffer;
    } else {
        *slash = '\0';
        *parent = buffer;
        *name = slash + 1;
    }
}

/// Opens (creating missing directories with `mode`) the directory `path`
/// beneath `dirfd`, never following a symlink. In one open when it is all
/// there (the common case); else the deepest folder of it that exists is
/// found from the end and the rest made below it, one mkdirat and one open
/// per missing component (a fresh root's targets mostly miss one or two).
int csb_mount_open_dirs(int dirfd, const char *_Nonnull path, mode_t mode, int *_Nonnull out) {
    const int flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    int whole = csb_openat2(dirfd, *path != '\0' ? path : ".", flags, BENEATH);
    if (whole >= 0) {
        *out = whole;
        return 0;
    }
    if (errno != ENOENT) return errno;
    char buffer[CSB_PATH_MAX];
    size_t length = strlen(path);
    if (length >= sizeof buffer) return ENAMETOOLONG;
    memcpy(buffer, path, length + 1);
    // The deepest existing folder: `base` (dirfd itself, not owned, when
    // none below it exists); what is missing starts at `rest`.
    int base = dirfd;
    size_t rest = 0;
    for (size_t cut = length; cut > 0;) {
        while (cut > 0 && buffer[cut - 1] != '/') cut--; // to the slash before the last tried component
        if (cut == 0) break;
        buffer[cut - 1] = '\0';
        int fd = buffer[0] != '\0' ? csb_openat2(dirfd, buffer, flags, BENEATH) : -1;
        int error = buffer[0] != '\0' ? errno : ENOENT;
        buffer[cut - 1] = '/';
        if (fd >= 0) {
            base = fd;
            rest = cut;
            break;
        }
        if (error != ENOENT) return error;
        cut--;
    }
    char *component = buffer + rest;
    int error = 0;
    while (error == 0 && *component != '\0') {
        char *end = strchr(component, '/');
        if (end != NULL) *end = '\0';
        if (*component != '\0') {
            int next = -1;
            if (mkdirat(base, component, mode) != 0 && errno != EEXIST) error = errno;
            if (error == 0) {
                next = csb_openat2(base, component, flags, BENEATH);
                if (next < 0) error = errno;
            }
            if (base != dirfd) close(base);
            base = next;
        }
        if (end == NULL) break;
        component = end + 1;
    }
    if (error != 0) return error;
    if (base == dirfd) { // nothing but separators
        base = csb_openat2(dirfd, ".", flags, BENEATH);
        if (base < 0) return errno;
    }
    *out = base;
    return 0;
}

/// The folder `parent` beneath the root as open_dirs makes it, or the
/// root itself when `parent` is empty. Not to be closed: the assembly
/// keeps the last one for the next target in the same folder.
static int open_parent(struct csb_assembly *_Nonnull a, const char *_Nonnull parent, int *_Nonnull out) {
    if (*parent == '\0') {
        *out = a->root_fd;
        return 0;
    }
    if (a->parent_fd >= 0 && strcmp(a->parent_path, parent) == 0) {
        *out = a->parent_fd;
        return 0;
    }
    int fd, error = csb_mount_open_dirs(a->root_fd, parent, 0755, &fd);
    if (error != 0) return error;
    if (a->parent_fd >= 0) close(a->parent_fd);
    a->parent_fd = fd;
    csb_msg(a->parent_path, sizeof a->parent_path, parent, NULL);
    *out = fd;
    return 0;
}

/// After a mount on `target`: the kept parent folder, if it is `target`
/// or below it, is now hidden by the mount, so it is dropped.
static void forget_parent_under(struct csb_assembly *_Nonnull a, const char *_Nonnull target) {
    if (a->parent_fd < 0) return;
    size_t length = strlen(target);
    if (length == 0 || (strncmp(a->parent_path, target, length) == 0 &&
                        (a->parent_path[length] == '\0' || a->parent_path[length] == '/'))) {
        close(a->parent_fd);
        a->parent_fd = -1;
    }
}

/// Opens the mount target beneath the root: a directory (created when
/// missing) or, for a non-directory source, a file (created empty), in
/// its parent folder (kept, see open_parent). A fresh root mostly lacks
/// the target: csb_mount_make_target makes it first and looks up only
/// what exists already.
int csb_mount_open_target(struct csb_assembly *_Nonnull a, const char *_Nonnull target, bool directory,
                       int *_Nonnull out) {
    char buffer[CSB_PATH_MAX];
    const char *parent, *name;
    split_parent(target, buffer, sizeof buffer, &parent, &name);
    if (*name == '\0') {
        if (directory) return csb_mount_open_dirs(a->root_fd, target, 0755, out); // the root itself
        return EISDIR;
    }
    int parent_fd;
    int error = open_parent(a, parent, &parent_fd);
    if (error != 0) return error;
    return csb_mount_make_target(parent_fd, name, directory, out);
}

/// The target `name` (one component) in the folder `parent_fd`, made
/// first and opened, or opened when it exists: a directory, or an empty
/// file whose creating descriptor is the target itself. Never a symlink
/// (mkdirat and O_EXCL do not follow one; openat2 refuses it).
int csb_mount_make_target(int parent_fd, const char *_Nonnull name, bool directory, int *_Nonnull out) {
    // A failed creation may still leave an existing target to open (on a
    // read-only overlay, mkdirat says EROFS before EEXIST); its error is
    // the one to give when there is none.
    int fd, made;
    if (directory) {
        made = mkdirat(parent_fd, name, 0755) == 0 ? 0 : errno;
        fd = csb_openat2(parent_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC, BENEATH);
    } else {
        fd = openat(parent_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        made = fd < 0 ? errno : 0;
        if (fd < 0) fd = csb_openat2(parent_fd, name, O_PATH | O_CLOEXEC, BENEATH);
    }
    if (fd < 0) return made != 0 && made != EEXIST ? made : errno;
    *out = fd;
    return 0;
}

// MARK: - Mount primitives

int csb_mount_attach(int tree_fd, int target_fd) {
    if (move_mount(tree_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
        return errno;
    return 0;
}

/// attach, onto `target` of the new root.
static int attach_at(struct csb_assembly *_Nonnull a, int tree_fd, int target_fd, const char *_Nonnull target) {
    int error = csb_mount_attach(tree_fd, target_fd);
    if (error == 0) forget_parent_under(a, target);
    return error;
}

static int set_attributes(int tree_fd, uint32_t attr, bool recursive) {
    if (attr == 0) return 0;
    struct mount_attr mattr;
    memset(&mattr, 0, sizeof mattr);
    mattr.attr_set = attr;
    unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    if (mount_setattr(tree_fd, "", flags, &mattr, sizeof mattr) != 0) return errno;
    return 0;
}

/// Appends the kernel's own explanation (fsopen's log) to the message.
static void append_fs_log(struct csb_assembly *_Nonnull a, int fs_fd) {
    char log[160];
    ssize_t length = read(fs_fd, log, sizeof log - 1);
    if (length <= 0) return;
    log[length] = '\0';
    if (log[length - 1] == '\n') log[length - 1] = '\0';
    char joined[CSB_ERROR_MESSAGE_MAX];
    csb_msg(joined, sizeof joined, a->ctx->message, " (kernel: ", log, ")", NULL);
    memcpy(a->ctx->message, joined, sizeof joined);
}

/// A new filesystem instance, configured with key/value pairs (a NULL
/// value sets a flag), returned as a detached mount with `attr`.
static int new_filesystem(struct csb_assembly *_Nonnull a, const char *_Nonnull type,
                          const char *_Nullable const *_Nonnull options, uint32_t attr, int *_Nonnull out) {
    int fs_fd = fsopen(type, FSOPEN_CLOEXEC);
    if (fs_fd < 0) return errno;
    int error = 0;
    for (size_t i = 0; options[i] != NULL && error == 0; i += 2) {
        const char *value = options[i + 1];
        int rc = value != NULL ? fsconfig(fs_fd, FSCONFIG_SET_STRING, options[i], value, 0)
                               : fsconfig(fs_fd, FSCONFIG_SET_FLAG, options[i], NULL, 0);
        if (rc != 0) error = errno;
    }
    if (error == 0 && fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) error = errno;
    int mount_fd = -1;
    if (error == 0) {
        mount_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, attr);
        if (mount_fd < 0) error = errno;
    }
    if (error != 0) append_fs_log(a, fs_fd);
    close(fs_fd);
    if (error == 0) *out = mount_fd;
    return error;
}

/// A detached copy of the current operation's source, opened earlier by
/// csb_child_open_sources.
static int clone_source(struct csb_assembly *_Nonnull a, bool recursive, int *_Nonnull out) {
    int source_fd = a->ctx->source_fds[a->index];
    if (source_fd < 0) return -source_fd;
    int tree = open_tree(source_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
                                            (recursive ? AT_RECURSIVE : 0));
    if (tree < 0) return errno;
    *out = tree;
    return 0;
}

// MARK: - Overlay for missing mount points

/// True when `path` beneath `dir_fd` is a directory, no symlink followed.
bool csb_mount_is_directory(int dir_fd, const char *_Nonnull path) {
    int fd = csb_openat2(dir_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC, BENEATH);
    if (fd < 0) return false;
    close(fd);
    return true;
}

static bool has_all_mount_points(int tree_fd, const struct csb_mount *_Nonnull m) {
    for (size_t i = 0; i < m->mount_point_count; i++)
        if (!csb_mount_is_directory(tree_fd, m->mount_points[i])) return false;
    return true;
}

/// Replaces `*tree_fd` by a read-only overlay: the tree as the lower layer
/// under a layer holding the mount points as empty directories. No upper
/// layer: nothing can be written through it, and the source is untouched.
static int overlay_mount_points(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m,
                                int *_Nonnull tree_fd) {
    char index[16], base[64], lower[80], points[80], lowerdir[200];
    csb_format_u64(index, sizeof index, a->layer_count++, 10);
    csb_msg(base, sizeof base, index, NULL);
    csb_msg(lower, sizeof lower, base, "/lower", NULL);
    csb_msg(points, sizeof points, base, "/points", NULL);
    int lower_fd, points_fd;
    int error = csb_mount_open_dirs(a->layers_fd, lower, 0700, &lower_fd);
    if (error != 0) return error;
    error = csb_mount_attach(*tree_fd, lower_fd);
    close(lower_fd);
    if (error != 0) return error;
    close(*tree_fd);
    *tree_fd = -1;
    error = csb_mount_open_dirs(a->layers_fd, points, 0755, &points_fd);
    if (error != 0) return error;
    for (size_t i = 0; i < m->mount_point_count && error == 0; i++) {
        int fd;
        error = csb_mount_open_dirs(points_fd, m->mount_points[i], 0755, &fd);
        if (error == 0) close(fd);
    }
    close(points_fd);
    if (error != 0) return error;
    // Absolute layer paths: the staging directory is the runner's own
    // (validated to hold no ':' ',' or '\\'), the rest is ours.
    const char *staging = a->ctx->config->staging_dir;
    csb_msg(lowerdir, sizeof lowerdir, staging, "/.layers/", points, ":", staging, "/.layers/", lower, NULL);
    const char *options[] = {"lowerdir", lowerdir, "redirect_dir", "nofollow", "metacopy", "off", NULL, NULL};
    return new_filesystem(a, "overlay", options, m->attr | MOUNT_ATTR_RDONLY, tree_fd);
}

// MARK: - The operations

static int do_bind(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    bool recursive = (m->flags & CSB_BIND_RECURSIVE) != 0;
    int tree = -1, error = 0;
    if ((m->flags & CSB_BIND_IDMAP) != 0 && a->idmapped_used < CSB_MAX_IDMAPPED &&
        a->ctx->idmapped_fds[a->idmapped_used] >= 0) {
        tree = a->ctx->idmapped_fds[a->idmapped_used];
        a->ctx->idmapped_fds[a->idmapped_used] = -1;
    } else {
        error = clone_source(a, recursive, &tree);
    }
    if ((m->flags & CSB_BIND_IDMAP) != 0) a->idmapped_used++;
    if (error != 0) {
        if ((m->flags & CSB_BIND_OPTIONAL) != 0 && (error == ENOENT || error == ENOTDIR)) return 0;
        csb_msg(a->ctx->message, sizeof a->ctx->message, "open bind source ",
                m->source != NULL ? m->source : "(none)", NULL);
        return error;
    }
    struct stat info;
    if (fstat(tree, &info) != 0) error = errno;
    if (error == 0) error = set_attributes(tree, m->attr, recursive);
    if (error == 0 && m->mount_point_count > 0 && !has_all_mount_points(tree, m)) {
        bool spread = false; // laid out in the root (mount_spread.c), or the overlay
        if (S_ISDIR(info.st_mode)) error = csb_mount_spread(a, m, tree, recursive, &spread);
        if (spread) {
            close(tree);
            forget_parent_under(a, m->target);
            return 0;
        }
        if (error == 0) error = overlay_mount_points(a, m, &tree);
    }
    int target = -1;
    if (error == 0) error = csb_mount_open_target(a, m->target, S_ISDIR(info.st_mode), &target);
    if (error == 0) error = attach_at(a, tree, target, m->target);
    if (tree >= 0) close(tree);
    if (target >= 0) close(target);
    if (error == 0 && m->target[0] == '\0') {
        // A mount on the root itself: later targets resolve in the new top mount.
        int fresh = openat(a->staging_fd, "root", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fresh < 0) return errno;
        close(a->root_fd);
        a->root_fd = fresh;
    }
    if (error != 0 && a->ctx->message[0] == '\0') {
        char text[CSB_PATH_MAX];
        csb_msg(text, sizeof text, "bind ", m->source != NULL ? m->source : "", " on ", NULL);
        set_message(a, text, m->target);
    }
    return error;
}

static int mount_new_filesystem(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m,
                                const char *_Nonnull type, const char *_Nullable const *_Nonnull options) {
    int tree = -1, target = -1;
    int error = csb_mount_open_target(a, m->target, true, &target);
    if (error == 0) error = new_filesystem(a, type, options, m->attr, &tree);
    if (error == 0) error = attach_at(a, tree, target, m->target);
    if (tree >= 0) close(tree);
    if (target >= 0) close(target);
    if (error != 0) {
        char saved[CSB_ERROR_MESSAGE_MAX], text[64];
        memcpy(saved, a->ctx->message, sizeof saved);
        csb_msg(text, sizeof text, "mount ", type, " on ", NULL);
        set_message(a, text, m->target);
        if (saved[0] != '\0') {
            char joined[CSB_ERROR_MESSAGE_MAX];
            csb_msg(joined, sizeof joined, a->ctx->message, " ", saved, NULL);
            memcpy(a->ctx->message, joined, sizeof joined);
        }
    }
    return error;
}

static int do_tmpfs(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    char size[24], mode[16];
    csb_format_u64(size, sizeof size, m->size, 10);
    csb_format_u64(mode, sizeof mode, m->mode & 07777, 8);
    const char *options[] = {"mode", mode, m->size > 0 ? "size" : NULL, size, NULL, NULL};
    int error = mount_new_filesystem(a, m, "tmpfs", options);
    if (error != 0 || (m->flags & CSB_TMPFS_EXPORT) == 0) return error;
    // The parent's handle on this filesystem: its root, opened through the
    // new mount (beneath the root, no symlinks).
    struct csb_child_ctx *ctx = a->ctx;
    if (ctx->exported_count >= CSB_MAX_EXPORTS) {
        set_message(a, "too many exported filesystems at ", m->target);
        return E2BIG;
    }
    int root = csb_openat2(a->root_fd, m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC, BENEATH);
    if (root < 0) {
        error = errno;
        set_message(a, "open the new filesystem at ", m->target);
        return error;
    }
    ctx->exported_fds[ctx->exported_count++] = root;
    return 0;
}

/// Binds a path of the new root (e.g. a filesystem mounted earlier in the
/// plan) at a second place.
static int do_rebind(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    const char *source = m->source != NULL ? m->source : "";
    while (*source == '/') source++;
    int from = csb_openat2(a->root_fd, source, O_PATH | O_CLOEXEC, BENEATH), target = -1, tree = -1, error = 0;
    if (from < 0) error = errno;
    struct stat info;
    if (error == 0 && fstat(from, &info) != 0) error = errno;
    if (error == 0) {
        tree = open_tree(from, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0) error = errno;
    }
    if (error == 0) error = set_attributes(tree, m->attr, false);
    if (error == 0) error = csb_mount_open_target(a, m->target, S_ISDIR(info.st_mode), &target);
    if (error == 0) error = attach_at(a, tree, target, m->target);
    if (from >= 0) close(from);
    if (tree >= 0) close(tree);
    if (target >= 0) close(target);
    if (error != 0) {
        char text[CSB_PATH_MAX];
        csb_msg(text, sizeof text, "bind /", source, " on ", NULL);
        set_message(a, text, m->target);
    }
    return error;
}

static int do_write_file(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    char buffer[CSB_PATH_MAX];
    const char *parent, *name;
    split_parent(m->target, buffer, sizeof buffer, &parent, &name);
    int parent_fd, error = open_parent(a, parent, &parent_fd);
    if (error != 0) {
        set_message(a, "create directories for ", m->target);
        return error;
    }
    int fd = openat(parent_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        error = errno;
        set_message(a, "create ", m->target);
        return error;
    }
    size_t done = 0;
    while (done < m->data_length && error == 0) {
        ssize_t n = write(fd, m->data + done, m->data_length - done);
        if (n < 0 && errno != EINTR) error = errno;
        if (n > 0) done += (size_t)n;
    }
    if (error == 0 && fchmod(fd, m->mode & 07777) != 0) error = errno;
    close(fd);
    if (error != 0) set_message(a, "write ", m->target);
    return error;
}

static int do_symlink(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    char buffer[CSB_PATH_MAX];
    const char *parent, *name;
    split_parent(m->target, buffer, sizeof buffer, &parent, &name);
    int parent_fd, error = open_parent(a, parent, &parent_fd);
    if (error == 0 && symlinkat(m->link != NULL ? m->link : "", parent_fd, name) != 0) error = errno;
    if (error != 0) set_message(a, "create symlink ", m->target);
    return error;
}

static int do_directory(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    int fd, error = csb_mount_open_dirs(a->root_fd, m->target, m->mode & 07777, &fd);
    if (error == 0) close(fd);
    else set_message(a, "create directory ", m->target);
    return error;
}

/// Hides an existing path (mask.c); a missing one is fine. The plan's
/// masks share one set: the first of each kind is cloned for the others.
static int do_mask(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    // One descriptor per source path (csb_child_open_sources): a mask with
    // another source than the set's starts a set of its own.
    int source = a->ctx->source_fds[a->index];
    if (a->masks_begun && a->masks.source_fd != source) csb_masks_close(&a->masks);
    if (!a->masks_begun || a->masks.source_fd != source) {
        csb_masks_init(&a->masks, source);
        a->masks_begun = true;
    }
    int error = csb_mask(a->root_fd, m->target, &a->masks);
    if (error == 0) forget_parent_under(a, m->target);
    else set_message(a, "mask ", m->target);
    return error;
}

/// Makes `target` (a path inside an existing mount, e.g. /proc/sys) a
/// read-only mount of its own: bind it onto itself with new attributes.
static int do_read_only(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    int error = csb_make_read_only(a->root_fd, m->target, m->attr);
    if (error == 0) forget_parent_under(a, m->target);
    else set_message(a, "make read-only ", m->target);
    return error;
}

/// The sandbox's /proc (proc.c): the one PID 1 made before the plan, moved
/// here, or a fresh one.
static int do_proc(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    int target = -1;
    int error = csb_mount_open_target(a, m->target, true, &target);
    if (error == 0) error = csb_proc_attach(a->ctx, target, m->attr);
    if (target >= 0) close(target);
    if (error == 0) {
        forget_parent_under(a, m->target);
        return 0;
    }
    char saved[CSB_ERROR_MESSAGE_MAX];
    memcpy(saved, a->ctx->message, sizeof saved);
    set_message(a, "mount proc on ", m->target);
    if (saved[0] != '\0') {
        char joined[CSB_ERROR_MESSAGE_MAX];
        csb_msg(joined, sizeof joined, a->ctx->message, ": ", saved, NULL);
        memcpy(a->ctx->message, joined, sizeof joined);
    }
    return error;
}

static int run_operation(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m) {
    a->ctx->message[0] = '\0';
    switch (m->kind) {
    case CSB_MOUNT_BIND: return do_bind(a, m);
    case CSB_MOUNT_TMPFS: return do_tmpfs(a, m);
    case CSB_MOUNT_PROC: return do_proc(a, m);
    case CSB_MOUNT_DEVPTS: {
        const char *options[] = {"newinstance", NULL, "ptmxmode", "0666", "mode", "0620", NULL, NULL};
        return mount_new_filesystem(a, m, "devpts", options);
    }
    case CSB_MOUNT_MQUEUE: {
        const char *options[] = {NULL, NULL};
        return mount_new_filesystem(a, m, "mqueue", options);
    }
    case CSB_MOUNT_DIR: return do_directory(a, m);
    case CSB_MOUNT_SYMLINK: return do_symlink(a, m);
    case CSB_MOUNT_FILE: return do_write_file(a, m);
    case CSB_MOUNT_MASK: return do_mask(a, m);
    case CSB_MOUNT_READONLY: return do_read_only(a, m);
    case CSB_MOUNT_REBIND: return do_rebind(a, m);
    default:
        set_message(a, "unknown mount operation for ", m->target);
        return EINVAL;
    }
}

// MARK: - Steps

/// Binds and masks clone their source, opened by csb_child_open_sources.
static bool opens_source(const struct csb_mount *_Nonnull m) {
    return m->source != NULL && (m->kind == CSB_MOUNT_BIND || m->kind == CSB_MOUNT_MASK);
}

/// Opens every source path (O_PATH, no symlink anywhere on the path) in
/// the child's own mount namespace, as open_tree requires, and before the
/// child takes the sandbox's unprivileged id (and mounts its staging tmpfs,
/// which may hide them): those of the plan's mounts not opened yet.
int csb_child_open_sources(struct csb_child_ctx *_Nonnull ctx) {
    const struct csb_spawn_config *config = ctx->config;
    if (config->mount_count > CSB_MAX_MOUNTS) {
        csb_msg(ctx->message, sizeof ctx->message, "too many mount operations", NULL);
        return E2BIG;
    }
    for (size_t i = ctx->mounts_opened; i < config->mount_count; i++) {
        const struct csb_mount *m = &config->mounts[i];
        ctx->source_fds[i] = -EINVAL;
        if (!opens_source(m)) continue;
        // One descriptor per path (every /proc mask is /dev/null): open_tree
        // clones from it as often as asked, and nothing closes these one by
        // one (the close of every descriptor before the exec does).
        size_t same = 0;
        while (same < i && !(opens_source(&config->mounts[same]) && strcmp(config->mounts[same].source, m->source) == 0))
            same++;
        if (same < i) {
            ctx->source_fds[i] = ctx->source_fds[same];
            continue;
        }
        int fd = csb_openat2(AT_FDCWD, m->source, O_PATH | O_CLOEXEC, NO_LINKS);
        ctx->source_fds[i] = fd >= 0 ? fd : -errno;
    }
    ctx->mounts_opened = config->mount_count;
    return 0;
}

/// The staging tmpfs and, in it, the root's own small tmpfs.
static int begin_root(struct csb_child_ctx *_Nonnull ctx, struct csb_assembly *_Nonnull a) {
    const struct csb_spawn_config *config = ctx->config;
    // Nothing we mount may propagate back to the host (made so before
    // the plan, unless that failed).
    if (!ctx->mounts_private && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "make / a private mount tree", NULL);
        return errno;
    }
    ctx->mounts_private = true;
    if (mount("tmpfs", config->staging_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=1m") != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "mount the staging tmpfs on ", config->staging_dir, NULL);
        return errno;
    }
    int error = 0;
    a->staging_fd = open(config->staging_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (a->staging_fd < 0) error = errno;
    if (error == 0 && (mkdirat(a->staging_fd, "root", 0755) != 0 || mkdirat(a->staging_fd, ".layers", 0700) != 0))
        error = errno;
    if (error == 0) a->layers_fd = openat(a->staging_fd, ".layers", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (error == 0 && a->layers_fd < 0) error = errno;
    if (error != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "prepare staging directories in ", config->staging_dir, NULL);
        return error;
    }
    // The root itself: a small tmpfs, made read-only after the pivot.
    int root_target = openat(a->staging_fd, "root", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), root_tree = -1;
    const char *root_options[] = {"mode", "0755", "size", "16777216", NULL, NULL};
    error = root_target < 0 ? errno : new_filesystem(a, "tmpfs", root_options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, &root_tree);
    if (error == 0) error = csb_mount_attach(root_tree, root_target);
    if (root_tree >= 0) close(root_tree);
    if (root_target >= 0) close(root_target);
    if (error == 0) a->root_fd = openat(a->staging_fd, "root", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (error == 0 && a->root_fd < 0) error = errno;
    if (error != 0) {
        csb_msg(ctx->message, sizeof ctx->message, "mount the root tmpfs", NULL);
        return error;
    }
    return 0;
}

/// Builds the new root under <staging>/root from the mount plan: the
/// plan's mounts not made yet, up to `assembly.limit` when set (the plan
/// sent ahead: up to its first idmapped bind). The assembly's descriptors
/// stay open in `ctx` until the pivot.
int csb_child_assemble_root(struct csb_child_ctx *_Nonnull ctx) {
    const struct csb_spawn_config *config = ctx->config;
    struct csb_assembly *a = &ctx->assembly;
    a->ctx = ctx;
    if (!a->begun) {
        a->staging_fd = a->root_fd = a->layers_fd = a->parent_fd = -1;
        int error = begin_root(ctx, a);
        if (error != 0) return error;
        a->begun = true;
    }
    size_t end = a->limit > 0 && a->limit < config->mount_count ? a->limit : config->mount_count;
    int error = 0;
    for (; a->made < end && error == 0; a->made++) {
        a->index = a->made;
        error = run_operation(a, &config->mounts[a->made]);
    }
    return error;
}

/// Makes <staging>/root the root (pivot_root(".", ".") as crun and runc
/// do, so no directory for the old root is needed), detaches the old root
/// and makes the new root mount read-only.
int csb_child_pivot_root(struct csb_child_ctx *_Nonnull ctx) {
    struct csb_assembly *assembly = &ctx->assembly;
    csb_proc_forget_prepared(ctx);
    if (assembly->begun) {
        if (assembly->masks_begun) csb_masks_close(&assembly->masks);
        assembly->masks_begun = false;
        if (assembly->parent_fd >= 0) close(assembly->parent_fd);
        assembly->parent_fd = -1;
        close(assembly->root_fd);
        close(assembly->layers_fd);
        close(assembly->staging_fd);
        assembly->begun = false;
    }
    char path[CSB_PATH_MAX];
    csb_msg(path, sizeof path, ctx->config->staging_dir, "/root", NULL);
    int new_root = open(path, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int old_root = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int error = 0;
    const char *what = "open the old and new roots";
    if (new_root < 0 || old_root < 0) error = errno;
    if (error == 0 && fchdir(new_root) != 0) error = errno;
    if (error == 0 && syscall(SYS_pivot_root, ".", ".") != 0) { error = errno; what = "pivot_root"; }
    // The old root is now stacked on "."; step into it, stop propagation, detach it.
    if (error == 0 && fchdir(old_root) != 0) error = errno;
    if (error == 0 && mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) != 0) { error = errno; what = "make the old root a slave"; }
    if (error == 0 && umount2(".", MNT_DETACH) != 0) { error = errno; what = "detach the old root"; }
    if (error == 0 && chdir("/") != 0) error = errno;
    if (new_root >= 0) close(new_root);
    if (old_root >= 0) close(old_root);
    if (error == 0) {
        struct mount_attr mattr;
        memset(&mattr, 0, sizeof mattr);
        mattr.attr_set = MOUNT_ATTR_RDONLY;
        if (mount_setattr(AT_FDCWD, "/", 0, &mattr, sizeof mattr) != 0) { error = errno; what = "make / read-only"; }
    }
    if (error != 0) csb_msg(ctx->message, sizeof ctx->message, what, " (new root ", path, ")", NULL);
    return error;
}
