/*
 * crash.c — a FlexiLib handler library that crashes on demand, to exercise
 * the supervisor (a crashing library must not take the service down).
 *
 * Build:
 *   cc -shared -fPIC -O2 -Wall -Wextra -Werror -I include \
 *      -o libcrash.so examples/c-crash/crash.c
 *
 * Behaviour:
 *   x-crash: segv   dereferences NULL: the worker dies with SIGSEGV
 *   x-crash: abort  calls abort(): the worker dies with SIGABRT
 *   anything else   body "alive" (a static string: no allocation needed)
 */
#include "flexilib.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *header_value(const struct flexilib_request *req, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < req->headers_len; i++) {
        const struct flexilib_header *h = &req->headers[i];
        if (h->name_len == name_len && strncasecmp(h->name_ptr, name, name_len) == 0) {
            *len = h->value_len;
            return h->value_ptr;
        }
    }
    return NULL;
}

static struct flexilib_response alive = {
    .ptr = "alive",
    .len = 5,
};

struct flexilib_response *handle_request(struct flexilib_request *req)
{
    size_t len = 0;
    const char *how = header_value(req, "x-crash", &len);
    if (how != NULL && len == 4 && strncmp(how, "segv", 4) == 0) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
    }
    if (how != NULL && len == 5 && strncmp(how, "abort", 5) == 0)
        abort();
    return &alive;
}
