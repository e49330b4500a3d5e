#!/usr/bin/env bash
# User-space instructions per request, measured with callgrind (repeatable on
# a noisy machine, unlike requests/s). Runs the release server under
# callgrind twice, with N1 and N2 keep-alive requests, and prints
# (Ir(N2) - Ir(N1)) / (N2 - N1): the marginal cost of one request.
#   bench/callgrind.sh [N1 N2] [extra header, e.g. 'x-big: 1024']
# CG_UPSTREAM=HOST:PORT routes `/` to that upstream instead of the Rust
# example (the proxy path; the upstream's own work is not counted).
set -euo pipefail
cd "$(dirname "$0")/.."
n1=${1:-500}; n2=${2:-2500}; header=${3:-}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install -y valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${CG_UPSTREAM:-}" ]; then
    echo "/ = http://$CG_UPSTREAM" > "$work/proxy.ini"
else
    echo "/ = $PWD/target/release/libflexilib_example_rust.so" > "$work/proxy.ini"
fi

run() {
    local n=$1 out="$work/cg.$1"
    PORT=0 LISTEN_ADDRESS=127.0.0.1 RUST_LOG=info SERVER_THREAD_COUNT=1 FLEXILIB_NO_SUPERVISOR=1 FLEXILIB_CONFIG="$work/proxy.ini" \
        valgrind --tool=callgrind ${CG_OPTS:-} --callgrind-out-file="$out" target/release/flexilib \
        >"$work/stdout.$n" 2>"$work/stderr.$n" &
    local pid=$!
    local addr=""
    for _ in $(seq 200); do
        addr=$(grep -o 'address=[0-9.:]*' "$work/stderr.$n" | head -1 | cut -d= -f2 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    python3 - "$addr" "$n" "$header" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
n, header = int(sys.argv[2]), sys.argv[3]
extra = (header + "\r\n") if header else ""
req = f"GET / HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()
s = socket.create_connection((host, int(port)))
f = s.makefile("rb")
for _ in range(n):
    s.sendall(req)
    length = 0
    while True:
        line = f.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line in (b"\r\n", b""):
            break
    f.read(length)
s.close()
PY
    kill -TERM "$pid"; wait "$pid" || true
    grep -E '^summary|^totals' "$out" | head -1 | awk '{print $2}'
}
a=$(run "$n1"); b=$(run "$n2")
[ -n "${CG_KEEP:-}" ] && cp "$work/cg.$n2" "$CG_KEEP"
echo "instructions per request: $(( (b - a) / (n2 - n1) ))  (Ir $n1 req: $a, $n2 req: $b)"
