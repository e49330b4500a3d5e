// A wasi:http/proxy component in C: `wasi:http/incoming-handler#handle`
// against the C bindings wit-bindgen-c generates for wit/world.wit (see
// build.sh). A lean guest: it measures the host, not a language runtime.
//
// What it answers depends on the path's last segment, so that one component
// exercises the host's sandbox and limits:
//
//   /            GREETING: METHOD PATH
//   /echo        the request body back
//   /stream      three lines, 200 ms apart, streamed as written
//   /env?NAME    the value of environment variable NAME, or "(unset)"
//   /file?PATH   the content of file PATH, or why it cannot be opened
//   /write?PATH  writes "written\n" to PATH, or says why it cannot
//   /fetch?HOST:PORT/PATH  an outbound GET: "upstream said: STATUS BODY", or the error code
//   /trap        writes to stderr, then traps (unreachable)
//   /spin        loops for ever (the host's cpu_ms stops it)
//   /hog         allocates 1 MiB blocks until memory runs out
#include "hello.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GREETING
#define GREETING "hello from a C component"
#endif

// A growable byte buffer.
typedef struct {
    uint8_t *data;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *bytes, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) abort();
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

// A NUL-terminated copy of a WIT string.
static char *c_string(const uint8_t *ptr, size_t len) {
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, ptr, len);
    s[len] = 0;
    return s;
}

// Reads a whole input stream, then drops it.
static void read_all(wasi_io_streams_own_input_stream_t stream, buf_t *into) {
    wasi_io_streams_borrow_input_stream_t borrowed = wasi_io_streams_borrow_input_stream(stream);
    for (;;) {
        hello_list_u8_t chunk;
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_input_stream_blocking_read(borrowed, 65536, &chunk, &err)) {
            if (err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
                wasi_io_error_error_drop_own(err.val.last_operation_failed);
            break;
        }
        buf_add(into, chunk.ptr, chunk.len);
        hello_list_u8_free(&chunk);
    }
    wasi_io_streams_input_stream_drop_own(stream);
}

// Reads an incoming body whole, then drops it.
static void read_body(wasi_http_types_own_incoming_body_t body, buf_t *into) {
    wasi_http_types_own_input_stream_t stream;
    if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream))
        read_all(stream, into);
    wasi_http_types_incoming_body_drop_own(body);
}

// Writes to an output stream, 4096 bytes at a time (the most
// blocking-write-and-flush takes); false if the stream failed.
static bool write_all(wasi_io_streams_borrow_output_stream_t stream, const uint8_t *data, size_t len) {
    for (size_t off = 0; off < len;) {
        size_t n = len - off < 4096 ? len - off : 4096;
        hello_list_u8_t chunk = {(uint8_t *)data + off, n};
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(stream, &chunk, &err)) {
            if (err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
                wasi_io_error_error_drop_own(err.val.last_operation_failed);
            return false;
        }
        off += n;
    }
    return true;
}

// A response with a content type, handed to the host; returns its body.
static wasi_http_types_own_outgoing_body_t start_response(wasi_http_types_own_response_outparam_t out,
                                                          uint16_t status, const char *content_type) {
    wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
    wasi_http_types_field_name_t name = {(uint8_t *)"content-type", strlen("content-type")};
    wasi_http_types_field_value_t value = {(uint8_t *)content_type, strlen(content_type)};
    wasi_http_types_header_error_t header_error;
    wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &name, &value, &header_error);
    wasi_http_types_own_outgoing_response_t response = wasi_http_types_constructor_outgoing_response(headers);
    wasi_http_types_borrow_outgoing_response_t borrowed = wasi_http_types_borrow_outgoing_response(response);
    wasi_http_types_method_outgoing_response_set_status_code(borrowed, status);
    wasi_http_types_own_outgoing_body_t body;
    if (!wasi_http_types_method_outgoing_response_body(borrowed, &body)) abort();
    wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false, .val = {.ok = response}};
    wasi_http_types_static_response_outparam_set(out, &result);
    return body;
}

// Ends a body as complete.
static void finish_body(wasi_http_types_own_outgoing_body_t body) {
    wasi_http_types_error_code_t err;
    if (!wasi_http_types_static_outgoing_body_finish(body, NULL, &err)) wasi_http_types_error_code_free(&err);
}

