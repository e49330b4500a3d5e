/*
 * An ABI-2 handler library in C: a per-route instance configured by route
 * options, responses completed later from the library's own threads, and
 * bodies streamed in chunks with back-pressure.
 *
 * Route it with options, e.g. in proxy.ini:
 *
 *     /s = libstream.so greeting=greeting.txt interval_ms=100
 *
 * greeting.txt (relative to the config file) is read when the instance is
 * built and named as a dependency: edit it and the next requests see the
 * new text. A greeting file whose text starts with FAIL makes the build
 * fail (the old instance keeps serving).
 *
 * Paths (after the route prefix, e.g. /s/events):
 *   .../events?n=N   server-sent events: N ticks, one every interval_ms
 *   .../later?ms=M   answered M ms later from another thread
 *   .../never        never answered (the server answers 504 after
 *                    LIBRARY_COMPLETION_TIMEOUT_SECONDS)
 *   .../big?mb=N     N MiB streamed as fast as the client takes them
 *   .../abort        a chunk, then the stream is aborted
 *   .../quick        a body written and ended by a thread that finishes
 *                    before handle_request returns the head
 *   .../bare         a body with no content-type at all (headers as given)
 *   anything else    the greeting, answered at once
 *
 * Build: cc -shared -fPIC -O2 -I include -o libstream.so examples/c-stream/stream.c
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flexilib.h"

struct instance {
    char greeting[256];
    long interval_ms;
};

size_t flexilib_abi_version(void) { return FLEXILIB_ABI_VERSION; }

/* This library needs ABI 2: refuse older hosts. */
int flexilib_init(size_t host_abi_version) { return host_abi_version < 2; }

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *option(const struct flexilib_instance_config *c, const char *key, char *out,
                          size_t size) {
    for (size_t i = 0; i < c->options_len; i++) {
        const struct flexilib_option *o = &c->options[i];
        if (o->key_len == strlen(key) && memcmp(o->key, key, o->key_len) == 0 &&
            o->value_len < size) {
            memcpy(out, o->value, o->value_len);
            out[o->value_len] = 0;
            return out;
        }
    }
    return NULL;
}

static void *instance_fail(const struct flexilib_instance_config *c, const char *why) {
    c->fail(c->host_context, why, strlen(why));
    return NULL;
}

void *flexilib_instance_new(const struct flexilib_instance_config *c) {
    char name[200], path[512], interval[32];
    struct instance *self = calloc(1, sizeof *self);
    if (!self) return instance_fail(c, "out of memory");
    self->interval_ms = option(c, "interval_ms", interval, sizeof interval) ? atol(interval) : 100;
    if (!option(c, "greeting", name, sizeof name)) {
        strcpy(self->greeting, "hello");
        return self;
    }
    c->depends_on(c->host_context, name, strlen(name));
    snprintf(path, sizeof path, "%s/%s", c->config_dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        free(self);
        return instance_fail(c, "cannot open the greeting file");
    }
    size_t n = fread(self->greeting, 1, sizeof self->greeting - 1, f);
    fclose(f);
    while (n > 0 && (self->greeting[n - 1] == '\n' || self->greeting[n - 1] == '\r')) n--;
    self->greeting[n] = 0;
    if (strncmp(self->greeting, "FAIL", 4) == 0) {
        free(self);
        return instance_fail(c, "the greeting file says FAIL");
    }
    return self;
}

void flexilib_instance_free(void *instance) { free(instance); }

/* ---- helpers ---- */

static struct flexilib_header header(const char *name, const char *value) {
    struct flexilib_header h = {(char *)name, strlen(name), (char *)value, strlen(value)};
    return h;
}

static long query_number(const struct flexilib_request *req, const char *key, long fallback) {
    const char *q = memchr(req->target, '?', req->target_len);
    if (!q) return fallback;
    const char *hit = strstr(q, key);
    return hit ? atol(hit + strlen(key)) : fallback;
}

static int path_ends_with(const struct flexilib_request *req, const char *suffix) {
    size_t len = req->target_len;
    const char *q = memchr(req->target, '?', req->target_len);
    if (q) len = (size_t)(q - req->target);
    size_t s = strlen(suffix);
    return len >= s && memcmp(req->target + len - s, suffix, s) == 0;
}

/* A response in the request arena. */
static struct flexilib_response *respond(struct flexilib_request *req, size_t flags,
                                         const char *body, struct flexilib_header *headers,
                                         size_t headers_len) {
    struct flexilib_response_v2 *r = req->alloc(req->arena, sizeof *r, _Alignof(struct flexilib_response_v2));
    struct flexilib_header *h = req->alloc(req->arena, sizeof *h * (headers_len ? headers_len : 1), _Alignof(struct flexilib_header));
    if (!r || !h) return NULL;
    memset(r, 0, sizeof *r);
    if (headers_len) memcpy(h, headers, sizeof *h * headers_len);
    r->base.ptr = (char *)body;
    r->base.len = body ? strlen(body) : 0;
    r->base.headers = h;
    r->base.headers_len = headers_len;
    r->flags = flags;
    return &r->base;
}

/* ---- streamed bodies, written from a thread of their own ---- */

