// mask.c — hiding paths inside a mount, and making them read-only.
//
// A hidden file gets a read-only bind of the mask source (/dev/null) over
// it, a hidden directory a read-only, empty tmpfs. Both are made once per
// set of masks (struct csb_masks) and then cloned from where they were
// first attached: a clone keeps the mount's attributes, so each further
// mask is one open_tree and one move_mount, and every hidden directory
// shares one superblock. Targets are opened beneath the given directory,
// no symlink followed; a missing target is not an error (the kernel's
// /proc differs from one configuration to the next).
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

void csb_masks_init(struct csb_masks *_Nonnull masks, int source_fd) {
    masks->source_fd = source_fd;
    masks->file_mask = -1;
    masks->directory_mask = -1;
}

void csb_masks_close(struct csb_masks *_Nonnull masks) {
    if (masks->file_mask >= 0) close(masks->file_mask);
    if (masks->directory_mask >= 0) close(masks->directory_mask);
    masks->file_mask = masks->directory_mask = -1;
}

static int set_attributes(int tree_fd, uint32_t attr, bool recursive) {
    struct mount_attr mattr;
    memset(&mattr, 0, sizeof mattr);
    mattr.attr_set = attr;
    unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    return mount_setattr(tree_fd, "", flags, &mattr, sizeof mattr) == 0 ? 0 : errno;
}

/// The first mask of its kind: a read-only bind of the source over a file,
/// or a read-only empty tmpfs over a directory (its root owned by whoever
/// made it; mode 0555).
static int first_mask(const struct csb_masks *_Nonnull masks, bool directory, int *_Nonnull out) {
    int tree;
    if (directory) {
        int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs < 0) return errno;
        int error = 0;
        if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0555", 0) != 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "size", "4096", 0) != 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0)
            error = errno;
        tree = error == 0 ? fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                                             MOUNT_ATTR_NOEXEC)
                          : -1;
        if (error == 0 && tree < 0) error = errno;
        close(fs);
        if (error != 0) return error;
    } else {
        if (masks->source_fd < 0) return masks->source_fd == -1 ? EBADF : -masks->source_fd;
        tree = open_tree(masks->source_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0) return errno;
        int error = set_attributes(tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false);
        if (error != 0) {
            close(tree);
            return error;
        }
    }
    *out = tree;
    return 0;
}

int csb_mask(int dir_fd, const char *_Nonnull path, struct csb_masks *_Nonnull masks) {
    int target = csb_openat2(dir_fd, path, O_PATH | O_CLOEXEC, BENEATH);
    if (target < 0) return errno == ENOENT ? 0 : errno;
    struct stat info;
    int error = fstat(target, &info) == 0 ? 0 : errno;
    bool directory = S_ISDIR(info.st_mode);
    int *kept = directory ? &masks->directory_mask : &masks->file_mask;
    int tree = -1;
    if (error == 0 && *kept >= 0) {
        // A clone of the mask attached before, attributes and all.
        tree = open_tree(*kept, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0) error = errno;
    } else if (error == 0) {
        error = first_mask(masks, directory, &tree);
    }
    if (error == 0) error = csb_mount_attach(tree, target);
    close(target);
    if (error == 0 && *kept < 0) {
        *kept = tree; // attached now: the next mask of this kind is cloned from it
        return 0;
    }
    if (tree >= 0) close(tree);
    return error;
}

int csb_make_read_only(int dir_fd, const char *_Nonnull path, uint32_t attr) {
    int target = csb_openat2(dir_fd, path, O_PATH | O_CLOEXEC, BENEATH);
    if (target < 0) return errno == ENOENT ? 0 : errno;
    int error = 0;
    int tree = open_tree(target, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) error = errno;
    if (error == 0) error = set_attributes(tree, attr | MOUNT_ATTR_RDONLY, true);
    if (error == 0) error = csb_mount_attach(tree, target);
    if (tree >= 0) close(tree);
    close(target);
    return error;
}
