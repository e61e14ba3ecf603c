#!/usr/bin/env bash
# Production start: migrate the database, then serve pages and API on one port.
#   PORT (default 3000) - the port to listen on.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
python -m chatmon migrate
PORT="${PORT:-3000}"
exec reflex run --env prod --single-port --frontend-port "$PORT" --backend-port "$PORT" --loglevel warning
