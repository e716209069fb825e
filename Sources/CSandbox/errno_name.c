// errno_name.c — symbolic names of errno values, for one-line error messages.
#include "csandbox.h"

#include <errno.h>
#include <string.h>

const char *_Nullable csb_errno_name(int error) {
    // glibc >= 2.32 knows the names; NULL for values it does not.
    return strerrorname_np(error);
}
