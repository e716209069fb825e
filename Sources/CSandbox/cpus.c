// cpus.c — where PID 1, and the sandbox's thread, start running.
//
// A new child is queued where the scheduler puts it, which on a small
// machine is often the CPU of its parent: and the parent goes on preparing
// the run (the one-shot runner: its runtime's start, the options, the
// plan) while PID 1 makes its namespaces, so PID 1 waits until the parent
// blocks or is preempted. Measured on a 2-vCPU VM: PID 1's first
// instruction came 0.41-0.44 ms (median) after the fork, while the other
// CPU had nothing of the run on it.
//
// So the parent moves PID 1, just cloned, off its own CPU (any other the
// caller may use), and PID 1 takes the caller's affinity back once its plan
// has woken it: its own setup may run anywhere again, and the job, which
// inherits PID 1's affinity, gets the caller's. Not the parent before it
// sends the plan, as it did: PID 1, asleep until the plan and free to run
// anywhere, was then woken onto the sender's CPU, and in half the runs
// measured ran its whole root assembly there while the parent waited
// (0.4-0.8 ms) with the go-ahead PID 1 was to need next. Best effort: with
// one CPU allowed, or when the kernel refuses the move, PID 1 starts
// wherever the scheduler puts it.
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(cpu_set_t) == sizeof(((struct csb_cpu_mask *)0)->bits), "csb_cpu_mask holds a cpu_set_t");

/// The CPUs task `whose` (0: the calling thread) may use, in `saved` (not
/// held yet), and the one the calling thread runs on; -1 when that is not
/// one of them, or they are fewer than two (or the kernel would not say):
/// then nothing is to be moved.
static int cpus_and_this_cpu(pid_t whose, struct csb_cpu_mask *_Nonnull saved) {
    saved->held = false;
    cpu_set_t allowed;
    if (sched_getaffinity(whose, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2) return -1;
    int current = sched_getcpu();
    if (current < 0 || !CPU_ISSET(current, &allowed)) return -1;
    memcpy(saved->bits, &allowed, sizeof allowed);
    return current;
}

/// Gives task `tid` the CPUs of task `whose` (0: the calling thread) but
/// the calling thread's own, those CPUs kept in `saved` (held once moved).
/// 0 or an errno; 0 and nothing moved when there is nowhere else to go.
static int move_off_this_cpu(pid_t tid, pid_t whose, struct csb_cpu_mask *_Nonnull saved) {
    int current = cpus_and_this_cpu(whose, saved);
    if (current < 0) return 0;
    cpu_set_t elsewhere;
    memcpy(&elsewhere, saved->bits, sizeof elsewhere);
    CPU_CLR(current, &elsewhere);
    if (sched_setaffinity(tid, sizeof elsewhere, &elsewhere) != 0) return errno;
    saved->held = true;
    return 0;
}

/// Gives task `tid` (0: the calling thread) the CPUs `saved` holds, if it
/// was held. When none of them is allowed any more (EINVAL: a cpuset
/// shrank, a CPU went offline), those of task `fallback` as they are now
/// (0: the calling thread; -1: every CPU the cpuset allows). 0 or an errno.
static int give_back(pid_t tid, pid_t fallback, struct csb_cpu_mask *_Nonnull saved) {
    if (!saved->held) return 0;
    cpu_set_t allowed;
    memcpy(&allowed, saved->bits, sizeof allowed);
    if (sched_setaffinity(tid, sizeof allowed, &allowed) != 0) {
        if (errno != EINVAL) return errno;
        if (fallback >= 0 && sched_getaffinity(fallback, sizeof allowed, &allowed) != 0) return errno;
        if (fallback < 0) memset(&allowed, 0xff, sizeof allowed);
        if (sched_setaffinity(tid, sizeof allowed, &allowed) != 0) return errno;
    }
    saved->held = false;
    return 0;
}

void csb_cpus_start_elsewhere(struct csb_child *_Nonnull child) {
    child->start_cpus.held = false;
    if (child->pid > 0) (void)move_off_this_cpu(child->pid, 0, &child->start_cpus);
}

void csb_cpus_hand_over(struct csb_child *_Nonnull child, struct csb_cpu_mask *_Nonnull out) {
    *out = child->start_cpus;
    child->start_cpus.held = false;
}

void csb_cpus_take_back(struct csb_cpu_mask *_Nonnull cpus) {
    // Should none of the caller's CPUs be allowed any more: wherever the
    // cpuset lets PID 1 run, not only on the CPU it was started on.
    (void)give_back(0, -1, cpus);
}

// The sandbox's thread of a one-shot run starts when its caller is about
// to wait for the job (StartedSandbox), and PID 1 builds the root on
// another CPU meanwhile. Started where the scheduler puts it, the thread
// shared PID 1's CPU in a third of the runs measured, and its go-ahead and
// cgroup work then doubled the root's assembly (0.54 -> 1.05 ms). So it
// starts on its caller's CPU, which the caller is about to leave, and gets
// its caller's affinity back once the job runs (csb_thread_release_cpu).

int csb_thread_attr_on_this_cpu(pthread_attr_t *_Nonnull attr, struct csb_cpu_mask *_Nonnull caller) {
    int error = pthread_attr_init(attr);
    if (error != 0) {
        caller->held = false;
        return error;
    }
    int current = cpus_and_this_cpu(0, caller);
    if (current < 0) return 0;
    cpu_set_t here;
    CPU_ZERO(&here);
    CPU_SET(current, &here);
    caller->held = pthread_attr_setaffinity_np(attr, sizeof here, &here) == 0;
    return 0;
}

int csb_thread_release_cpu(struct csb_cpu_mask *_Nonnull mask) {
    // The fallback: the main thread's CPUs (this thread's are the one it
    // is held to).
    return give_back(0, getpid(), mask);
}

// The end of a one-shot run: the sandbox's thread reads the job's usage,
// hands the result to the main thread, blocked in runBlocking, and goes on
// to remove the job's cgroups (four rmdirs on v1, ~0.1 ms) while the main
// thread writes the results (~0.2 ms). Woken the plain way, the main
// thread was queued on the waker's CPU and preempted it (17 of 30 traced
// runs): the removal waited for the results to be written, with the other
// CPU idle, and the main thread then waited for the removal. Steered away
// from the waker's CPU, the two run side by side: 2-3 % off a trivial
// job's launch (500 pairs, back to back and 20 ms apart).

int csb_cpus_steer_away(int32_t tid, struct csb_cpu_mask *_Nonnull saved) {
    return move_off_this_cpu(tid, tid, saved);
}

int32_t csb_thread_id(void) {
    return (int32_t)syscall(SYS_gettid);
}

int csb_cpus_steered_back(struct csb_cpu_mask *_Nonnull saved) {
    return give_back(0, -1, saved);
}
