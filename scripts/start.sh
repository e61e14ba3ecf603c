#!/usr/bin/env bash
# Production start: migrate the database, then serve pages and API on one port.
#   PORT (default 3000) - the port to listen on.
#   PROMETHEUS_MULTIPROC_DIR (default prometheus_multiproc/$PORT) - metrics of all workers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
echo "==> applying database migrations"
python -m chatmon migrate
PORT="${PORT:-3000}"
# Prometheus multiprocess mode: every worker writes its series to files in this
# directory and /metrics sums them. It must exist, and hold no files of a previous
# run, before the workers start (prometheus-client reads the variable at import).
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$ROOT/prometheus_multiproc/$PORT}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
web="${REFLEX_WEB_WORKDIR:-$ROOT/.web}"
if [ ! -d "$web/node_modules" ]; then
  echo "==> first start: npm install of the frontend's packages into $web (once, a few minutes), then the frontend build"
else
  echo "==> building the frontend (about 10-40 s), then serving http://localhost:$PORT"
fi
exec reflex run --env prod --single-port --frontend-port "$PORT" --backend-port "$PORT" --loglevel warning
