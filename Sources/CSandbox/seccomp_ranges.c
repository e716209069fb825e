// seccomp_ranges.c — libseccomp's filter re-encoded over ranges of syscall numbers.
//
// libseccomp's program tests the syscall number one value at a time (a
// tree of equality tests: 498 instructions for the default profile), and
// what the kernel does to load a filter (convert it to eBPF, JIT it,
// emulate it for every syscall number to fill its action cache) grows
// with the program: ~0.2 ms on the job's way to exec. Yet most numbers
// that sit side by side share their action: the default profile's 289
// allowed syscalls fall into ~70 runs.
//
// So the native architecture's part of libseccomp's program is read by
// intervals of the syscall number: starting from [0, 2^32), every branch
// on the number splits an interval, every return ends one with its action,
// and a load of anything but the number or the architecture (an argument)
// ends one as "depends on arguments". Neighbours with the same action are
// joined, and the result is written back as a binary search over the
// intervals' bounds. The numbers whose action depends on arguments (and
// every other architecture) jump to a second program that libseccomp
// built from those syscalls' rules alone (csb_seccomp_compile), so every
// argument test is libseccomp's own code. The decision over the number is
// libseccomp's too, followed branch by branch; a program whose shape this
// reading does not follow is left as libseccomp wrote it (ENOTSUP).
#include "internal.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/// A maximal run of syscall numbers and what the filter does with them.
struct segment {
    uint32_t low, high; // inclusive
    bool depends_on_arguments;
    uint32_t action;    // the return value, when it does not
};

struct segments {
    struct segment *_Nullable items;
    size_t count, capacity;
};

static int add_segment(struct segments *_Nonnull list, uint32_t low, uint32_t high, bool arguments, uint32_t action) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 256 : list->capacity * 2;
        if (capacity > 65536) return ENOTSUP; // not a tree of syscall numbers
        struct segment *grown = realloc(list->items, capacity * sizeof *grown);
        if (grown == NULL) return ENOMEM;
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = (struct segment){low, high, arguments, action};
    return 0;
}

/// What the accumulator holds on a path.
enum loaded { LOADED_NOTHING, LOADED_ARCH, LOADED_NUMBER };

/// Follows `program` from `pc` for the syscall numbers low...high of the
/// native architecture, the accumulator holding `loaded`; records the
/// segments it ends in. Jumps only go forward, so every path ends.
static int follow(const struct sock_filter *_Nonnull program, size_t length, uint32_t native_arch, size_t pc,
                  enum loaded loaded, uint32_t low, uint32_t high, struct segments *_Nonnull out) {
    for (;;) {
        if (pc >= length) return ENOTSUP;
        const struct sock_filter *instruction = &program[pc];
        uint32_t k = instruction->k;
        switch (instruction->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            if (k == offsetof(struct seccomp_data, nr)) loaded = LOADED_NUMBER;
            else if (k == offsetof(struct seccomp_data, arch)) loaded = LOADED_ARCH;
            else return add_segment(out, low, high, true, 0); // an argument or the instruction pointer
            pc++;
            continue;
        case BPF_RET | BPF_K:
            return add_segment(out, low, high, false, k);
        case BPF_JMP | BPF_JA:
            if (k >= length) return ENOTSUP;
            pc += 1 + (size_t)k;
            continue;
        case BPF_JMP | BPF_JEQ | BPF_K:
        case BPF_JMP | BPF_JGT | BPF_K:
        case BPF_JMP | BPF_JGE | BPF_K:
            break;
        default:
            return ENOTSUP; // e.g. a bit test or arithmetic on the number
        }
        size_t taken = pc + 1 + instruction->jt, not_taken = pc + 1 + instruction->jf;
        uint16_t test = BPF_OP(instruction->code);
        if (loaded == LOADED_ARCH) {
            bool holds = test == BPF_JEQ ? native_arch == k : test == BPF_JGT ? native_arch > k : native_arch >= k;
            pc = holds ? taken : not_taken;
            continue;
        }
        if (loaded != LOADED_NUMBER) return ENOTSUP;
        // The numbers for which the test holds: [from, to] (empty when from > to).
        uint64_t from, to;
        if (test == BPF_JEQ) from = to = k;
        else if (test == BPF_JGT) from = (uint64_t)k + 1, to = UINT32_MAX;
        else from = k, to = UINT32_MAX;
        uint64_t in_low = from > low ? from : low, in_high = to < high ? to : high;
        if (in_low > in_high) { pc = not_taken; continue; }          // never holds here
        if (in_low == low && in_high == high) { pc = taken; continue; } // always holds here
        int error = follow(program, length, native_arch, taken, loaded, (uint32_t)in_low, (uint32_t)in_high, out);
        if (error != 0) return error;
        // The rest: below the range, and (for an equality inside it) above it.
        if (in_low > low) {
            error = follow(program, length, native_arch, not_taken, loaded, low, (uint32_t)in_low - 1, out);
            if (error != 0) return error;
        }
        if (in_high < high)
            return follow(program, length, native_arch, not_taken, loaded, (uint32_t)in_high + 1, high, out);
        return 0;
    }
}

static int by_low(const void *_Nonnull a, const void *_Nonnull b) {
    uint32_t x = ((const struct segment *)a)->low, y = ((const struct segment *)b)->low;
    return x < y ? -1 : x > y;
}

bool csb_seccomp_listed(uint32_t number, const uint32_t *_Nullable numbers, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (numbers[i] == number) return true;
    return false;
}

