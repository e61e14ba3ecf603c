#!/usr/bin/env bash
# How long `make run` takes until the chat page answers, in a fresh clone of this repo.
#   bench/start_time.sh            cold (no .venv, no .web: venv + npm install + build), then warm
#   bench/start_time.sh --warm     warm only, in the current checkout
# Prints `name: value (reference: value, ratio)` lines. Package caches on the machine make
# the cold figure faster than on a brand-new host.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${BENCH_PORT:-3099}"

time_start() {  # dir -> seconds until / and /ping answer
  local dir="$1" start end
  start=$(date +%s.%N)
  (cd "$dir" && PORT="$PORT" DATABASE_URL="sqlite:///$dir/bench-start.db" setsid make run \
      >"$dir/bench-start.log" 2>&1 &)
  for _ in $(seq 1 1800); do
    if curl -sf "localhost:$PORT/ping" >/dev/null && curl -sf "localhost:$PORT/" >/dev/null; then
      break
    fi
    sleep 0.2
  done
  end=$(date +%s.%N)
  pkill -f -- "--frontend-port $PORT" || true
  sleep 3
  echo "$end - $start" | bc
}

if [ "${1:-}" = "--warm" ]; then
  warm=$(time_start "$ROOT")
  echo "make run warm start: ${warm} s"
  exit 0
fi
work="$(mktemp -d)"
git clone -q "$ROOT" "$work/chatmon"
cold=$(time_start "$work/chatmon")
warm=$(time_start "$work/chatmon")
ratio=$(echo "scale=1; $cold / $warm" | bc)
echo "make run cold start: ${cold} s (reference: warm ${warm} s, ratio ${ratio}x)"
rm -rf "$work"
