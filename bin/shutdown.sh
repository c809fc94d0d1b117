#!/usr/bin/env bash
#
# Stop the nacos-server started by bin/startup.sh: send SIGTERM to the process named in
# logs/nacos.pid and wait up to 30 seconds for it to finish in-flight requests and exit.

set -euo pipefail

NACOS_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PID_FILE="$NACOS_HOME/logs/nacos.pid"
WAIT_SECONDS=30

if [[ ! -f "$PID_FILE" ]]; then
    echo "nacos-server is not running (no $PID_FILE)."
    exit 0
fi

PID="$(tr -d '[:space:]' <"$PID_FILE")"
if ! [[ "$PID" =~ ^[0-9]+$ ]] || ! kill -0 "$PID" 2>/dev/null; then
    echo "nacos-server is not running (pid ${PID:-none} from $PID_FILE is gone); removing the pid file."
    rm -f "$PID_FILE"
    exit 0
fi
NAME="$(ps -p "$PID" -o comm= 2>/dev/null || true)"
if [[ "$NAME" != nacos-server* ]]; then
    echo "pid $PID from $PID_FILE is '$NAME', not nacos-server; leaving it alone and removing the stale pid file."
    rm -f "$PID_FILE"
    exit 0
fi

echo "Stopping nacos-server (pid $PID)..."
kill -TERM "$PID"
deadline=$((SECONDS + WAIT_SECONDS))
while kill -0 "$PID" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
        echo "nacos-server (pid $PID) is still running after ${WAIT_SECONDS}s." >&2
        echo "Check $NACOS_HOME/logs/start.out; 'kill -9 $PID' forces it down." >&2
        exit 1
    fi
    sleep 0.5
done
rm -f "$PID_FILE"
echo "nacos-server stopped."
