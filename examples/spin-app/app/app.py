"""A Spin HTTP component in Python (componentize-py), for FlexiLib's
`wasm:PATH/spin.toml` routes: a counter and a small store in Spin's
key-value store, Spin variables, the environment, files and outbound HTTP.

    GET    /count            the "hits" counter of the default store, plus one
    GET    /kv/KEY           a value of the default store (404 if absent)
    PUT    /kv/KEY           sets it to the request body
    DELETE /kv/KEY           deletes it
    GET    /kv-keys          the keys of the default store, one a line
    GET    /kv-open/LABEL    opens store LABEL (the error, if refused)
    GET    /var/NAME         a component variable (404 with the error)
    GET    /env/NAME         an environment variable
    GET    /file/PATH        a file the component sees (/PATH)
    GET    /fetch/URL        fetches http://URL through wasi:http
    GET    /info             the request's path and Spin's headers

The paths are those below the component's route (`spin-path-info`).
"""

import asyncio
import os

import poll_loop
from componentize_py_types import Err, Ok
from poll_loop import PollLoop, Sink, Stream
from wit_world import exports
from wit_world.imports import key_value, variables
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Delete,
    Method_Get,
    Method_Put,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
)

SPIN_HEADERS = [
    "spin-full-url",
    "spin-path-info",
    "spin-matched-route",
    "spin-raw-component-route",
    "spin-component-route",
    "spin-base-path",
]


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        loop = PollLoop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(handle(request, response_out))


async def answer(out: ResponseOutparam, status: int, text: str) -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(out, Ok(response))
    sink = Sink(body)
    await sink.send(text.encode())
    sink.close()


async def read_body(request: IncomingRequest) -> bytes:
    stream = Stream(request.consume())
    data = b""
    while True:
        chunk = await stream.next()
        if chunk is None:
            return data
        data += chunk


def error_text(error: Err) -> str:
    value = error.value
    name = type(value).__name__.split("_")[-1]
    detail = getattr(value, "value", None)
    return name if detail is None else f"{name}: {detail}"


async def fetch(url: str) -> tuple[int, str]:
    authority, _, path = url.partition("/")
    request = OutgoingRequest(Fields())
    request.set_scheme(Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query("/" + path)
    response = await poll_loop.send(request)
    stream = Stream(response.consume())
    data = b""
    while True:
        chunk = await stream.next()
        if chunk is None:
            break
        data += chunk
    return response.status(), data.decode(errors="replace")


async def handle(request: IncomingRequest, out: ResponseOutparam) -> None:
    path = (request.path_with_query() or "/").split("?")[0]
    # The path below the route (Spin's `spin-path-info` header), so the
    # app answers the same whatever its base path or route.
    info = request.headers().get("spin-path-info")
    inner = info[0].decode() if info else path
    method = request.method()
    _, _, rest = inner.partition("/")
    command, _, arg = rest.partition("/")
    try:
        if command == "count":
            store = key_value.Store.open("default")
            hits = int((store.get("hits") or b"0").decode()) + 1
            store.set("hits", str(hits).encode())
            await answer(out, 200, f"hits: {hits}\n")
        elif command == "kv":
            store = key_value.Store.open("default")
            if isinstance(method, Method_Put):
                store.set(arg, await read_body(request))
                await answer(out, 200, "stored\n")
            elif isinstance(method, Method_Delete):
                store.delete(arg)
                await answer(out, 200, "deleted\n")
            else:
                value = store.get(arg)
                if value is None:
                    await answer(out, 404, "no such key\n")
                else:
                    await answer(out, 200, value.decode(errors="replace"))
        elif command == "kv-keys":
            store = key_value.Store.open("default")
            await answer(out, 200, "".join(f"{key}\n" for key in store.get_keys()))
        elif command == "kv-open":
            key_value.Store.open(arg)
            await answer(out, 200, f"opened {arg}\n")
        elif command == "var":
            await answer(out, 200, variables.get(arg))
        elif command == "env":
            await answer(out, 200, os.environ.get(arg, "(unset)"))
        elif command == "file":
            with open("/" + arg) as file:
                await answer(out, 200, file.read())
        elif command == "fetch":
            status, text = await fetch(arg)
            await answer(out, 200, f"{status} {text}")
        elif command == "info":
            headers = request.headers()
            lines = [f"path: {path}"]
            for name in SPIN_HEADERS:
                values = headers.get(name)
                lines.append(f"{name}: {values[0].decode() if values else '(none)'}")
            await answer(out, 200, "\n".join(lines) + "\n")
        else:
            await answer(out, 200, f"hello from a Spin component in Python: {path}\n")
    except Err as error:
        await answer(out, 404 if command in ("var", "kv-open") else 500, f"error: {error_text(error)}\n")
    except OSError as error:
        await answer(out, 404, f"error: {error.strerror}\n")
