// mount_spread.c — mount points for a read-only folder that lacks them,
// without an overlay.
//
// The job folder is bound read-only at /job, and the outputs filesystem
// needs a directory there (`outputs`, and `code/outputs` with a code
// folder) that a submitted folder usually lacks and that must not be made
// in it. Rather than an overlay (a superblock of its own, on the way of
// every lookup the job makes in its folder, and torn down at its end), a
// small folder is laid out in the root instead: the target is a directory
// of the root's tmpfs holding a bind of each of the folder's entries (or
// the same symlink) and the missing mount points as empty directories;
// for a nested mount point the folder on its way is laid out the same
// way. The binds are cloned from the whole tree, attached in the staging
// tmpfs first, so each carries its attributes and its id mapping. The
// root is read-only after the pivot: nothing can be added beside them.
//
// A folder with more entries than SPREAD_MAX_ENTRIES (counted before
// anything is made) keeps the overlay: a mount per entry would cost more
// than the overlay saves. So does a bind on the root itself.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
#define SPREAD_MAX_ENTRIES 32
#define SPREAD_MAX_POINTS 8

struct dirent64_record { // getdents64's record (linux_dirent64)
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/// Calls `each` for every entry of the directory `dir_fd` (but . and ..),
/// until it returns nonzero (returned).
static int for_each_entry(int dir_fd, int (*_Nonnull each)(void *_Nonnull, const char *_Nonnull),
                          void *_Nonnull context) {
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    char buffer[4096] __attribute__((aligned(8)));
    int result = 0;
    for (;;) {
        long length = syscall(SYS_getdents64, fd, buffer, sizeof buffer);
        if (length < 0) {
            result = errno;
            break;
        }
        if (length == 0) break;
        for (long offset = 0; offset < length && result == 0;) {
            const struct dirent64_record *record = (const struct dirent64_record *)(buffer + offset);
            offset += record->d_reclen;
            const char *name = record->d_name;
            if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
            result = each(context, name);
        }
        if (result != 0) break;
    }
    close(fd);
    return result;
}

/// The mount points below `name` at one level: for each point that is
/// `name` or starts with `name/`, what follows ("" for `name` itself).
static size_t points_under(const char *_Nonnull const *_Nonnull points, size_t count, const char *_Nonnull name,
                           const char *_Nonnull *_Nonnull out) {
    size_t length = strlen(name), found = 0;
    for (size_t i = 0; i < count; i++) {
        if (strncmp(points[i], name, length) != 0) continue;
        if (points[i][length] == '\0') out[found++] = "";
        else if (points[i][length] == '/') out[found++] = points[i] + length + 1;
    }
    return found;
}

/// A directory entry that leads to a missing nested mount point: laid out
/// itself rather than bound whole.
static bool leads_to_missing_point(int source_fd, const char *_Nonnull name,
                                   const char *_Nonnull const *_Nonnull points, size_t count,
                                   const char *_Nonnull *_Nonnull below, size_t *_Nonnull below_count) {
    const char *under[SPREAD_MAX_POINTS];
    size_t found = points_under(points, count, name, under);
    *below_count = 0;
    bool missing = false;
    char path[CSB_PATH_MAX];
    for (size_t i = 0; i < found; i++) {
        if (*under[i] == '\0') continue;
        below[(*below_count)++] = under[i];
        csb_msg(path, sizeof path, name, "/", under[i], NULL);
        if (!csb_mount_is_directory(source_fd, path)) missing = true;
    }
    return missing && csb_mount_is_directory(source_fd, name);
}

// MARK: - Counting

/// Counts an entry (of a target that must be empty): E2BIG at the first.
static int count_any(void *_Nonnull context, const char *_Nonnull name) {
    (void)context;
    (void)name;
    return E2BIG;
}

struct count_context {
    int source_fd;
    const char *_Nonnull const *_Nonnull points;
    size_t count;
    size_t entries;
};

static int count_entry(void *_Nonnull context, const char *_Nonnull name);

/// How many entries the layout of `source_fd` would bind or copy; E2BIG
/// past SPREAD_MAX_ENTRIES.
static int count_layout(int source_fd, const char *_Nonnull const *_Nonnull points, size_t count,
                        size_t *_Nonnull entries) {
    struct count_context context = {.source_fd = source_fd, .points = points, .count = count, .entries = *entries};
    int error = for_each_entry(source_fd, count_entry, &context);
    *entries = context.entries;
    return error;
}

static int count_entry(void *_Nonnull context, const char *_Nonnull name) {
    struct count_context *c = context;
    if (++c->entries > SPREAD_MAX_ENTRIES) return E2BIG;
    const char *below[SPREAD_MAX_POINTS];
    size_t below_count;
    if (!leads_to_missing_point(c->source_fd, name, c->points, c->count, below, &below_count)) return 0;
    int fd = csb_openat2(c->source_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC, BENEATH);
    if (fd < 0) return errno;
    int error = count_layout(fd, below, below_count, &c->entries);
    close(fd);
    return error;
}

// MARK: - Laying out

struct layout_context {
    struct csb_assembly *_Nonnull a;
    int source_fd; // the folder, in the tree attached in the staging tmpfs
    int target_fd; // its place in the new root
    bool recursive;
    const char *_Nonnull const *_Nonnull points;
    size_t count;
};

static int lay_out(struct csb_assembly *_Nonnull a, int source_fd, int target_fd, bool recursive,
                   const char *_Nonnull const *_Nonnull points, size_t count);

/// One entry: laid out itself (it leads to a missing mount point), the
/// same symlink, an empty directory (it is a mount point but no
/// directory: a file or symlink named `outputs`), or a bind of it.
static int lay_out_entry(void *_Nonnull context, const char *_Nonnull name) {
    struct layout_context *c = context;
    struct stat info;
    if (fstatat(c->source_fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : errno; // gone since
    const char *below[SPREAD_MAX_POINTS];
    size_t below_count;
    if (S_ISDIR(info.st_mode) && leads_to_missing_point(c->source_fd, name, c->points, c->count, below, &below_count)) {
        int source = csb_openat2(c->source_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC, BENEATH), target = -1;
        int error = source < 0 ? errno : 0;
        if (error == 0) error = csb_mount_make_target(c->target_fd, name, true, &target);
        if (error == 0) error = lay_out(c->a, source, target, c->recursive, below, below_count);
        if (source >= 0) close(source);
        if (target >= 0) close(target);
        return error;
    }
    const char *at_point[SPREAD_MAX_POINTS];
    if (!S_ISDIR(info.st_mode) && points_under(c->points, c->count, name, at_point) > 0) {
        // Hidden by the mount point's directory, as the overlay's upper layer hid it.
        return mkdirat(c->target_fd, name, 0755) == 0 ? 0 : errno;
    }
    if (S_ISLNK(info.st_mode)) {
        char link[CSB_PATH_MAX];
        ssize_t length = readlinkat(c->source_fd, name, link, sizeof link - 1);
        if (length < 0) return errno;
        link[length] = '\0';
        return symlinkat(link, c->target_fd, name) == 0 ? 0 : errno;
    }
    int tree = open_tree(c->source_fd, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW |
                                                 (c->recursive ? AT_RECURSIVE : 0));
    if (tree < 0) return errno;
    int target = -1, error = csb_mount_make_target(c->target_fd, name, S_ISDIR(info.st_mode), &target);
    if (error == 0) error = csb_mount_attach(tree, target);
    close(tree);
    if (target >= 0) close(target);
    return error;
}

static int lay_out(struct csb_assembly *_Nonnull a, int source_fd, int target_fd, bool recursive,
                   const char *_Nonnull const *_Nonnull points, size_t count) {
    struct layout_context context = {
        .a = a, .source_fd = source_fd, .target_fd = target_fd, .recursive = recursive, .points = points, .count = count};
    int error = for_each_entry(source_fd, lay_out_entry, &context);
    // The mount points the folder lacks (and the folders on their way).
    for (size_t i = 0; i < count && error == 0; i++) {
        if (strchr(points[i], '/') != NULL) continue; // made by the entry laid out for it, or below
        if (mkdirat(target_fd, points[i], 0755) != 0 && errno != EEXIST) error = errno;
    }
    for (size_t i = 0; i < count && error == 0; i++) {
        if (strchr(points[i], '/') == NULL) continue;
        int fd;
        error = csb_mount_open_dirs(target_fd, points[i], 0755, &fd);
        if (error == 0) close(fd);
    }
    return error;
}

// MARK: - The bind

int csb_mount_spread(struct csb_assembly *_Nonnull a, const struct csb_mount *_Nonnull m, int tree_fd,
                     bool recursive, bool *_Nonnull done) {
    *done = false;
    if (m->target[0] == '\0' || m->mount_point_count > SPREAD_MAX_POINTS) return 0;
    for (size_t i = 0; i < m->mount_point_count; i++) {
        const char *point = m->mount_points[i];
        // Plain relative names only; anything else keeps the overlay.
        if (*point == '\0' || *point == '/' || strstr(point, "//") != NULL || point[strlen(point) - 1] == '/')
            return 0;
    }
    // The target must be an empty directory of a writable tmpfs: the
    // root's, not a prepared root's read-only overlay.
    int target = -1;
    int error = csb_mount_open_target(a, m->target, true, &target);
    if (error != 0) return error;
    struct statfs fs;
    size_t entries = 0;
    if (fstatfs(target, &fs) != 0) error = errno;
    else if (fs.f_type != TMPFS_MAGIC || (fs.f_flags & ST_RDONLY) != 0) error = E2BIG;
    if (error == 0) error = for_each_entry(target, count_any, &entries);
    if (error == 0) error = count_layout(tree_fd, m->mount_points, m->mount_point_count, &entries);
    if (error != 0) {
        close(target);
        return error == E2BIG ? 0 : error;
    }
    // The tree attached in the staging tmpfs, where the entries are cloned
    // from (it goes with the old root at the pivot); `tree_fd` is its root
    // once attached.
    char name[32], index[16];
    csb_format_u64(index, sizeof index, a->layer_count++, 10);
    csb_msg(name, sizeof name, "spread-", index, NULL);
    int place = -1;
    if (mkdirat(a->layers_fd, name, 0700) != 0) error = errno;
    if (error == 0 && (place = openat(a->layers_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        error = errno;
    if (error == 0) error = csb_mount_attach(tree_fd, place);
    if (place >= 0) close(place);
    if (error == 0) error = lay_out(a, tree_fd, target, recursive, m->mount_points, m->mount_point_count);
    close(target);
    if (error == 0) *done = true;
    return error;
}
