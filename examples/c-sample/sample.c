/*
 * sample.c — a FlexiLib handler library in plain C.
 *
 * Build:
 *   cc -shared -fPIC -O2 -Wall -Wextra -Werror -I include \
 *      -o libsample_c.so examples/c-sample/sample.c
 *
 * Behaviour (see README.md):
 *   default        body "hello from C: METHOD TARGET headers=N", no
 *                  Content-Type (the server adds text/plain)
 *   x-json         body {"lang":"c"}, Content-Type: application/json
 *   x-reason: TEXT status 299 with reason phrase TEXT
 *   x-query: NAME  body: the raw value of query parameter NAME
 *                  (404 "no NAME" without one)
 *   x-null         returns NULL (the server answers 500)
 * Every response carries "X-Lang: C".
 *
 * All returned memory comes from req->alloc(req->arena, ...): it is released
 * by the server after it copied the response, so nothing is freed here.
 * Only the project header is included besides the C library's own; its
 * inline helpers do the reads (flexilib_header_value, flexilib_query_param)
 * and the arena copies (flexilib_copy).
 */
#include "flexilib.h"

#include <stdatomic.h>
#include <string.h>

/* The host ABI version passed to flexilib_init (0: not called, i.e. an old
 * host whose requests lack the alloc/arena fields). */
static atomic_size_t host_abi_version;

/* Number of request_deinit calls; kept only to show the hook runs. */
static atomic_ulong deinit_calls;

int flexilib_init(size_t version)
{
    atomic_store(&host_abi_version, version);
    return 0;
}

void request_deinit(void)
{
    atomic_fetch_add_explicit(&deinit_calls, 1, memory_order_relaxed);
}

/* Request-scoped memory; NULL on failure. Zero bytes are not requested from
 * the host: a pointer to a static byte is returned instead. */
static void *arena_alloc(struct flexilib_request *req, size_t size,
                         size_t align)
{
    static char empty;
    if (size == 0)
        return &empty;
    return req->alloc(req->arena, size, align);
}

/* Fills header *h with arena copies of name and value; 0 on failure. */
static int set_header(struct flexilib_request *req, struct flexilib_header *h,
                      const char *name, const char *value, size_t value_len)
{
    h->name_len = strlen(name);
    h->name_ptr = flexilib_copy(req, name, h->name_len);
    h->value_len = value_len;
    h->value_ptr = flexilib_copy(req, value, value_len);
    return h->name_ptr != NULL && h->value_ptr != NULL;
}

/* Writes n in decimal to out (room for 20 digits); returns the length. */
static size_t format_size(size_t n, char *out)
{
    char digits[20];
    size_t len = 0;
    do {
        digits[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    for (size_t i = 0; i < len; i++)
        out[i] = digits[len - 1 - i];
    return len;
}

/* "hello from C: METHOD TARGET headers=N" in the arena; NULL on failure. */
static char *hello_body(struct flexilib_request *req, size_t *len)
{
    static const char prefix[] = "hello from C: ";
    static const char count[] = " headers=";
    char number[20];
    size_t number_len = format_size(req->headers_len, number);
    if (req->method_len > (size_t)-1 / 4 || req->target_len > (size_t)-1 / 4)
        return NULL; /* would overflow; impossible for a real request */
    size_t total = sizeof prefix - 1 + req->method_len + 1 + req->target_len +
                   sizeof count - 1 + number_len;
    char *body = arena_alloc(req, total, 1);
    if (body == NULL)
        return NULL;
    char *p = body;
    memcpy(p, prefix, sizeof prefix - 1);
    p += sizeof prefix - 1;
    if (req->method_len > 0)
        memcpy(p, req->method, req->method_len);
    p += req->method_len;
    *p++ = ' ';
    if (req->target_len > 0)
        memcpy(p, req->target, req->target_len);
    p += req->target_len;
    memcpy(p, count, sizeof count - 1);
    p += sizeof count - 1;
    memcpy(p, number, number_len);
    *len = total;
    return body;
}

struct flexilib_response *handle_request(struct flexilib_request *req)
{
    /* The alloc/arena fields exist only in ABI >= 1 (FlexiLib-rs). */
    if (req == NULL || atomic_load(&host_abi_version) < 1 ||
        req->abi_version < 1 || req->alloc == NULL)
        return NULL;
    size_t len;
    if (flexilib_header_value(req, "x-null", &len) != NULL)
        return NULL;

    struct flexilib_response *resp =
        arena_alloc(req, sizeof *resp, _Alignof(struct flexilib_response));
    struct flexilib_header *headers =
        arena_alloc(req, 2 * sizeof *headers, _Alignof(struct flexilib_header));
    if (resp == NULL || headers == NULL)
        return NULL;
    memset(resp, 0, sizeof *resp); /* status 0 (200), no reason */
    resp->headers = headers;

    static const char lang[] = "C";
    if (!set_header(req, &headers[resp->headers_len++], "X-Lang", lang,
                    sizeof lang - 1))
        return NULL;

    const char *query_name = flexilib_header_value(req, "x-query", &len);
    if (query_name != NULL) {
        /* The header's value is not NUL-terminated: copy it to one. */
        char name[64];
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, query_name, len);
        name[len] = '\0';
        size_t value_len;
        const char *value = flexilib_query_param(req, name, &value_len);
        if (value == NULL) {
            static const char none[] = "no such query parameter";
            resp->status = 404;
            value = none;
            value_len = sizeof none - 1;
        }
        resp->len = value_len;
        resp->ptr = flexilib_copy(req, value, value_len);
    } else if (flexilib_header_value(req, "x-json", &len) != NULL) {
        static const char json[] = "{\"lang\":\"c\"}";
        static const char type[] = "application/json";
        if (!set_header(req, &headers[resp->headers_len++], "Content-Type",
                        type, sizeof type - 1))
            return NULL;
        resp->len = sizeof json - 1;
        resp->ptr = flexilib_copy(req, json, resp->len);
    } else {
        resp->ptr = hello_body(req, &resp->len);
    }
    if (resp->ptr == NULL)
        return NULL;

    size_t reason_len;
    const char *reason = flexilib_header_value(req, "x-reason", &reason_len);
    if (reason != NULL) {
        resp->status = 299;
        resp->reason_len = reason_len;
        resp->reason_ptr = flexilib_copy(req, reason, reason_len);
        if (resp->reason_ptr == NULL)
            return NULL;
    }
    return resp;
}
