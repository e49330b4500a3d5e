/*
 * flexilib.h — the C ABI of FlexiLib request-handler libraries.
 *
 * A handler library is a shared object (.so) that exports
 *
 *     struct flexilib_response *handle_request(struct flexilib_request *req);
 *
 * and optionally request_deinit, flexilib_init, flexilib_deinit,
 * the ABI-2 exports, flexilib_instance_gauges and zigInit (below).
 * The server loads it with dlopen(RTLD_NOW) on the first request routed to
 * it, calls handle_request on one of its handler threads for every request,
 * copies the response it returns, and then calls request_deinit (if
 * exported) on the same thread.
 *
 * Layout compatibility: flexilib_header, flexilib_response and the first
 * eight fields of flexilib_request are exactly the structs of the original
 * (Zig) FlexiLib, so libraries written for it load unchanged. Fields after
 * `headers_len` were appended in ABI version 1 and 2; a library may rely on
 * them once the host has called its flexilib_init export (which only
 * FlexiLib-rs does) with a version at least as high, or after checking
 * req->abi_version when it knows it runs under FlexiLib-rs.
 *
 * ABI 2 adds, for libraries that opt in (see "ABI 2" below): per-route
 * instances built from route options, answering a request later from any
 * thread (no handler slot is held meanwhile), streaming a response body in
 * chunks with back-pressure, and sending headers exactly as given. A
 * library that needs ABI 2 returns non-zero from flexilib_init when
 * host_abi_version < 2, so an older host refuses to load it.
 *
 * ABI 3 adds connection upgrades: answering 101 and then reading and
 * writing the connection's raw bytes (WebSocket, say): stream_read and
 * stream_on_readable, appended to struct flexilib_host. A library built for
 * ABI 2 runs unchanged under an ABI-3 host.
 *
 * Threads: handle_request runs on several threads at once (one call per
 * handler slot, SERVER_THREAD_COUNT); keep shared state thread-safe.
 *
 * Reloads: when the library file changes, the new file is loaded as a new
 * generation (its flexilib_init runs) while the old one may still be
 * finishing requests; the old generation's flexilib_deinit runs when its
 * last request has returned. Each generation is loaded from a private copy
 * of the file, so $ORIGIN in an rpath refers to the copy's directory, not
 * the library's: link dependencies by absolute path or from system paths.
 *
 * Memory: everything reachable from the request is valid only during the
 * call. Memory the library returns must stay valid until handle_request's
 * caller copies it, i.e. until request_deinit is called. The simplest way is
 * req->alloc(req->arena, size, align): request-scoped memory from the
 * server's per-request arena, released by the server, never by the library.
 *
 * Zig: sdk/zig/flexilib.zig (Zig 0.17) declares these structs and wraps
 * them; zigInit below serves libraries written for the original (Zig 0.13).
 */
#ifndef FLEXILIB_H
#define FLEXILIB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define FLEXILIB_ABI_VERSION 3

#include <stdint.h>

/* A header. Not NUL-terminated. Request header names arrive lowercase,
 * grouped by name in the order each name first appeared (A, B, A arrives
 * as A, A, B; the values of one name keep their order). */
struct flexilib_header {
    char *name_ptr;
    size_t name_len;
    char *value_ptr;
    size_t value_len;
};

/* Allocation callback (ABI >= 1): size bytes aligned to align (a power of
 * two) from the request arena, or NULL when out of memory. Never free it. */
typedef void *(*flexilib_alloc_fn)(void *arena, size_t size, size_t align);

struct flexilib_request {
    const char *target;      /* path and query, NUL-terminated          */
    size_t target_len;       /* length without the NUL                  */
    char *method;            /* NUL-terminated                          */
    size_t method_len;
    char *content;           /* request body (may be empty)             */
    size_t content_len;
    struct flexilib_header *headers;
    size_t headers_len;
    /* ---- appended in ABI 1 (FlexiLib-rs) ---- */
    size_t abi_version;      /* FLEXILIB_ABI_VERSION of the host        */
    flexilib_alloc_fn alloc; /* request-arena allocator                 */
    void *arena;             /* pass to alloc                           */
    /* ---- appended in ABI 2 ---- */
    void *instance;          /* the route's instance, or NULL           */
    uint64_t call;           /* this request, for the host callbacks    */
    const struct flexilib_host *host; /* the host callbacks             */
};

