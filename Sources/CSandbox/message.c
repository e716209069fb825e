// message.c — failure messages and the failure record, without stdio.
//
// The child may not call snprintf (locale, malloc in corner cases), so
// messages are concatenations of strings and numbers into fixed buffers.
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/// Concatenates the NULL-terminated list of strings into `buffer`, truncating.
void csb_msg(char *_Nonnull buffer, size_t size, const char *_Nullable first, ...) {
    if (size == 0) return;
    size_t used = 0;
    va_list parts;
    va_start(parts, first);
    for (const char *part = first; part != NULL; part = va_arg(parts, const char *)) {
        for (; *part != '\0' && used + 1 < size; part++) buffer[used++] = *part;
    }
    va_end(parts);
    buffer[used] = '\0';
}

/// Formats `value` in `base` (8, 10 or 16) into `buffer`; returns its length.
size_t csb_format_u64(char *_Nonnull buffer, size_t size, uint64_t value, unsigned base) {
    char digits[24];
    size_t count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value != 0 && count < sizeof digits);
    size_t length = count < size ? count : size - 1;
    for (size_t i = 0; i < length; i++) buffer[i] = digits[count - 1 - i];
    buffer[length] = '\0';
    return length;
}

/// Sends the failure record to the parent and exits. One write() of a
/// record smaller than PIPE_BUF is atomic, so the parent reads all or none.
_Noreturn void csb_child_fail(struct csb_child_ctx *_Nonnull ctx, int stage, int error) {
    struct csb_error record;
    memset(&record, 0, sizeof record);
    record.stage = stage;
    record.error = error;
    memcpy(record.message, ctx->message, sizeof record.message);
    record.message[sizeof record.message - 1] = '\0';
    ssize_t written;
    do {
        written = write(ctx->error_fd, &record, sizeof record);
    } while (written < 0 && errno == EINTR);
    _exit(127);
}
