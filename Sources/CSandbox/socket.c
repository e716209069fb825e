// socket.c — messages on the parent/child socket, with descriptors.
//
// The socket (SOCK_SEQPACKET: one message per send) carries the go-ahead
// (the plan, stdout, stderr, idmapped trees), the cgroup placement (the
// files PID 1 writes itself into), the exported roots and PID 1's report.
// Descriptors travel as SCM_RIGHTS; received ones are close-on-exec.
// Async-signal-safe: the child uses these between clone() and execve().
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int csb_send_with_fds(int socket, const void *_Nonnull bytes, size_t length, const int *_Nullable fds,
                      size_t count) {
    if (count > CSB_MAX_MESSAGE_FDS || (count > 0 && fds == NULL)) return EINVAL;
    char control[CMSG_SPACE(sizeof(int) * CSB_MAX_MESSAGE_FDS)];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = (void *)bytes, .iov_len = length};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    if (count > 0) {
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *c = CMSG_FIRSTHDR(&message);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
    }
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? errno : 0;
}

ssize_t csb_recv_with_fds(int socket, void *_Nonnull bytes, size_t length, int flags, int *_Nonnull fds,
                          size_t capacity, size_t *_Nonnull count, bool *_Nonnull truncated) {
    char control[CMSG_SPACE(sizeof(int) * CSB_MAX_MESSAGE_FDS)];
    struct iovec iov = {.iov_base = bytes, .iov_len = length};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    ssize_t n;
    do {
        n = recvmsg(socket, &message, flags | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    *count = 0;
    *truncated = n >= 0 && (message.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;
    for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&message) : NULL; c != NULL; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t received = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < received; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*count < capacity) {
                fds[(*count)++] = fd;
            } else {
                close(fd);
                *truncated = true;
            }
        }
    }
    return n;
}
