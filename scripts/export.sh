#!/usr/bin/env bash
# Static export: build the frontend once, for any web server, talking to a backend at
# REFLEX_API_URL (baked into the bundle at build time).
#   REFLEX_API_URL=https://chat-api.example.com scripts/export.sh   -> .web/build/client/
# Serve that folder (unknown paths: 404.html, the app's shell; deploy/nginx/chatmon-static.conf) and run the backend with
# scripts/start-backend.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
: "${REFLEX_API_URL:?set REFLEX_API_URL to the URL the browser uses to reach the backend}"
reflex export --frontend-only --no-zip --loglevel warning
echo "static frontend in ${REFLEX_WEB_WORKDIR:-.web}/build/client (API: $REFLEX_API_URL)"
