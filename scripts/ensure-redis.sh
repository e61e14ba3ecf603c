#!/usr/bin/env bash
# Make sure the Redis server the scale-out tests and `bench/concurrency.py --redis` use
# (127.0.0.1:6379, no persistence) is running: start it when installed but stopped,
# install Debian's redis-server when missing. Tests pick their own db number.
set -euo pipefail
ready() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
ready && exit 0
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing Redis for the scale-out tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
for _ in $(seq 1 30); do ready && break; sleep 0.2; done
ready || { echo "Redis did not start" >&2; exit 1; }