struct flexilib_host;

/* ---- Small helpers for the common reads (inline, no host call) ---- */

/* ASCII lowercase of c. */
static inline char flexilib_ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* The value of the first request header called `name` (compared ASCII
 * case-insensitively; `name` is NUL-terminated), its length in *len;
 * NULL (and *len 0) if there is none. Not NUL-terminated: it points into
 * the request, valid during the call. */
static inline const char *flexilib_header_value(const struct flexilib_request *req,
                                                const char *name, size_t *len)
{
    size_t name_len = 0;
    while (name[name_len] != '\0')
        name_len++;
    *len = 0;
    for (size_t i = 0; req->headers != NULL && i < req->headers_len; i++) {
        const struct flexilib_header *h = &req->headers[i];
        if (h->name_len != name_len || h->name_ptr == NULL)
            continue;
        size_t j = 0;
        while (j < name_len &&
               flexilib_ascii_lower(h->name_ptr[j]) == flexilib_ascii_lower(name[j]))
            j++;
        if (j == name_len) {
            *len = h->value_len;
            return h->value_ptr;
        }
    }
    return NULL;
}

/* The value of the first query parameter called `name` (NUL-terminated,
 * compared exactly) in req->target (`/path?a=1&b=x`), its length in *len;
 * NULL (and *len 0) if there is none. `?a` and `?a=` give an empty value.
 * The value is as sent: still percent-encoded (`%20`, `+`). It points
 * into the request, valid during the call. */
static inline const char *flexilib_query_param(const struct flexilib_request *req,
                                               const char *name, size_t *len)
{
    size_t name_len = 0;
    while (name[name_len] != '\0')
        name_len++;
    *len = 0;
    const char *p = req->target;
    const char *end = req->target + req->target_len;
    while (p < end && *p != '?')
        p++;
    while (p < end) {
        p++; /* past '?' or '&' */
        const char *key = p;
        while (p < end && *p != '=' && *p != '&' && *p != '#')
            p++;
        size_t key_len = (size_t)(p - key);
        const char *value = p;
        if (p < end && *p == '=')
            value = ++p;
        while (p < end && *p != '&' && *p != '#')
            p++;
        if (key_len == name_len) {
            size_t j = 0;
            while (j < name_len && key[j] == name[j])
                j++;
            if (j == name_len) {
                *len = (size_t)(p - value);
                return value;
            }
        }
        if (p < end && *p == '#')
            break;
    }
    return NULL;
}

/* len bytes of src copied into the request arena (ABI >= 1), or NULL when
 * out of memory. For response bodies and header values built per request. */
static inline char *flexilib_copy(struct flexilib_request *req, const char *src, size_t len)
{
    static char empty;
    if (len == 0)
        return &empty;
    char *dst = (char *)req->alloc(req->arena, len, 1);
    for (size_t i = 0; dst != NULL && i < len; i++)
        dst[i] = src[i];
    return dst;
}

struct flexilib_response {
    char *ptr;               /* body                                    */
    size_t len;
    struct flexilib_header *headers;
    size_t headers_len;
    size_t status;           /* 0 means 200                             */
    char *reason_ptr;        /* optional reason phrase, NULL for default */
    size_t reason_len;
};

/* Required. Return NULL to make the server answer 500. */
struct flexilib_response *handle_request(struct flexilib_request *req);

/* Optional. Called after the server copied the response, same thread. */
void request_deinit(void);

/* Optional (ABI >= 1). Called once per load, before the first request, with
 * the host's ABI version. Return 0 on success; anything else fails the load
 * (requests get 502 and the reason is logged). */
int flexilib_init(size_t host_abi_version);

/* Optional (ABI >= 1). Called once before the library is unloaded. */
void flexilib_deinit(void);

/* ===================================================================== *
 * ABI 2                                                                 *
 * ===================================================================== *
 *
 * Opting in. Export flexilib_abi_version returning FLEXILIB_ABI_VERSION
 * (2). From then on every response you hand the host, returned or
 * completed, is a struct flexilib_response_v2 (the original response
 * followed by flags), and the request's ABI-2 fields (instance, call, host)
 * are filled in. Refuse older hosts in flexilib_init:
 *
 *     int flexilib_init(size_t v) { return v < 2; }
 */
size_t flexilib_abi_version(void);

/* A response with flags. Cast &r->base where a struct flexilib_response *
 * is expected (handle_request's return). */
