#!/usr/bin/env bash
# Backend only (for a static export served elsewhere): migrate, then serve the event
# websocket, /health, /metrics and /api on BACKEND_PORT (default 8000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
python -m chatmon migrate
exec reflex run --env prod --backend-only --backend-port "${BACKEND_PORT:-8000}" --loglevel warning
