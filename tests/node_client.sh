#!/bin/sh
# ctest's integration.node_client: the Node.js package's tests (client/node) against this
# build's corod (COROD_BINARY). Exits 77 — ctest's "skipped" — saying why, where there is
# no node or the npm packages are not installed (scripts/deps test installs both: Debian's
# nodejs and npm, then `npm ci` from the committed lock file).
set -eu
dir=$(dirname "$0")/../client/node
if ! command -v node >/dev/null 2>&1; then
    echo "node_client: skipped: no node (scripts/deps test installs Debian's nodejs)"
    exit 77
fi
if [ ! -d "$dir/node_modules/@msgpack/msgpack" ]; then
    echo "node_client: skipped: the npm packages are not installed (cd client/node && npm ci)"
    exit 77
fi
cd "$dir"
COROD=$1 exec node --test test/
