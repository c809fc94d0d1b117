#!/usr/bin/env bash
#
# Start nacos-server in the background.
#
#   bin/startup.sh [-m standalone|cluster] [-p embedded] [-f config|naming] [-c members]
#                  [-D key=value ...]
#
#   -m  run mode; cluster is the default, as with Nacos. Use `-m standalone` for one node.
#   -p  `embedded`: cluster nodes replicate the embedded storage instead of using a database.
#   -f  function mode, config or naming (accepted for compatibility; both modules run).
#   -c  cluster members, ip:port,ip:port,... (instead of conf/cluster.conf).
#   -D  override a property of conf/application.properties; repeatable (-D server.port=8849).
#
# NACOS_HOME is the directory above bin/. The server reads conf/ there, keeps its data in
# data/, writes its console output to logs/start.out and its process id to logs/nacos.pid.
#
# The binary is, in order: $NACOS_SERVER_BIN if set, $NACOS_HOME/target/release/nacos-server,
# nacos-server on the PATH; failing those, in a source checkout, it is built with
# `cargo build --release -p nacos-server`.

set -euo pipefail

NACOS_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOG_DIR="$NACOS_HOME/logs"
LOG_FILE="$LOG_DIR/start.out"
PID_FILE="$LOG_DIR/nacos.pid"

usage() {
    sed -n '3,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
    echo "startup.sh: $*" >&2
    exit 1
}

MODE=""
ARGS=()
while getopts ":m:p:f:c:D:h" opt; do
    case "$opt" in
        m)
            case "$OPTARG" in
                standalone | cluster) MODE="$OPTARG" ;;
                *) die "-m must be standalone or cluster, not '$OPTARG'" ;;
            esac
            ARGS+=(-m "$OPTARG")
            ;;
        p) ARGS+=(-p "$OPTARG") ;;
        f)
            case "$OPTARG" in
                config | naming) ;;
                *) die "-f must be config or naming, not '$OPTARG'" ;;
            esac
            ARGS+=(-f "$OPTARG")
            ;;
        c) ARGS+=(-c "$OPTARG") ;;
        D)
            [[ "$OPTARG" == *=* ]] || die "-D needs key=value, got '$OPTARG'"
            ARGS+=(-D "$OPTARG")
            ;;
        h)
            usage
            exit 0
            ;;
        :) die "option -$OPTARG needs a value (see -h)" ;;
        *) die "unknown option -$OPTARG (see -h)" ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 0 ]] || die "unexpected argument '$1' (see -h)"

# A pid file whose process is alive and is nacos-server means we are already running.
is_running() {
    local pid="$1"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local name
    name="$(ps -p "$pid" -o comm= 2>/dev/null || true)"
    [[ "$name" == nacos-server* ]]
}

mkdir -p "$LOG_DIR"
if [[ -f "$PID_FILE" ]]; then
    OLD_PID="$(tr -d '[:space:]' <"$PID_FILE")"
    if is_running "$OLD_PID"; then
        die "nacos-server is already running (pid $OLD_PID, $PID_FILE); stop it with bin/shutdown.sh first"
    fi
    echo "Removing stale pid file $PID_FILE (pid ${OLD_PID:-none} is not nacos-server)."
    rm -f "$PID_FILE"
fi

find_binary() {
    local target="${CARGO_TARGET_DIR:-$NACOS_HOME/target}"
    if [[ -n "${NACOS_SERVER_BIN:-}" ]]; then
        [[ -x "$NACOS_SERVER_BIN" ]] || die "NACOS_SERVER_BIN=$NACOS_SERVER_BIN is not an executable"
        echo "$NACOS_SERVER_BIN"
    elif [[ -x "$target/release/nacos-server" ]]; then
        echo "$target/release/nacos-server"
    elif command -v nacos-server >/dev/null 2>&1; then
        command -v nacos-server
    elif [[ -f "$NACOS_HOME/Cargo.toml" ]] && command -v cargo >/dev/null 2>&1; then
        echo "No nacos-server binary found; building it (cargo build --release -p nacos-server)..." >&2
        (cd "$NACOS_HOME" && cargo build --release -p nacos-server >&2) ||
            die "the build failed"
        [[ -x "$target/release/nacos-server" ]] || die "the build produced no $target/release/nacos-server"
        echo "$target/release/nacos-server"
    else
        die "no nacos-server binary: build it with 'cargo build --release -p nacos-server' or put it on the PATH"
    fi
}

BIN="$(find_binary)"

echo "Starting nacos-server (${MODE:-cluster} mode) from $BIN"
echo "  NACOS_HOME: $NACOS_HOME"
cd "$NACOS_HOME"
nohup "$BIN" -D "nacos.home=$NACOS_HOME" ${ARGS[@]+"${ARGS[@]}"} >"$LOG_FILE" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PID_FILE"

# Catch the failures that happen at once (bad settings, port in use) while the user is watching.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.2
    if ! kill -0 "$PID" 2>/dev/null; then
        rm -f "$PID_FILE"
        echo "nacos-server exited during start-up. Last lines of $LOG_FILE:" >&2
        tail -n 20 "$LOG_FILE" >&2 || true
        exit 1
    fi
done

echo "nacos-server is starting (pid $PID)."
echo "  log: $LOG_FILE"
echo "  pid: $PID_FILE"