// A whole response.
static void respond(wasi_http_types_own_response_outparam_t out, uint16_t status, const char *content_type,
                    const uint8_t *data, size_t len) {
    wasi_http_types_own_outgoing_body_t body = start_response(out, status, content_type);
    wasi_http_types_own_output_stream_t stream;
    if (wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream)) {
        write_all(wasi_io_streams_borrow_output_stream(stream), data, len);
        wasi_io_streams_output_stream_drop_own(stream);
    }
    finish_body(body);
}

static void respond_text(wasi_http_types_own_response_outparam_t out, uint16_t status, buf_t *text) {
    respond(out, status, "text/plain", text->data, text->len);
}

// The name of an error code the tests look for, else its number.
static void error_code_name(const wasi_http_types_error_code_t *code, buf_t *into) {
    char number[32];
    switch (code->tag) {
    case WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED: buf_str(into, "HTTP-request-denied"); break;
    case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_REFUSED: buf_str(into, "connection-refused"); break;
    default:
        snprintf(number, sizeof number, "error-code %d", code->tag);
        buf_str(into, number);
    }
}

// GET http://TARGET (HOST:PORT/PATH) through wasi:http/outgoing-handler.
static void fetch(const char *target, buf_t *text) {
    const char *slash = strchr(target, '/');
    size_t authority_len = slash ? (size_t)(slash - target) : strlen(target);
    const char *path = slash ? slash : "/";
    wasi_http_types_own_outgoing_request_t request =
        wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
    wasi_http_types_borrow_outgoing_request_t borrowed = wasi_http_types_borrow_outgoing_request(request);
    wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
    hello_string_t authority = {(uint8_t *)target, authority_len};
    hello_string_t path_with_query = {(uint8_t *)path, strlen(path)};
    wasi_http_types_method_outgoing_request_set_scheme(borrowed, &scheme);
    wasi_http_types_method_outgoing_request_set_authority(borrowed, &authority);
    wasi_http_types_method_outgoing_request_set_path_with_query(borrowed, &path_with_query);

    wasi_http_outgoing_handler_own_future_incoming_response_t future;
    wasi_http_outgoing_handler_error_code_t error;
    if (!wasi_http_outgoing_handler_handle(request, NULL, &future, &error)) {
        buf_str(text, "outbound error: ");
        error_code_name(&error, text);
        wasi_http_types_error_code_free(&error);
        return;
    }
    wasi_http_types_borrow_future_incoming_response_t borrowed_future =
        wasi_http_types_borrow_future_incoming_response(future);
    wasi_io_poll_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(borrowed_future);
    wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
    wasi_io_poll_pollable_drop_own(ready);
    wasi_http_types_result_result_own_incoming_response_error_code_void_t result;
    if (!wasi_http_types_method_future_incoming_response_get(borrowed_future, &result) || result.is_err) {
        buf_str(text, "outbound error: no result");
    } else if (result.val.ok.is_err) {
        buf_str(text, "outbound error: ");
        error_code_name(&result.val.ok.val.err, text);
        wasi_http_types_error_code_free(&result.val.ok.val.err);
    } else {
        wasi_http_types_own_incoming_response_t response = result.val.ok.val.ok;
        wasi_http_types_borrow_incoming_response_t borrowed_response =
            wasi_http_types_borrow_incoming_response(response);
        char status[64];
        snprintf(status, sizeof status, "upstream said: %d ",
                 wasi_http_types_method_incoming_response_status(borrowed_response));
        buf_str(text, status);
        wasi_http_types_own_incoming_body_t body;
        if (wasi_http_types_method_incoming_response_consume(borrowed_response, &body)) read_body(body, text);
        wasi_http_types_incoming_response_drop_own(response);
    }
    wasi_http_types_future_incoming_response_drop_own(future);
}

// Three lines, 200 ms apart, each written as soon as it is made.
static void stream_lines(wasi_http_types_own_response_outparam_t out) {
    wasi_http_types_own_outgoing_body_t body = start_response(out, 200, "text/plain");
    wasi_http_types_own_output_stream_t stream;
    if (wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream)) {
        for (int i = 1; i <= 3; i++) {
            if (i > 1) {
                wasi_io_poll_own_pollable_t later = wasi_clocks_monotonic_clock_subscribe_duration(200000000ull);
                wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(later));
                wasi_io_poll_pollable_drop_own(later);
            }
            char line[32];
            int n = snprintf(line, sizeof line, "line %d\n", i);
            if (!write_all(wasi_io_streams_borrow_output_stream(stream), (uint8_t *)line, (size_t)n)) break;
        }
        wasi_io_streams_output_stream_drop_own(stream);
    }
    finish_body(body);
}

