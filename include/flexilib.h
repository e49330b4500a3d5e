/*
 * flexilib.h — the C ABI of FlexiLib request-handler libraries.
 *
 * A handler library is a shared object (.so) that exports
 *
 *     struct flexilib_response *handle_request(struct flexilib_request *req);
 *
 * and optionally request_deinit, flexilib_init, flexilib_deinit and
 * zigInit (below).
 * The server loads it with dlopen(RTLD_NOW) on the first request routed to
 * it, calls handle_request on one of its handler threads for every request,
 * copies the response it returns, and then calls request_deinit (if
 * exported) on the same thread.
 *
 * Layout compatibility: flexilib_header, flexilib_response and the first
 * eight fields of flexilib_request are exactly the structs of the original
 * (Zig) FlexiLib, so libraries written for it load unchanged. Fields after
 * `headers_len` were appended in ABI version 1; a library may rely on them
 * once the host has called its flexilib_init export (which only FlexiLib-rs
 * does), or after checking req->abi_version when it knows it runs under
 * FlexiLib-rs.
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
#define FLEXILIB_ABI_VERSION 1

/* A header. Not NUL-terminated. Request header names arrive lowercase. */
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
};

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
