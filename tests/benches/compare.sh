#!/usr/bin/env bash
#
# Side by side with r-nacos: the HTTP rows of the performance table and the memory of 100,000
# ephemeral instances, against this server's release binary and, when `rnacos` is on PATH,
# against r-nacos in the same run. Each server runs alone (the other is stopped) on the same
# cores, with its data in a fresh temporary directory; wrk drives it with 2 threads and 64
# keep-alive connections.
#
#   bash tests/benches/compare.sh            # BENCH_SECS=10 per row, BENCH_REPEAT=3 (worst kept)
#
# Needs: wrk (Debian's `wrk`), curl, a release build (`cargo build --release -p nacos-server`).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

SECS="${BENCH_SECS:-10}"
REPEAT="${BENCH_REPEAT:-3}"
OURS="${BENCH_SERVER:-target/release/nacos-server}"
WORK="$(mktemp -d)"
SCRIPTS="$WORK/lua"
mkdir -p "$SCRIPTS"
PID=""

cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
[[ -x "$OURS" ]] || { echo "no $OURS: run cargo build --release -p nacos-server" >&2; exit 1; }
OURS="$(realpath "$OURS")"

# --- wrk scripts: each wrk thread numbers its requests apart from the other's -------------------
cat >"$SCRIPTS/common.lua" <<'EOF'
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
counter = 0
function next_n() counter = counter + 1; return counter * 2 + (tid or 0) end
EOF
cat >"$SCRIPTS/register.lua" <<'EOF'
dofile(os.getenv("LUA_COMMON"))
local limit = tonumber(os.getenv("DISTINCT") or "1000000000")
request = function()
  local n = next_n() % limit
  local ip = "10." .. (math.floor(n / 65536) % 256) .. "." .. (math.floor(n / 256) % 256) .. "." .. (n % 256)
  return wrk.format("POST", "/nacos/v1/ns/instance?serviceName=svc-" .. (n % 100) .. "&ip=" .. ip .. "&port=8080&ephemeral=true")
end
EOF
cat >"$SCRIPTS/publish.lua" <<'EOF'
dofile(os.getenv("LUA_COMMON"))
local value = string.rep("v", 192)
request = function()
  local n = next_n()
  local body = "dataId=bench-" .. (n % 1000) .. "&group=G&content=" .. value .. string.format("%08d", n % 100000000)
  return wrk.format("POST", "/nacos/v1/cs/configs", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
EOF
export LUA_COMMON="$SCRIPTS/common.lua"

# --- servers -----------------------------------------------------------------------------------
start() { # name port
    local name="$1" port="$2" dir="$WORK/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    if [[ "$name" == ours ]]; then
        (cd "$dir" && exec "$OURS" -m standalone -D "server.port=$port" >"$dir/log" 2>&1) &
    else
        (cd "$dir" && RNACOS_HTTP_PORT="$port" RNACOS_GRPC_PORT=$((port + 1000)) \
            RNACOS_HTTP_CONSOLE_PORT=$((port + 1)) RNACOS_DATA_DIR="$dir/data" exec rnacos >"$dir/log" 2>&1) &
    fi
    PID=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/nacos/v1/ns/operator/metrics" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$name did not start; its log:" >&2
    cat "$dir/log" >&2
    exit 1
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }

# rate URL [wrk args...]: the worst requests/s of REPEAT runs; non-2xx answers fail the run.
rate() {
    local url="$1" worst="" out r
    shift
    for _ in $(seq "$REPEAT"); do
        out="$(wrk -t2 -c64 -d"${SECS}s" "$@" "$url")"
        if grep -q "Non-2xx" <<<"$out"; then
            echo "errors during $url: $(grep Non-2xx <<<"$out")" >&2
            exit 1
        fi
        r="$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")"
        if [[ -z "$worst" || "$r" -lt "$worst" ]]; then worst="$r"; fi
    done
    echo "$worst"
}

measure() { # name port -> sets RESULT_<row>
    local name="$1" port="$2" base="http://127.0.0.1:$2/nacos"
    start "$name" "$port"
    local idle
    idle="$(rss_kb)"
    curl -sf -X POST "$base/v1/cs/configs" --data-urlencode "dataId=get-1k" -d "group=G" \
        --data-urlencode "content=$(head -c 1024 /dev/zero | tr '\0' 'x')" >/dev/null
    for i in $(seq 10); do
        curl -sf -X POST "$base/v1/ns/instance?serviceName=listed&ip=10.9.0.$i&port=80&ephemeral=true" >/dev/null
    done
    declare -g "${name}_get=$(rate "$base/v1/cs/configs?dataId=get-1k&group=G")"
    declare -g "${name}_list=$(rate "$base/v1/ns/instance/list?serviceName=listed")"
    declare -g "${name}_register=$(rate "$base" -s "$SCRIPTS/register.lua")"
    declare -g "${name}_publish=$(rate "$base" -s "$SCRIPTS/publish.lua")"
    stop

    # Memory: exactly 100,000 distinct ephemeral instances in 100 services on a fresh server.
    start "$name" "$port"
    idle="$(rss_kb)"
    DISTINCT=100000 wrk -t2 -c64 -d"$((SECS / 2 + 3))s" -s "$SCRIPTS/register.lua" "$base" >/dev/null
    sleep 2
    local after count
    after="$(rss_kb)"
    count="$(curl -sf "$base/v1/ns/instance/list?serviceName=svc-7" | grep -o '"ip"' | wc -l)"
    [[ "$count" == 1000 ]] || { echo "$name: svc-7 holds $count instances, not 1000" >&2; exit 1; }
    declare -g "${name}_idle=$idle" "${name}_rss=$after"
    stop
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

measure ours 18848
HAVE_R=0
if command -v rnacos >/dev/null; then
    HAVE_R=1
    measure rnacos 28848
fi

echo
echo "$(date -u +%F), $(nproc) CPUs, wrk -t2 -c64, ${SECS}s windows, worst of $REPEAT"
echo
echo "| row | this server | r-nacos | ratio | goal |"
echo "|---|---|---|---|---|"
row() { # label ours_value r_value goal [unit]
    local r="-" q="-"
    if ((HAVE_R)); then r="$3"; q="$(ratio "$2" "$3")"; fi
    echo "| $1 | $2$5 | $r$5 | $q | $4 |"
}
row "v1 config GET, 1 KiB (req/s)" "$ours_get" "${rnacos_get:-}" "≥ 1.5" ""
row "v1 instance list, 10 hosts (req/s)" "$ours_list" "${rnacos_list:-}" "≥ 1.5" ""
row "v1 register, distinct instances, 100 services (req/s)" "$ours_register" "${rnacos_register:-}" "≥ 1.5" ""
row "v1 config publish, 1000 keys, 200 B (req/s)" "$ours_publish" "${rnacos_publish:-}" "≥ 1.5" ""
row "RSS with 100,000 instances (kB)" "$ours_rss" "${rnacos_rss:-}" "≤ 0.5" ""
row "idle RSS (kB)" "$ours_idle" "${rnacos_idle:-}" "≤ 15 MB ours" ""
echo
echo "bytes per instance: this server $(( (ours_rss - ours_idle) * 1024 / 100000 ))$(
    ((HAVE_R)) && echo ", r-nacos $(( (rnacos_rss - rnacos_idle) * 1024 / 100000 ))")"
