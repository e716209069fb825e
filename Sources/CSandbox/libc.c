// libc.c — GNU and Linux calls that Swift's Glibc module does not export
// (it is built without _GNU_SOURCE), for the Swift modules.
#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/vfs.h>
#include <unistd.h>

_Static_assert(CSB_O_PATH == O_PATH, "CSB_O_PATH is O_PATH");

int csb_pipe(int *_Nonnull ends, int flags) {
    return pipe2(ends, flags) == 0 ? 0 : errno;
}

int csb_renameat2(int old_dir, const char *_Nonnull old_name, int new_dir, const char *_Nonnull new_name,
                  unsigned flags) {
    return renameat2(old_dir, old_name, new_dir, new_name, flags);
}

ssize_t csb_copy_file_range(int in_fd, int64_t *_Nullable in_offset, int out_fd, int64_t *_Nullable out_offset,
                            size_t length) {
    return copy_file_range(in_fd, (off64_t *)in_offset, out_fd, (off64_t *)out_offset, length, 0);
}

int csb_filesystem_type(const char *_Nonnull path, uint64_t *_Nonnull type) {
    struct statfs info;
    if (statfs(path, &info) != 0) return errno;
    *type = (uint64_t)info.f_type;
    return 0;
}

void csb_name_thread(const char *_Nonnull name) {
    (void)pthread_setname_np(pthread_self(), name);
}