void exports_wasi_http_incoming_handler_handle(exports_wasi_http_incoming_handler_own_incoming_request_t request,
                                               exports_wasi_http_incoming_handler_own_response_outparam_t out) {
    wasi_http_types_borrow_incoming_request_t borrowed = wasi_http_types_borrow_incoming_request(request);
    wasi_http_types_method_t method;
    wasi_http_types_method_incoming_request_method(borrowed, &method);
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    char *method_name = method.tag == WASI_HTTP_TYPES_METHOD_OTHER
                            ? c_string(method.val.other.ptr, method.val.other.len)
                            : c_string((const uint8_t *)methods[method.tag], strlen(methods[method.tag]));
    hello_string_t raw_target;
    char *target = wasi_http_types_method_incoming_request_path_with_query(borrowed, &raw_target)
                       ? c_string(raw_target.ptr, raw_target.len)
                       : c_string((const uint8_t *)"/", 1);
    char *query = strchr(target, '?');
    if (query) *query++ = 0;
    const char *arg = query ? query : "";
    // The last segment chooses the behaviour, so the guest works behind any prefix.
    const char *action = strrchr(target, '/');
    if (!action) action = target;

    buf_t text = {0};
    if (strcmp(action, "/echo") == 0) {
        wasi_http_types_own_incoming_body_t body;
        if (wasi_http_types_method_incoming_request_consume(borrowed, &body)) read_body(body, &text);
        respond(out, 200, "application/octet-stream", text.data, text.len);
    } else if (strcmp(action, "/stream") == 0) {
        stream_lines(out);
    } else if (strcmp(action, "/env") == 0) {
        const char *value = getenv(arg);
        buf_str(&text, value ? value : "(unset)");
        respond_text(out, 200, &text);
    } else if (strcmp(action, "/file") == 0) {
        FILE *file = fopen(arg, "r");
        if (!file) {
            buf_str(&text, "cannot open: ");
            buf_str(&text, strerror(errno));
        } else {
            char chunk[4096];
            size_t n;
            while ((n = fread(chunk, 1, sizeof chunk, file)) > 0) buf_add(&text, chunk, n);
            fclose(file);
        }
        respond_text(out, 200, &text);
    } else if (strcmp(action, "/write") == 0) {
        FILE *file = fopen(arg, "w");
        if (!file || fputs("written\n", file) < 0 || fclose(file) != 0) {
            buf_str(&text, "cannot write: ");
            buf_str(&text, strerror(errno));
        } else {
            buf_str(&text, "written");
        }
        respond_text(out, 200, &text);
    } else if (strcmp(action, "/fetch") == 0) {
        fetch(arg, &text);
        respond_text(out, 200, &text);
    } else if (strcmp(action, "/trap") == 0) {
        fprintf(stderr, "about to trap\n");
        __builtin_trap();
    } else if (strcmp(action, "/spin") == 0) {
        volatile unsigned long spins = 0;
        for (;;) spins++;
    } else if (strcmp(action, "/hog") == 0) {
        // The blocks are chained from a global, so the compiler cannot
        // drop allocations nothing reads.
        static void *volatile chain;
        size_t mib = 0;
        for (;;) {
            void **block = malloc(1 << 20);
            if (!block) break;
            memset(block, 1, 1 << 20);
            *block = chain;
            chain = block;
            mib++;
        }
        char line[64];
        snprintf(line, sizeof line, "allocated %zu MiB, then malloc failed", mib);
        buf_str(&text, line);
        respond_text(out, 200, &text);
    } else {
        buf_str(&text, GREETING ": ");
        buf_str(&text, method_name);
        buf_str(&text, " ");
        buf_str(&text, target);
        buf_str(&text, "\n");
        respond_text(out, 200, &text);
    }
    free(text.data);
    free(target);
    free(method_name);
    wasi_http_types_incoming_request_drop_own(request);
}
