#!/usr/bin/env bash
# Build everything in release mode and start FlexiLib on the shipped proxy.ini.
# Extra arguments go to the server (see `target/release/flexilib --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
"${CC:-cc}" -shared -fPIC -O2 -Wall -Wextra -Werror -I include \
    -o target/release/libsample_c.so examples/c-sample/sample.c
"${CC:-cc}" -shared -fPIC -O2 -Wall -Wextra -Werror -I include \
    -o target/release/libstream.so examples/c-stream/stream.c
exec target/release/flexilib --config proxy.ini "$@"
