#!/bin/bash
# Container health check without curl or wget in the image: asks this server's readiness
# endpoint over bash's /dev/tcp and succeeds on an HTTP 200. It reads the same variables the
# server does for its port and context path; a port or path given with -D on the command line
# instead is not seen here (pass NACOS_APPLICATION_PORT / SERVER_SERVLET_CONTEXTPATH then).
set -u
port="${NACOS_APPLICATION_PORT:-${NACOS_SERVER_PORT:-8848}}"
path="${SERVER_SERVLET_CONTEXTPATH:-/nacos}"
path="/${path#/}"
path="${path%/}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s/v1/console/health/readiness HTTP/1.0\r\nHost: localhost\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3 || exit 1
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) exit 1 ;;
esac
