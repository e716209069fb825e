// plan.c — the spawn configuration as one flat buffer, for the init.
//
// The parent does not fork a copy of itself into the sandbox (a copy of a
// large multithreaded process costs page tables, copy-on-write faults and
// TLB shootdowns in the parent for every sandbox). It clones a child that
// shares its memory only until that child executes this same binary again
// as "syft-sandbox-init" (see spawn.c), and sends it the configuration
// with the go-ahead, in a memfd: written here by the parent, with every
// pointer stored as an offset into the buffer, and turned back into
// pointers by the init (privately mapped: the init writes its own
// descriptor numbers into it).
#include "internal.h"

#include <errno.h>
#include <linux/filter.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CSB_PLAN_MAGIC 0x6e616c70646e6173ull // "sandplan"

/// The buffer starts with this; every pointer in it is an offset + 1 from
/// the buffer's start (0 stays NULL).
struct csb_plan_header {
    uint64_t magic;
    uint64_t length;
    struct csb_spawn_config config;
    struct csb_bpf seccomp;
    uint32_t parent_is_root;
    sigset_t signal_mask;
    struct csb_cpu_mask cpus; // held: the caller's CPUs, for PID 1 to take back (cpus.c)
};

struct writer {
    uint8_t *_Nullable data;
    size_t length;
    size_t capacity;
    bool failed;
};

/// Appends `size` bytes (8-aligned) and returns their offset + 1, or 0.
static uintptr_t append(struct writer *_Nonnull w, const void *_Nullable bytes, size_t size) {
    if (w->failed) return 0;
    size_t start = (w->length + 7) & ~(size_t)7;
    if (start + size > w->capacity) {
        size_t capacity = w->capacity ? w->capacity : 4096;
        while (capacity < start + size) capacity *= 2;
        uint8_t *grown = realloc(w->data, capacity);
        if (grown == NULL) {
            w->failed = true;
            return 0;
        }
        memset(grown + w->capacity, 0, capacity - w->capacity);
        w->data = grown;
        w->capacity = capacity;
    }
    if (size > 0 && bytes != NULL) memcpy(w->data + start, bytes, size);
    w->length = start + size;
    return start + 1;
}

static uintptr_t append_string(struct writer *_Nonnull w, const char *_Nullable text) {
    return text == NULL ? 0 : append(w, text, strlen(text) + 1);
}

/// A NULL-terminated (or `count`-long) array of strings.
static uintptr_t append_strings(struct writer *_Nonnull w, const char *_Nullable const *_Nullable list, size_t count,
                                bool terminated) {
    if (list == NULL) return 0;
    if (terminated)
        while (list[count] != NULL) count++;
    uintptr_t *offsets = calloc(count + 1, sizeof *offsets);
    if (offsets == NULL) {
        w->failed = true;
        return 0;
    }
    for (size_t i = 0; i < count; i++) offsets[i] = append_string(w, list[i]);
    uintptr_t at = append(w, offsets, (count + 1) * sizeof *offsets);
    free(offsets);
    return at;
}

