// net.c — the network namespace: only a loopback interface exists.
//
// `none` leaves lo down (no socket can reach anything, not even itself);
// `loopback` brings lo up so the job can talk to itself; `host` shares the
// host's namespace and is never a default.
//
// A sandbox makes its own namespace (CLONE_NEWNET, owned by its user
// namespace), or joins one the runner made beforehand (csb_netns_create,
// owned by the runner's): the daemon keeps those in a pool, one per running
// job, because making and tearing down a network namespace is the costliest
// part of a sandbox's start (~0.5 ms of CPU, and as much again in the
// kernel's deferred cleanup).
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/// Brings lo up in the calling thread's network namespace.
static int bring_lo_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, "lo", 3);
    int error = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &request) != 0) error = errno;
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (error == 0 && ioctl(fd, SIOCSIFFLAGS, &request) != 0) error = errno;
    close(fd);
    return error;
}

int csb_child_configure_network(struct csb_child_ctx *_Nonnull ctx) {
    // A joined namespace was configured by whoever made it.
    if (ctx->config->network != CSB_NET_LOOPBACK || ctx->config->netns_fd >= 0) return 0;
    int error = bring_lo_up();
    if (error != 0) csb_msg(ctx->message, sizeof ctx->message, "bring lo up", NULL);
    return error;
}

struct netns_request {
    int loopback;
    int fd;
    int error;
};

static void *_Nullable make_netns(void *_Nullable argument) {
    struct netns_request *request = argument;
    // Only this thread moves; it ends right after.
    if (unshare(CLONE_NEWNET) != 0) {
        request->error = errno;
        return NULL;
    }
    if (request->loopback) {
        request->error = bring_lo_up();
        if (request->error != 0) return NULL;
    }
    request->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (request->fd < 0) request->error = errno;
    return NULL;
}

int csb_netns_create(int loopback, int32_t *_Nonnull out_fd) {
    *out_fd = -1;
    struct netns_request request = {.loopback = loopback, .fd = -1, .error = 0};
    pthread_t thread;
    int error = pthread_create(&thread, NULL, make_netns, &request);
    if (error != 0) return error;
    pthread_join(thread, NULL);
    if (request.error != 0) {
        if (request.fd >= 0) close(request.fd);
        return request.error;
    }
    *out_fd = request.fd;
    return 0;
}