/// Sorts, checks that the segments cover every number once and that only
/// the listed numbers depend on arguments, and joins neighbours that end
/// the same way.
static int normalize(struct segments *_Nonnull list, const uint32_t *_Nullable argument_numbers, size_t count) {
    if (list->count == 0) return ENOTSUP;
    qsort(list->items, list->count, sizeof list->items[0], by_low);
    size_t joined = 0;
    uint64_t next = 0;
    for (size_t i = 0; i < list->count; i++) {
        struct segment s = list->items[i];
        if (s.low != next || s.high < s.low) return ENOTSUP;
        next = (uint64_t)s.high + 1;
        if (s.depends_on_arguments) {
            if ((uint64_t)s.high - s.low >= count) return ENOTSUP;
            for (uint64_t n = s.low; n <= s.high; n++)
                if (!csb_seccomp_listed((uint32_t)n, argument_numbers, count)) return ENOTSUP;
        }
        struct segment *last = joined > 0 ? &list->items[joined - 1] : NULL;
        if (last != NULL && last->depends_on_arguments == s.depends_on_arguments &&
            (s.depends_on_arguments || last->action == s.action)) {
            last->high = s.high;
        } else {
            list->items[joined++] = s;
        }
    }
    if (next != (uint64_t)UINT32_MAX + 1) return ENOTSUP;
    list->count = joined;
    return 0;
}

struct writer {
    struct sock_filter *_Nonnull program;
    size_t length, capacity;
    // Jumps to the argument program, whose start is known at the end.
    size_t fixups[BPF_MAXINSNS];
    size_t fixup_count;
};

static int emit(struct writer *_Nonnull w, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k) {
    if (w->length == w->capacity) return ENOTSUP; // longer than the kernel takes
    w->program[w->length++] = (struct sock_filter){code, jt, jf, k};
    return 0;
}

static int emit_to_arguments(struct writer *_Nonnull w) {
    if (w->fixup_count == BPF_MAXINSNS) return ENOTSUP;
    w->fixups[w->fixup_count++] = w->length;
    return emit(w, BPF_JMP | BPF_JA, 0, 0, 0);
}

/// A binary search over segments[first...last]; the number is in the
/// accumulator. ENOTSUP when a lower half outgrows a conditional jump (255
/// instructions: some 250 ranges, a program no shorter than libseccomp's).
static int emit_search(struct writer *_Nonnull w, const struct segment *_Nonnull segments, size_t first, size_t last) {
    if (first == last) {
        const struct segment *s = &segments[first];
        return s->depends_on_arguments ? emit_to_arguments(w) : emit(w, BPF_RET | BPF_K, 0, 0, s->action);
    }
    size_t middle = first + (last - first + 1) / 2;
    // number >= segments[middle].low: the upper half, after the lower one; else the lower half, next.
    size_t test = w->length;
    int error = emit(w, BPF_JMP | BPF_JGE | BPF_K, 0, 0, segments[middle].low);
    if (error == 0) error = emit_search(w, segments, first, middle - 1);
    if (error != 0) return error;
    size_t lower_length = w->length - test - 1;
    if (lower_length > UINT8_MAX) return ENOTSUP;
    w->program[test].jt = (uint8_t)lower_length;
    return emit_search(w, segments, middle, last);
}

int csb_seccomp_ranges(const struct csb_bpf *_Nonnull full, uint32_t native_arch,
                       const struct csb_bpf *_Nonnull arguments, const uint32_t *_Nullable argument_numbers,
                       size_t argument_number_count, struct csb_bpf *_Nonnull out) {
    out->filter = NULL;
    out->length = 0;
    struct segments list = {0};
    int error = follow((const struct sock_filter *)full->filter, full->length, native_arch, 0, LOADED_NOTHING, 0,
                       UINT32_MAX, &list);
    if (error == 0) error = normalize(&list, argument_numbers, argument_number_count);
    struct writer *w = error == 0 ? calloc(1, sizeof *w) : NULL;
    struct sock_filter *program = w != NULL ? calloc(BPF_MAXINSNS, sizeof *program) : NULL;
    if (error == 0 && program == NULL) error = ENOMEM;
    if (error == 0) {
        w->program = program;
        w->capacity = BPF_MAXINSNS;
        // Another architecture: the argument program's own check decides (its bad-architecture action).
        error = emit(w, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
        if (error == 0) error = emit(w, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, native_arch);
        if (error == 0) error = emit_to_arguments(w);
        if (error == 0) error = emit(w, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
        if (error == 0) error = emit_search(w, list.items, 0, list.count - 1);
    }
    if (error == 0 && (w->length + arguments->length > BPF_MAXINSNS || w->length + arguments->length >= full->length))
        error = ENOTSUP; // no shorter than libseccomp's
    if (error == 0) {
        size_t start = w->length;
        for (size_t i = 0; i < w->fixup_count; i++) w->program[w->fixups[i]].k = (uint32_t)(start - w->fixups[i] - 1);
        memcpy(&w->program[start], arguments->filter, arguments->length * sizeof *program);
        size_t length = start + arguments->length;
        struct sock_filter *fitted = realloc(program, length * sizeof *program);
        out->filter = fitted != NULL ? fitted : program;
        out->length = (uint16_t)length;
        program = NULL;
    }
    free(program);
    free(w);
    free(list.items);
    return error;
}