struct stream_job {
    const struct flexilib_host *host;
    uint64_t call;
    long count, interval_ms, megabytes;
    int abort;
};

static void *stream_events(void *arg) {
    struct stream_job *job = arg;
    char line[64];
    int ok = 1;
    for (long i = 1; i <= job->count; i++) {
        if (i > 1) sleep_ms(job->interval_ms);
        int n = snprintf(line, sizeof line, "data: tick %ld\n\n", i);
        if (job->host->stream_write(job->call, line, (size_t)n, 0) != FLEXILIB_OK) {
            ok = 0;
            break;
        }
    }
    job->host->stream_end(job->call, ok);
    free(job);
    return NULL;
}

static void *stream_big(void *arg) {
    struct stream_job *job = arg;
    static char chunk[64 * 1024];
    memset(chunk, 'b', sizeof chunk);
    int ok = 1;
    for (long i = 0; i < job->megabytes * 16; i++) {
        /* Waits while the host's buffer is full: memory stays bounded. */
        if (job->host->stream_write(job->call, chunk, sizeof chunk, 0) != FLEXILIB_OK) {
            ok = 0;
            break;
        }
    }
    job->host->stream_end(job->call, ok);
    free(job);
    return NULL;
}

static void *stream_then_abort(void *arg) {
    struct stream_job *job = arg;
    job->host->stream_write(job->call, "partial", 7, 0);
    sleep_ms(50);
    job->host->stream_end(job->call, 0);
    free(job);
    return NULL;
}

static void *stream_quick(void *arg) {
    struct stream_job *job = arg;
    job->host->stream_write(job->call, "written before the head\n", 24, 0);
    job->host->stream_end(job->call, 1);
    return NULL;
}

static int start(void *(*run)(void *), struct stream_job *job) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, run, job) != 0) return -1;
    pthread_detach(thread);
    return 0;
}

/* ---- answered later ---- */

struct later_job {
    const struct flexilib_host *host;
    uint64_t call;
    long ms;
    char greeting[256];
};

static void *complete_later(void *arg) {
    struct later_job *job = arg;
    sleep_ms(job->ms);
    char body[400];
    snprintf(body, sizeof body, "later after %ldms: %s\n", job->ms, job->greeting);
    struct flexilib_header h[1] = {header("x-answered", "later")};
    struct flexilib_response_v2 r;
    memset(&r, 0, sizeof r);
    r.base.ptr = body;
    r.base.len = strlen(body);
    r.base.headers = h;
    r.base.headers_len = 1;
    /* The host copies the response during the call. */
    job->host->complete(job->call, &r);
    free(job);
    return NULL;
}

struct flexilib_response *handle_request(struct flexilib_request *req) {
    struct instance *self = req->instance;
    if (!self || req->abi_version < 2) return NULL;
    struct flexilib_header sse[2] = {header("content-type", "text/event-stream"),
                                     header("cache-control", "no-cache")};
    if (path_ends_with(req, "/events") || path_ends_with(req, "/big") ||
        path_ends_with(req, "/abort")) {
        struct stream_job *job = calloc(1, sizeof *job);
        if (!job) return NULL;
        job->host = req->host;
        job->call = req->call;
        job->count = query_number(req, "n=", 5);
        job->interval_ms = self->interval_ms;
        job->megabytes = query_number(req, "mb=", 1);
        void *(*run)(void *) = path_ends_with(req, "/events") ? stream_events
                               : path_ends_with(req, "/big") ? stream_big
                                                              : stream_then_abort;
        /* The response head first: writes are for after the hand-over. */
        struct flexilib_response *r = respond(req, FLEXILIB_RESPONSE_STREAM, NULL, sse, 2);
        if (!r || start(run, job) != 0) {
            free(job);
            return NULL;
        }
        return r;
    }
    if (path_ends_with(req, "/quick")) {
        struct stream_job job = {req->host, req->call, 0, 0, 0, 0};
        pthread_t thread;
        if (pthread_create(&thread, NULL, stream_quick, &job) != 0) return NULL;
        pthread_join(thread, NULL);
        return respond(req, FLEXILIB_RESPONSE_STREAM, NULL, sse, 1);
    }
    if (path_ends_with(req, "/later")) {
        struct later_job *job = calloc(1, sizeof *job);
        if (!job) return NULL;
        job->host = req->host;
        job->call = req->call;
        job->ms = query_number(req, "ms=", 100);
        strcpy(job->greeting, self->greeting);
        pthread_t thread;
        if (pthread_create(&thread, NULL, complete_later, job) != 0) {
            free(job);
            return NULL;
        }
        pthread_detach(thread);
        return FLEXILIB_PENDING;
    }
    if (path_ends_with(req, "/never")) return FLEXILIB_PENDING;
    if (path_ends_with(req, "/bare")) {
        return respond(req, FLEXILIB_RESPONSE_AS_GIVEN, "no content type\n", NULL, 0);
    }
    char *body = req->alloc(req->arena, 300, 1);
    if (!body) return NULL;
    snprintf(body, 300, "%s\n", self->greeting);
    return respond(req, 0, body, NULL, 0);
}
