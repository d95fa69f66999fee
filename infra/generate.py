"""Write infra/terraform/generated/main.tf.json: what Terraform deploys, taken from the code itself.

    .venv/bin/python infra/generate.py           # rewrite the file
    .venv/bin/python infra/generate.py --check   # exit 1 if the committed file is stale

The generated module has outputs only (no resources). The root module reads them and creates every topic,
queue, DLQ, subscription, API Gateway route, ECS service and worker with ``for_each``, so nothing of the
event bus or the route table is written twice:

- ``bus``: ``build_topology()`` (the one declaration the embedded stack provisions too). Names carry the
  placeholder ``{deployment}``; Terraform substitutes ``{env}`` or ``{env}-{owner_id}``, which is also the
  value it passes as SPENDSENSE_ENV, so the processes derive the very same names at run time.
- ``routes``: ``ROUTES`` (the table the local gateway routes with), route key -> service.
- ``services`` / ``workers``: the five APIs and five workers: command, port, health check, and the names
  of the SPENDSENSE_* variables each needs in AWS, split into plain values and Secrets Manager secrets
  (a setting typed ``SecretStr`` is a secret). Every name is checked against the process's settings class.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from spendsense_shared.gateway.routes import ROUTES
from spendsense_shared.messaging.catalog import SERVICES
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "infra" / "terraform" / "generated" / "main.tf.json"
PLACEHOLDER = "{deployment}"  # no "$": in .tf.json strings are templates, and "{x}" stays literal

# What the images do (infra/docker/service.Dockerfile, docker-compose.yml): the API listens on 8000 and
# answers /health; the worker is the same image with another command and serves Prometheus metrics on a port.
API_PORT = 8000
API_HEALTH_PATH = "/health"
WORKER_METRICS_PORT = 9100
WORKER_HEALTH_PATH = "/metrics"

# The settings every process gets in AWS. Left out on purpose, because they only exist for the local
# emulator: aws_endpoint_url (real endpoints are the default) and aws_access_key_id/aws_secret_access_key
# (the ECS task role provides credentials). Everything else keeps its default (see .env.example).
COMMON_SETTINGS = (
    "env",  # names the bus resources and buckets: must be the deployment name Terraform uses
    "aws_region",
    "database_url",  # secret: holds the password
    "redis_url",  # secret: holds the auth token
    "jwks_url",  # every API verifies tokens with auth's JWKS (auth uses its own key)
    "log_json",
    "metrics_emf",  # CloudWatch embedded-metric-format records feed the dashboards
)
WORKER_SETTINGS = ("worker_metrics_port",)  # the container health check probes it
# API-only extras: the auth API signs tokens (RS256 key; its worker does not need the key), reads client
# addresses from the gateway's X-Forwarded-For, sends OAuth browsers back to the public URL and bootstraps
# the admin account.
SERVICE_SETTINGS: dict[str, tuple[str, ...]] = {
    "auth": ("jwt_private_key", "trust_proxy", "oauth_redirect_base_url", "admin_email", "admin_password"),
}
# Worker extras: the auth worker builds the same settings, whose OAuth redirect default is a local URL.
# The profile worker sends the mobile pushes (adapters/push.py): it finds or creates the SNS platform
# applications with these credentials and APNs identifiers. The profile API only deletes endpoints on
# erasure, which needs none of them.
WORKER_EXTRA_SETTINGS: dict[str, tuple[str, ...]] = {
    "auth": ("oauth_redirect_base_url",),
    "profile": (
        "push_apns_credential",  # secret
        "push_apns_principal",
        "push_apns_team_id",
        "push_apns_bundle_id",
        "push_apns_sandbox",
        "push_fcm_credential",  # secret
    ),
}


def worker_settings(service: str) -> tuple[str, ...]:
    return COMMON_SETTINGS + WORKER_SETTINGS + WORKER_EXTRA_SETTINGS.get(service, ())


def env_name(field: str) -> str:
    return f"SPENDSENSE_{field.upper()}"


def settings_class(service: str) -> type[ServiceSettings]:
    """The service's settings class (``spendsense_{service}.settings``; importing it wires up nothing)."""
    module = importlib.import_module(f"spendsense_{service}.settings")
    classes: list[type[ServiceSettings]] = [
        c for c in vars(module).values() if isinstance(c, type) and issubclass(c, ServiceSettings)
    ]
    found = [c for c in classes if c.model_fields["service_name"].default == service]
    if len(found) != 1:
        raise SystemExit(f"expected one settings class for {service} in {module.__name__}, found {found}")
    return found[0]


def is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(is_secret(arg) for arg in typing.get_args(annotation))
    return False


def process_env(service: str, fields: tuple[str, ...]) -> dict[str, list[str]]:
    model = settings_class(service).model_fields
    unknown = [f for f in fields if f not in model]
    if unknown:
        raise SystemExit(f"{service}: no such settings {unknown} in {settings_class(service).__name__}")
    return {
        "environment": sorted(env_name(f) for f in fields if not is_secret(model[f].annotation)),
        "secrets": sorted(env_name(f) for f in fields if is_secret(model[f].annotation)),
    }


def declaration() -> dict[str, Any]:
    topology = build_topology(PLACEHOLDER).to_dict()
    del topology["env"]
    routes = {route.route_key: route.service for route in ROUTES}
    if len(routes) != len(ROUTES):
        raise SystemExit("ROUTES holds a route key twice")
    services = {
        service: {
            "port": API_PORT,
            "health_path": API_HEALTH_PATH,
            "command": [],  # the image's CMD (uvicorn)
            **process_env(service, COMMON_SETTINGS + SERVICE_SETTINGS.get(service, ())),
        }
        for service in SERVICES
    }
    workers = {
        f"{service}-worker": {
            "service": service,
            "port": WORKER_METRICS_PORT,
            "health_path": WORKER_HEALTH_PATH,
            "command": ["python", "-m", f"spendsense_{service}.worker"],
            **process_env(service, worker_settings(service)),
        }
        for service in SERVICES
    }
    values = {
        "placeholder": PLACEHOLDER,
        "bus": topology,
        "routes": routes,
        "services": services,
        "workers": workers,
    }
    return {
        "//": "GENERATED by infra/generate.py from the code (topology, ROUTES, settings). Do not edit: "
        "run `.venv/bin/python infra/generate.py`; tests/test_terraform.py fails while this is stale.",
        "output": {
            name: {"description": f"Generated: {name}", "value": value} for name, value in values.items()
        },
    }


def render() -> str:
    return json.dumps(declaration(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is stale: run .venv/bin/python infra/generate.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
