// net.c — the network namespace: only a loopback interface exists.
//
// `none` leaves lo down (no socket can reach anything, not even itself);
// `loopback` brings lo up so the job can talk to itself; `host` shares the
// host's namespace and is never a default.
#include "internal.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int csb_child_configure_network(struct csb_child_ctx *_Nonnull ctx) {
    if (ctx->config->network != CSB_NET_LOOPBACK) return 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        csb_msg(ctx->message, sizeof ctx->message, "open a socket to configure lo", NULL);
        return errno;
    }
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, "lo", 3);
    int error = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &request) != 0) error = errno;
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (error == 0 && ioctl(fd, SIOCSIFFLAGS, &request) != 0) error = errno;
    close(fd);
    if (error != 0) csb_msg(ctx->message, sizeof ctx->message, "bring lo up", NULL);
    return error;
}
