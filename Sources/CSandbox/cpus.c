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
// caller may use), and gives it the caller's affinity back before PID 1
// reads its plan: PID 1's own setup may run anywhere again, and the job,
// which inherits PID 1's affinity, gets the caller's. Best effort: with one
// CPU allowed, or when the kernel refuses the move, PID 1 starts wherever
// the scheduler puts it.
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(cpu_set_t) == sizeof(((struct csb_child *)0)->start_cpus),
               "csb_child.start_cpus holds a cpu_set_t");

void csb_cpus_start_elsewhere(struct csb_child *_Nonnull child) {
    child->cpus_moved = false;
    cpu_set_t allowed;
    if (child->pid <= 0 || sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2) return;
    int current = sched_getcpu();
    if (current < 0 || !CPU_ISSET(current, &allowed)) return;
    cpu_set_t elsewhere = allowed;
    CPU_CLR(current, &elsewhere);
    if (sched_setaffinity(child->pid, sizeof elsewhere, &elsewhere) != 0) return;
    memcpy(child->start_cpus, &allowed, sizeof allowed);
    child->cpus_moved = true;
}

int csb_cpus_give_back(struct csb_child *_Nonnull child) {
    if (!child->cpus_moved) return 0;
    cpu_set_t allowed;
    memcpy(&allowed, child->start_cpus, sizeof allowed);
    if (sched_setaffinity(child->pid, sizeof allowed, &allowed) != 0) {
        // EINVAL: none of those CPUs is allowed any more (a cpuset shrank,
        // a CPU went offline): the calling thread's affinity, as it is now.
        if (errno != EINVAL || sched_getaffinity(0, sizeof allowed, &allowed) != 0 ||
            sched_setaffinity(child->pid, sizeof allowed, &allowed) != 0)
            return errno;
    }
    child->cpus_moved = false;
    return 0;
}

// The sandbox's thread of a one-shot run starts when its caller is about
// to wait for the job (StartedSandbox), and PID 1 builds the root on
// another CPU meanwhile. Started where the scheduler puts it, the thread
// shared PID 1's CPU in a third of the runs measured, and its go-ahead and
// cgroup work then doubled the root's assembly (0.54 -> 1.05 ms). So it
// starts on its caller's CPU, which the caller is about to leave, and gets
// its caller's affinity back once the job runs (csb_thread_release_cpu).

_Static_assert(sizeof(cpu_set_t) == sizeof(((struct csb_cpu_mask *)0)->bits), "csb_cpu_mask holds a cpu_set_t");

int csb_thread_attr_on_this_cpu(pthread_attr_t *_Nonnull attr, struct csb_cpu_mask *_Nonnull caller) {
    caller->held = false;
    int error = pthread_attr_init(attr);
    if (error != 0) return error;
    cpu_set_t allowed;
    int current = sched_getcpu();
    if (pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2 ||
        current < 0 || !CPU_ISSET(current, &allowed))
        return 0;
    cpu_set_t here;
    CPU_ZERO(&here);
    CPU_SET(current, &here);
    if (pthread_attr_setaffinity_np(attr, sizeof here, &here) != 0) return 0;
    memcpy(caller->bits, &allowed, sizeof allowed);
    caller->held = true;
    return 0;
}

int csb_thread_release_cpu(struct csb_cpu_mask *_Nonnull mask) {
    if (!mask->held) return 0;
    cpu_set_t allowed;
    memcpy(&allowed, mask->bits, sizeof allowed);
    int error = pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
    if (error == EINVAL) {
        // None of those CPUs is allowed any more (a cpuset shrank): the
        // main thread's affinity, as it is now.
        if (sched_getaffinity(getpid(), sizeof allowed, &allowed) != 0) return errno;
        error = pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
    }
    if (error == 0) mask->held = false;
    return error;
}
