// pairs.c — two commands timed in pairs, interleaved.
//
//   pairs RUNS SETTLE_MS COMMAND_A... -- COMMAND_B...
//
// Runs A and B alternately, the pair's order swapped every time (A B, B A,
// ...), each with stdout and stderr to /dev/null, after SETTLE_MS of
// sleep (untimed). Prints, one per line: A's median, B's median (ms), the
// ratio of the medians, the median of the per-pair ratios A/B, and that
// median's 95 % confidence interval (its low and high end: order
// statistics, no assumption about the ratios' distribution). Two
// runs side by side see the same machine: a VM whose speed drifts over
// seconds moves both, not one, so the per-pair ratio is the steadier
// figure. Exits 1 when a run fails.
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/// One run of `argv`, in milliseconds; exits the program when it fails.
static double timed_run(char *const *argv, long settle_ms) {
    if (settle_ms > 0) usleep((useconds_t)(settle_ms * 1000));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    double start = now_ms();
    pid_t pid;
    int error = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
        fprintf(stderr, "pairs: cannot start %s: %s\n", argv[0], strerror(error));
        exit(1);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {}
    double elapsed = now_ms() - start;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pairs: %s failed (wait status %#x)\n", argv[0], status);
        exit(1);
    }
    return elapsed;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/// The median of `values`; with `low` and `high`, the ends of its 95 %
/// confidence interval: the sorted values at ranks n/2 -+ 0.98 sqrt(n)
/// (the binomial's normal approximation; distribution-free).
static double median(const double *values, int count, double *low, double *high) {
    double *sorted = malloc((size_t)count * sizeof *sorted);
    if (sorted == NULL) exit(1);
    memcpy(sorted, values, (size_t)count * sizeof *sorted);
    qsort(sorted, (size_t)count, sizeof *sorted, by_value);
    double middle = count % 2 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2;
    double reach = 0.98 * sqrt((double)count);
    int first = (int)floor(count / 2.0 - reach), last = (int)ceil(count / 2.0 + reach) - 1;
    if (low != NULL) *low = sorted[first < 0 ? 0 : first];
    if (high != NULL) *high = sorted[last >= count ? count - 1 : last];
    free(sorted);
    return middle;
}

int main(int argc, char **argv) {
    int separator = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) { separator = i; break; }
    }
    int runs = argc > 2 ? atoi(argv[1]) : 0;
    long settle_ms = argc > 2 ? atol(argv[2]) : -1;
    if (runs < 1 || settle_ms < 0 || separator <= 3 || separator == argc - 1) {
        fprintf(stderr, "usage: pairs RUNS SETTLE_MS COMMAND_A... -- COMMAND_B...\n");
        return 2;
    }
    argv[separator] = NULL;
    char *const *a = argv + 3, *const *b = argv + separator + 1;
    double *times_a = malloc((size_t)runs * sizeof *times_a), *times_b = malloc((size_t)runs * sizeof *times_b);
    double *ratios = malloc((size_t)runs * sizeof *ratios);
    if (times_a == NULL || times_b == NULL || ratios == NULL) return 1;
    for (int i = 0; i < 2; i++) { // warm-up: caches, first-run costs
        timed_run(a, settle_ms);
        timed_run(b, settle_ms);
    }
    for (int i = 0; i < runs; i++) {
        if (i % 2 == 0) {
            times_a[i] = timed_run(a, settle_ms);
            times_b[i] = timed_run(b, settle_ms);
        } else {
            times_b[i] = timed_run(b, settle_ms);
            times_a[i] = timed_run(a, settle_ms);
        }
        ratios[i] = times_a[i] / times_b[i];
    }
    double median_a = median(times_a, runs, NULL, NULL), median_b = median(times_b, runs, NULL, NULL);
    double low, high, per_pair = median(ratios, runs, &low, &high);
    printf("%.3f\n%.3f\n%.3f\n%.3f\n%.3f\n%.3f\n", median_a, median_b, median_a / median_b, per_pair, low, high);
    return 0;
}
