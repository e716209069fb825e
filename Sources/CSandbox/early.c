// early.c — a one-shot run's sandbox, cloned before the Swift runtime starts.
//
// The clone into the namespaces and PID 1's start need nothing of the
// job's configuration. A constructor, run once glibc is initialized and
// before the Swift runtime's own (image registration, CoreFoundation, the
// backtracer) and main, recognizes the one-shot form on the command line
// and clones PID 1 there and then: the process is still single-threaded
// and small, so PID 1 is a fork (csb_start_config.fork_init: a few page
// tables copied, no exec, no second run of glibc's start), and it makes
// its mount, IPC, UTS and network namespaces itself (0.4 ms) while the
// runtime starts here. The first Sandbox.start of the process takes the
// child (csb_early_take) instead of cloning one. What it does not take is
// closed with the process: PID 1 sees its socket's EOF before its go-ahead
// and exits.
//
// Not where the job's cgroup has to exist before the clone (a unified
// cgroup2 hierarchy at /sys/fs/cgroup: CLONE_INTO_CGROUP), nor for a
// command line it is not sure of: Sandbox.start then clones as before.
#include "internal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

/// The early start: set by the constructor, before main, read by whoever
/// takes it.
static struct {
    bool started;          // the constructor cloned (or tried to)
    bool taken;            // csb_early_take ran (it takes at most once)
    uint32_t network;
    int result;            // csb_spawn_start's
    int64_t nanoseconds;   // how long it took
    struct csb_child child;
    struct csb_error error;
} early;

static void early_clone(void) {
    struct csb_start_config start;
    memset(&start, 0, sizeof start);
    start.network = early.network;
    start.netns_fd = -1;
    start.cgroup_fd = -1;
    start.fork_init = true;
    struct timespec began, ended;
    clock_gettime(CLOCK_MONOTONIC, &began);
    early.result = csb_spawn_start(&start, &early.child, &early.error);
    clock_gettime(CLOCK_MONOTONIC, &ended);
    early.nanoseconds = (int64_t)(ended.tv_sec - began.tv_sec) * 1000000000 + (ended.tv_nsec - began.tv_nsec);
    early.started = true;
}

/// First arguments that are not a one-shot run's: the CLI's subcommands,
/// help and version (ArgumentParser's flags among them).
static const char *const reserved[] = {
    "run", "daemon", "jobs", "help", "-h", "--help", "--version", "--generate-completion-script",
    "--experimental-dump-help",
};

bool csb_reserved_first_argument(const char *_Nonnull argument) {
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strcmp(argument, reserved[i]) == 0) return true;
    }
    return false;
}

/// The network policy `--net` names (none when absent); false for a value
/// that is none of the three.
static bool parse_network(const char *_Nonnull value, uint32_t *_Nonnull network) {
    if (strcmp(value, "none") == 0) *network = CSB_NET_NONE;
    else if (strcmp(value, "loopback") == 0) *network = CSB_NET_LOOPBACK;
    else if (strcmp(value, "host") == 0) *network = CSB_NET_HOST;
    else return false;
    return true;
}

/// The one-shot form's options that take no value; every other one takes
/// one, as `--name VALUE` or `--name=VALUE` (RunCommand's options; a test
/// holds csb_one_shot_folder to OneShotArguments.fastParse).
static const char *const flags[] = {"--json"};

static bool is_flag(const char *_Nonnull argument) {
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (strcmp(argument, flags[i]) == 0) return true;
    }
    return false;
}

const char *_Nullable csb_one_shot_folder(int argc, char *_Nonnull const *_Nonnull argv, uint32_t *_Nonnull network) {
    if (argc < 2 || csb_reserved_first_argument(argv[1])) return NULL;
    *network = CSB_NET_NONE;
    const char *folder = NULL;
    bool positional_only = false;
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (positional_only || argument[0] != '-' || strcmp(argument, "-") == 0) {
            if (folder != NULL) return NULL; // a second positional: main decides
            folder = argument;
        } else if (strcmp(argument, "--") == 0) {
            positional_only = true;
        } else if (strncmp(argument, "--net=", 6) == 0) {
            if (!parse_network(argument + 6, network)) return NULL;
        } else if (strchr(argument, '=') == NULL && !is_flag(argument)) {
            // An option whose value is the next argument.
            if (i + 1 >= argc) return NULL;
            if (strcmp(argument, "--net") == 0 && !parse_network(argv[i + 1], network)) return NULL;
            i++;
        }
    }
    return folder;
}

/// The one-shot form, as far as starting early goes: a first argument that
/// is no subcommand, one positional argument that is a folder holding
/// run.sh, wherever it stands, and a network policy it can read. Anything
/// else is left to main.
static bool one_shot_network(int argc, char *_Nonnull *_Nonnull argv, uint32_t *_Nonnull network) {
    const char *path = csb_one_shot_folder(argc, argv, network);
    if (path == NULL) return false;
    int folder = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (folder < 0) return false;
    bool job = faccessat(folder, "run.sh", F_OK, 0) == 0;
    close(folder);
    return job;
}

/// After the init's entry (1000, which never returns); before libcap's
/// initializer (default priority), which csb_spawn_start does not need.
__attribute__((constructor(1001))) static void early_start(int argc, char **argv, char **envp) {
    (void)envp;
    uint32_t network;
    if (argv == NULL || !one_shot_network(argc, argv, &network)) return;
    struct statfs cgroups;
    if (statfs("/sys/fs/cgroup", &cgroups) == 0 && cgroups.f_type == CGROUP2_SUPER_MAGIC) return;
    early.network = network;
    early_clone();
}

int csb_early_take(uint32_t network, struct csb_child *_Nonnull child, struct csb_error *_Nonnull error,
                   int64_t *_Nonnull nanoseconds) {
    bool available = !__atomic_exchange_n(&early.taken, true, __ATOMIC_ACQ_REL) && early.started;
    if (!available) return -1;
    if (early.network != network) {
        // Started for another policy (a command line read otherwise after
        // all): this one is given up, and the caller clones its own.
        if (early.result == 0) {
            csb_child_kill_and_reap(&early.child);
            csb_child_close(&early.child);
        }
        return -1;
    }
    *child = early.child;
    *error = early.error;
    *nanoseconds = early.nanoseconds;
    return early.result;
}