struct flexilib_response_v2 {
    struct flexilib_response base;
    size_t flags;            /* FLEXILIB_RESPONSE_* below, or 0          */
};

/* The body is streamed: base.ptr/base.len must be empty; write the body
 * with host->stream_write and end it with host->stream_end. A
 * content-length header, if you set one, is kept and frames the body;
 * otherwise the body goes out chunked. */
#define FLEXILIB_RESPONSE_STREAM 1
/* Send the headers exactly as given: the host adds no content-type. */
#define FLEXILIB_RESPONSE_AS_GIVEN 2

/* handle_request may return this instead of a response: "the response
 * comes later". Call req->host->complete(req->call, &response) exactly
 * once, from any thread, when it is ready. Until then the request (and
 * everything in it, and req->alloc on req->arena from one thread at a
 * time) stays valid; after complete returns it is gone. While a request is
 * pending it holds no handler slot, so thousands may wait at once. A
 * request never completed is answered 504 after
 * LIBRARY_COMPLETION_TIMEOUT_SECONDS (its memory is kept until you do
 * complete it). If the client left meanwhile, complete still succeeds and
 * the host drops the answer. request_deinit is not called for a pending
 * request. */
#define FLEXILIB_PENDING ((struct flexilib_response *)1)

/* Results of the host callbacks. */
#define FLEXILIB_OK 0
#define FLEXILIB_FULL 1      /* buffer full: wait for on_writable, write again */
#define FLEXILIB_CLOSED 2    /* the client went away (or the body ended): stop */
#define FLEXILIB_INVALID -1  /* unknown call, or not allowed in its state */

/* stream_write flag: return FLEXILIB_FULL instead of waiting. */
#define FLEXILIB_WRITE_NONBLOCK 1

/* The host's callbacks (req->host). Each may be called from any thread. */
struct flexilib_host {
    size_t abi_version;
    /* Answer a request handle_request returned FLEXILIB_PENDING for. The
     * response (and what it points to) need only be valid during the call:
     * the host copies it. With FLEXILIB_RESPONSE_STREAM the body follows
     * through stream_write. */
    int (*complete)(uint64_t call, const struct flexilib_response_v2 *response);
    /* Append len bytes to a streamed body (after the response was returned
     * or completed). Waits while the host holds 256 KiB that the client has
     * not taken yet, unless flags has FLEXILIB_WRITE_NONBLOCK (then
     * FLEXILIB_FULL). FLEXILIB_CLOSED once the client is gone. Do not make
     * a waiting write from a thread the body depends on. */
    int (*stream_write)(uint64_t call, const char *data, size_t len, int flags);
    /* Call callback(data) once, from any thread, when there is room for
     * more (at once if there is) or the body closed. */
    int (*stream_on_writable)(uint64_t call, void (*callback)(void *data), void *data);
    /* End a streamed body: ok non-zero for a complete body; zero aborts the
     * connection, so the client never mistakes a truncated body for a
     * whole one. The call handle is invalid afterwards. A body never ended
     * keeps its connection busy. */
    int (*stream_end)(uint64_t call, int ok);

    /* ABI 3 (read these two only if abi_version >= 3): connection
     * upgrades. To a request that asked for one (an Upgrade header, e.g.
     * a WebSocket handshake), answer status 101 with
     * FLEXILIB_RESPONSE_STREAM and the headers the protocol needs (the host
     * adds "connection: upgrade"; a 101 to a request that asked for no
     * upgrade is answered 500). The connection is then the library's:
     * stream_write sends raw bytes (never chunked), stream_end closes it
     * (ok = 0 cuts it), and the two calls below read what the client
     * sends. The host reads the socket only while fewer than 256 KiB wait
     * to be read, so a library that stops reading slows the client down. */
    /* Copy up to capacity waiting bytes into buffer; *len = how many (0:
     * nothing now, wait for stream_on_readable). FLEXILIB_CLOSED once the
     * client closed its side (or the call ended) and all was read. */
    int (*stream_read)(uint64_t call, char *buffer, size_t capacity, size_t *len);
    /* Call callback(data) once, from any thread, when there is something
     * to read (at once if there is), or the client closed, or the call
     * ended. */
    int (*stream_on_readable)(uint64_t call, void (*callback)(void *data), void *data);
};

