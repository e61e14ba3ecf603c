#!/usr/bin/env bash
# Production start: migrate the database, then serve pages and API on one port.
#   PORT (default 3000) - the port to listen on.
#   PROMETHEUS_MULTIPROC_DIR (default prometheus_multiproc/$PORT) - metrics of all workers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
python -m chatmon migrate
PORT="${PORT:-3000}"
# Prometheus multiprocess mode: every worker writes its series to files in this
# directory and /metrics sums them. It must exist, and hold no files of a previous
# run, before the workers start (prometheus-client reads the variable at import).
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$ROOT/prometheus_multiproc/$PORT}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
exec reflex run --env prod --single-port --frontend-port "$PORT" --backend-port "$PORT" --loglevel warning
