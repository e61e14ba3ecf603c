# Sourced by scripts/start.sh and the Makefile's recipes: the offline switches and the
# venv's Node.js (Reflex 0.10 needs Node >= 22; the system's may be older).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.venv/bin:$PATH"
export REFLEX_USE_NPM=1
export REFLEX_TELEMETRY_ENABLED=false
export REFLEX_CHECK_LATEST_VERSION=false
# Build the pages as a single-page app instead of prerendering each route: React
# Router's prerender step gives up after 10 s per page, which a busy machine exceeds,
# and then the whole start fails. The pages are the same once their script runs.
export REFLEX_SSR="${REFLEX_SSR:-false}"
export LITELLM_LOCAL_MODEL_COST_MAP=True
export LITELLM_TELEMETRY=False
export DO_NOT_TRACK=1
export PYTHONUNBUFFERED=1
# Tell npm the registry it is already configured with, which skips a slow mirror probe.
if [ -z "${NPM_CONFIG_REGISTRY:-}" ] && command -v npm >/dev/null 2>&1; then
  NPM_CONFIG_REGISTRY="$(npm config get registry 2>/dev/null || true)"
  export NPM_CONFIG_REGISTRY
fi