/* Route options (ABI 2). In proxy.ini, tokens after a library path are
 * key=value options:   /w = lib/libjs.so script=app.js mode=fast
 * A library exporting flexilib_instance_new gets one instance per route,
 * built from the route's options, passed to every request of the route in
 * req->instance. Options given to a library without it are a config error.
 *
 * When a file the instance depends on (see depends_on) changes, or the
 * library itself is reloaded, a new instance is built beside the old one;
 * new requests go to it once it is built, requests in flight finish on the
 * old one, which is then freed. If the build fails, the old one keeps
 * serving. Instances are used from several threads at once. */
struct flexilib_option {
    const char *key;   size_t key_len;     /* not NUL-terminated */
    const char *value; size_t value_len;   /* not NUL-terminated */
};

struct flexilib_instance_config {
    size_t abi_version;                      /* the host's              */
    const char *route; size_t route_len;     /* the route key, e.g. "/w" */
    const char *config_dir; size_t config_dir_len; /* NUL-terminated: the
                                   config file's directory; resolve relative
                                   option paths against it              */
    const struct flexilib_option *options; size_t options_len;
    void *host_context;                      /* pass to the two below   */
    /* A file the instance read (relative to config_dir unless absolute). */
    void (*depends_on)(void *host_context, const char *path, size_t len);
    /* Why the instance cannot be built; then return NULL. The route answers
     * 502 and the server logs the message with the route. */
    void (*fail)(void *host_context, const char *message, size_t len);
};

/* Optional (ABI 2). Build the route's instance; NULL on failure. The config
 * is valid during the call only: copy what you keep. */
void *flexilib_instance_new(const struct flexilib_instance_config *config);

/* Optional (ABI 2). Free an instance after its last request. */
void flexilib_instance_free(void *instance);

/* ---- Instance gauges (optional; no ABI version needed) ----
 *
 * A library that builds instances may export flexilib_instance_gauges to
 * report numbers of an instance on the server's admin listener
 * (ADMIN_ADDRESS, /metrics): instances of its own runtime alive, requests
 * it queues, connections it holds. The host calls it when /metrics is
 * scraped, on an admin thread (never an I/O thread), with the route's current instance (while
 * requests run on it, never after flexilib_instance_free). Fill
 * out[0 .. min(n, capacity)] and return n, how many gauges the instance
 * has; if n > capacity the host may call again with room for n (it takes
 * at most 256). It must be thread-safe and cheap: read atomics, take no
 * lock a request may hold, never block.
 *
 * Each gauge is exported as flexilib_library_<name>{route="<route key>"}
 * with your help text, e.g. wasm_instances_running ->
 * flexilib_library_wasm_instances_running{route="/app"} 2. A name is ASCII
 * [a-z][a-z0-9_]*, at most 64 bytes, not ending in _total, _count, _sum,
 * _bucket, _created or _info, and should start with your runtime's word
 * (wasm_, worker_); a name the host cannot export, or one given twice, is
 * skipped. name and help must stay valid as long as the instance lives
 * (string literals, or memory the instance owns): the host copies them
 * after the call, while it still holds the instance.
 *
 * Why an export the host pulls from, rather than a callback to register
 * gauges: the numbers stay the library's (plain atomics it already keeps),
 * the host holds no pointer into the library between scrapes, nothing runs
 * on the request path, and an older host simply never looks the symbol up
 * (as a library without it is simply not asked), so it needs no ABI
 * version. */
struct flexilib_gauge {
    const char *name; size_t name_len;   /* not NUL-terminated            */
    const char *help; size_t help_len;   /* not NUL-terminated, one line  */
    double value;
};

size_t flexilib_instance_gauges(void *instance, struct flexilib_gauge *out,
                                size_t capacity);

/* Optional, for Zig libraries written for the original FlexiLib. Called on
 * the handler thread before EVERY handle_request with a pointer to a Zig
 * std.mem.Allocator value in the layout and calling convention of Zig 0.13
 * (the original's compiler): struct { ptr, vtable }, vtable { alloc, resize,
 * free } with Zig's own (not C) calling convention. Its memory comes from
 * the request arena: valid until the request ends, released by the server
 * (free does nothing, resize only shrinks in place). The pointer is valid
 * for that request only. Not for new code: use req->alloc (the Zig SDK in
 * sdk/zig does). */
void zigInit(void *zig_allocator);

#ifdef __cplusplus
}
#endif

#endif /* FLEXILIB_H */
