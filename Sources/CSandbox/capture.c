// capture.c — the parent's side of output capture.
//
// splice(2) is a GNU extension Swift's Glibc module does not export; this
// wrapper moves pipe bytes into the output file without a user-space copy.
#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

ssize_t csb_splice_to_file(int pipe_fd, int file_fd, size_t length) {
    return splice(pipe_fd, NULL, file_fd, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

ssize_t csb_splice_pipes(int from_fd, int to_fd, size_t length) {
    return splice(from_fd, NULL, to_fd, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int csb_capture_pipe(int *_Nonnull read_end, int *_Nonnull write_end) {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) return errno;
    // The parent reads without blocking; the job writes blocking.
    int flags = fcntl(ends[0], F_GETFL);
    if (flags < 0 || fcntl(ends[0], F_SETFL, flags | O_NONBLOCK) != 0) {
        int error = errno;
        close(ends[0]);
        close(ends[1]);
        return error;
    }
    // Best effort: a larger pipe means fewer wake-ups for a chatty job.
    (void)fcntl(ends[0], F_SETPIPE_SZ, 1 << 20);
    *read_end = ends[0];
    *write_end = ends[1];
    return 0;
}

int csb_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}
