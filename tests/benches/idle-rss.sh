#!/usr/bin/env bash
#
# The idle RSS of a release binary, as the compare bench reads it: a standalone server on
# embedded storage in a fresh home, 1 s after its readiness probe answered. Fails when it is
# above the goal (15 MB, IDLE_RSS_LIMIT_KB to change). Also says how much of
# server/startup.order the binary still has: a low share means the list is stale (regenerate
# it with tests/benches/startup-order.sh) and the binary keeps its start-up code spread out.
#
#   bash tests/benches/idle-rss.sh [BINARY]      # default target/release/nacos-server
#
# Needs: curl; nm for the share of the list.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BIN="$(realpath "${1:-target/release/nacos-server}")"
LIMIT_KB="${IDLE_RSS_LIMIT_KB:-15000}"
[[ -x "$BIN" ]] || { echo "no $BIN: run cargo build --release -p nacos-server" >&2; exit 1; }
WORK="$(mktemp -d)"
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if command -v nm >/dev/null; then
    nm "$BIN" | awk '$2 ~ /^[tT]$/ {print $3}' | sort -u >"$WORK/defined"
    grep -v '^#' server/startup.order | sort -u >"$WORK/listed"
    listed=$(wc -l <"$WORK/listed")
    found=$(comm -12 "$WORK/listed" "$WORK/defined" | wc -l)
    echo "start-up order: the binary has $found of the $listed functions listed"
fi

for _ in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 20000))
    "$BIN" -m standalone -D "server.port=$PORT" -D "nacos.home=$WORK/home" \
        >"$WORK/log" 2>&1 &
    PID=$!
    code=""
    for _ in $(seq 1 200); do
        code="$(curl -s -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:$PORT/nacos/v1/ns/operator/metrics" || true)"
        [[ "$code" == 200 ]] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    [[ "$code" == 200 ]] && break
    # Most likely the random port was taken: try another.
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
done
[[ -n "$PID" ]] || { echo "the server did not start; its log:" >&2; cat "$WORK/log" >&2; exit 1; }
sleep 1
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
anon_kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$PID/status")
echo "idle RSS: $rss_kb kB (anonymous $anon_kb kB); goal at most $LIMIT_KB kB"
if ((rss_kb > LIMIT_KB)); then
    echo "idle RSS above the goal; if the start-up order is stale (see above), run" \
        "tests/benches/startup-order.sh" >&2
    exit 1
fi