int csb_plan_write(const struct csb_spawn_config *_Nonnull config, bool parent_is_root,
                   const sigset_t *_Nonnull signal_mask, const struct csb_cpu_mask *_Nonnull cpus,
                   int *_Nonnull plan_fd) {
    struct writer w = {0};
    struct csb_plan_header header;
    memset(&header, 0, sizeof header);
    append(&w, NULL, sizeof header);
    header.magic = CSB_PLAN_MAGIC;
    header.config = *config;
    header.parent_is_root = parent_is_root;
    header.signal_mask = *signal_mask;
    header.cpus = *cpus;
    struct csb_spawn_config *c = &header.config;
    c->hostname = (const char *)append_string(&w, config->hostname);
    c->staging_dir = (const char *)append_string(&w, config->staging_dir);
    c->path = (const char *)append_string(&w, config->path);
    c->cwd = (const char *)append_string(&w, config->cwd);
    c->argv = (char *const *)append_strings(&w, (const char *const *)config->argv, 0, true);
    c->envp = (char *const *)append_strings(&w, (const char *const *)config->envp, 0, true);
    c->rlimits = (const struct csb_rlimit *)append(&w, config->rlimits, config->rlimit_count * sizeof *config->rlimits);
    header.seccomp = *config->seccomp;
    header.seccomp.filter = (void *)append(&w, config->seccomp->filter, (size_t)config->seccomp->length * sizeof(struct sock_filter));
    c->seccomp = NULL; // the header's copy
    struct csb_mount *mounts = calloc(config->mount_count + 1, sizeof *mounts);
    if (mounts == NULL) w.failed = true;
    for (size_t i = 0; mounts != NULL && i < config->mount_count; i++) {
        const struct csb_mount *m = &config->mounts[i];
        mounts[i] = *m;
        mounts[i].source = (const char *)append_string(&w, m->source);
        mounts[i].target = (const char *)append_string(&w, m->target);
        mounts[i].link = (const char *)append_string(&w, m->link);
        mounts[i].data = (const char *)append(&w, m->data, m->data ? m->data_length : 0);
        mounts[i].mount_points = (const char *const *)append_strings(&w, m->mount_points, m->mount_point_count, false);
    }
    c->mounts = (const struct csb_mount *)append(&w, mounts, config->mount_count * sizeof *mounts);
    free(mounts);
    header.length = w.length;
    if (!w.failed) memcpy(w.data, &header, sizeof header);

    int error = w.failed ? ENOMEM : 0;
    int fd = error ? -1 : memfd_create("syft-sandbox-plan", MFD_CLOEXEC);
    if (!error && fd < 0) error = errno;
    for (size_t done = 0; !error && done < w.length;) {
        ssize_t n = write(fd, w.data + done, w.length - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) error = n < 0 ? errno : EIO;
        else done += (size_t)n;
    }
    free(w.data);
    if (error) {
        if (fd >= 0) close(fd);
        return error;
    }
    *plan_fd = fd;
    return 0;
}

/// Offset + 1 to pointer, checked against the buffer (NULL stays NULL).
static bool resolve(void *_Nonnull field, uint8_t *_Nonnull base, size_t length) {
    uintptr_t value;
    memcpy(&value, field, sizeof value);
    if (value == 0) return true;
    if (value - 1 >= length) return false;
    void *pointer = base + value - 1;
    memcpy(field, &pointer, sizeof pointer);
    return true;
}

static bool resolve_strings(void *_Nonnull field, uint8_t *_Nonnull base, size_t length, size_t count,
                            bool terminated) {
    if (!resolve(field, base, length)) return false;
    uintptr_t *list;
    memcpy(&list, field, sizeof list);
    if (list == NULL) return true;
    for (size_t i = 0;; i++) {
        if ((uint8_t *)&list[i + 1] > base + length) return false;
        if (terminated ? list[i] == 0 : i == count) return true;
        if (!resolve(&list[i], base, length)) return false;
    }
}

int csb_plan_read(int plan_fd, struct csb_child_ctx *_Nonnull ctx, sigset_t *_Nonnull signal_mask) {
    struct stat info;
    if (fstat(plan_fd, &info) != 0) return errno;
    size_t length = (size_t)info.st_size;
    if (length < sizeof(struct csb_plan_header)) return EPROTO;
    uint8_t *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, plan_fd, 0);
    if (base == MAP_FAILED) return errno;
    struct csb_plan_header *header = (struct csb_plan_header *)base;
    // Bytes past the plan are not read: the memfd is the parent's between
    // its writing and its sending, and a stray write of another component's
    // to a descriptor number it closed (and this memfd reused) appends.
    if (header->magic != CSB_PLAN_MAGIC || header->length > length) return EPROTO;
    length = header->length;
    struct csb_spawn_config *c = &header->config;
    bool ok = resolve(&c->hostname, base, length) && resolve(&c->staging_dir, base, length) &&
              resolve(&c->path, base, length) && resolve(&c->cwd, base, length) &&
              resolve_strings(&c->argv, base, length, 0, true) && resolve_strings(&c->envp, base, length, 0, true) &&
              resolve(&c->rlimits, base, length) &&
              resolve(&header->seccomp.filter, base, length) && resolve(&c->mounts, base, length);
    for (size_t i = 0; ok && i < c->mount_count; i++) {
        struct csb_mount *m = (struct csb_mount *)&c->mounts[i];
        ok = resolve(&m->source, base, length) && resolve(&m->target, base, length) &&
             resolve(&m->link, base, length) && resolve(&m->data, base, length) &&
             resolve_strings(&m->mount_points, base, length, m->mount_point_count, false);
    }
    if (!ok) return EPROTO;
    c->seccomp = &header->seccomp;
    ctx->config = c;
    ctx->parent_is_root = header->parent_is_root != 0;
    *signal_mask = header->signal_mask;
    ctx->restore_cpus = header->cpus;
    return 0;
}
