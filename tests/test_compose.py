"""``docker-compose.yml`` and the Dockerfiles run every process the embedded stack runs, wired alike.

No Docker engine is needed: the files are parsed and checked against the code (the service list, the
settings classes, the ports and environment of ``spendsense_cli/stack.py``, the auth routes, the lock).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from spendsense_auth.api.keys import router as auth_keys_router
from spendsense_auth.settings import AuthSettings
from spendsense_cli.stack import StackConfig
from spendsense_shared.gateway.app import GatewaySettings
from spendsense_shared.messaging.catalog import SERVICES
from spendsense_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
INFRA = ("postgres", "redis", "aws")
INIT = "init"
GATEWAY = "gateway"
WORKERS = tuple(f"{service}-worker" for service in SERVICES)
APIS = (*SERVICES, GATEWAY)
LONG_RUNNING = (*INFRA, *SERVICES, *WORKERS, GATEWAY)
CONTAINER_PORT = 8000
SERVICE_DOCKERFILE = "infra/docker/service.Dockerfile"  # one for every service, its SERVICE argument picks it
DOCKERFILES = {
    **dict.fromkeys(SERVICES, SERVICE_DOCKERFILE),
    GATEWAY: "infra/docker/gateway.Dockerfile",
    INIT: "infra/docker/init.Dockerfile",
}
LOOPBACK = ("127.0.0.1", "localhost")


def env_name(field: str) -> str:
    return f"SPENDSENSE_{field.upper()}"


def points_at_loopback(settings: type[ServiceSettings]) -> set[str]:
    """Settings whose default only works on the developer's machine: in a container they must be set."""
    names = set()
    for name, field in settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        value = default.get_secret_value() if hasattr(default, "get_secret_value") else default
        if any(host in json.dumps(value, default=str) for host in LOOPBACK):
            names.add(env_name(name))
    return names


# What a service process needs to find PostgreSQL, Redis and the (emulated) AWS, and to agree with the init
# job on the bus's resource names (they derive from SPENDSENSE_ENV).
PLATFORM_ENV = points_at_loopback(ServiceSettings) | {
    env_name("env"),
    env_name("aws_endpoint_url"),
    env_name("aws_access_key_id"),
    env_name("aws_secret_access_key"),
}
API_ENV = PLATFORM_ENV | {env_name("jwks_url")}  # every API but auth's verifies tokens with auth's JWKS
WORKER_ENV = PLATFORM_ENV | {env_name("worker_metrics_port")}  # the worker's healthcheck probes it
GATEWAY_ENV = {env_name("env")} | (points_at_loopback(GatewaySettings) - points_at_loopback(ServiceSettings))


def settings_class(name: str) -> type[ServiceSettings]:
    if name == GATEWAY:
        return GatewaySettings
    module = importlib.import_module(f"spendsense_{name.removesuffix('-worker')}.settings")
    (cls,) = (
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value.__module__ == module.__name__
    )
    return cls


# Reading the files --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def containers() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(compose["services"])


def container(containers: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    if name not in containers:
        pytest.fail(f"docker-compose.yml has no {name!r} service")
    return containers[name]


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def depends_on(spec: dict[str, Any]) -> dict[str, str]:
    deps = spec.get("depends_on") or {}
    assert isinstance(deps, dict), "depends_on must be the long form, with a condition for each dependency"
    return {name: dep.get("condition", "service_started") for name, dep in deps.items()}


def published_ports(spec: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port, from the short syntax ("[ip:]host:container")."""
    ports = {}
    for mapping in spec.get("ports", []):
        *_, host, inside = str(mapping).split(":")
        ports[int(inside)] = int(host)
    return ports


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and heredoc bodies skipped."""
    result: list[tuple[str, str]] = []
    heredoc_end = None
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if line.rstrip().endswith("\\"):
            continue
        keyword, _, args = pending.strip().partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
        if marker := re.search(r"<<-?['\"]?(\w+)['\"]?", args):
            heredoc_end = marker.group(1)
    return result


def lock_exclusions(dockerfile: Path) -> list[str]:
    for keyword, args in instructions(dockerfile):
        if keyword == "ARG" and args.startswith("LOCK_EXCLUDE="):
            return shlex.split(args.removeprefix("LOCK_EXCLUDE="))[0].split()
    pytest.fail(f"{dockerfile.relative_to(ROOT)} does not declare ARG LOCK_EXCLUDE")


# The containers -----------------------------------------------------------------------------------------


def test_every_process_of_the_stack_has_a_container(containers: dict[str, dict[str, Any]]) -> None:
    expected = {*INFRA, INIT, *SERVICES, *WORKERS, GATEWAY}
    assert not expected - set(containers), (
        f"missing from docker-compose.yml: {sorted(expected - set(containers))}"
    )


@pytest.mark.parametrize("name", [INIT, *SERVICES, *WORKERS, GATEWAY])
def test_our_images_are_built_from_the_repository_root(
    containers: dict[str, dict[str, Any]], name: str
) -> None:
    build = container(containers, name).get("build")
    assert isinstance(build, dict), f"{name}: needs build: {{context, dockerfile}}"
    assert (ROOT / build["context"]).resolve() == ROOT, (
        f"{name}: the Dockerfiles COPY from the repository root"
    )
    expected = DOCKERFILES[name.removesuffix("-worker")]
    assert build["dockerfile"] == expected, f"{name}: built from {build['dockerfile']}, expected {expected}"
    assert (ROOT / expected).is_file(), f"{expected} does not exist"
    if name.removesuffix("-worker") in SERVICES:
        assert build.get("args") == {"SERVICE": name.removesuffix("-worker")}, f"{name}: SERVICE argument"


@pytest.mark.parametrize("name", INFRA)
def test_infrastructure_runs_a_public_image(containers: dict[str, dict[str, Any]], name: str) -> None:
    assert container(containers, name).get("image"), f"{name}: no image"


@pytest.mark.parametrize("service", SERVICES)
def test_each_worker_runs_its_services_image(containers: dict[str, dict[str, Any]], service: str) -> None:
    api, worker = container(containers, service), container(containers, f"{service}-worker")
    assert worker.get("image") == api.get("image"), f"{service}-worker must run the {service} image"
    assert worker.get("build") == api.get("build"), f"{service}-worker must build what {service} builds"
    assert worker.get("command") == ["python", "-m", f"spendsense_{service}.worker"]
    assert importlib.util.find_spec(f"spendsense_{service}.worker"), f"spendsense_{service}.worker is gone"


@pytest.mark.parametrize("name", APIS)
def test_apis_are_published_where_the_embedded_stack_puts_them(
    containers: dict[str, dict[str, Any]], name: str
) -> None:
    stack = StackConfig()
    host_port = stack.gateway_port if name == GATEWAY else stack.service_port(name)
    ports = published_ports(container(containers, name))
    assert ports.get(CONTAINER_PORT) == host_port, (
        f"{name}: publish {host_port}:{CONTAINER_PORT}, got {ports}"
    )


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_containers_have_a_healthcheck(containers: dict[str, dict[str, Any]], name: str) -> None:
    spec = container(containers, name)
    check = spec.get("healthcheck") or {}
    assert check.get("test"), f"{name}: no healthcheck"
    assert not check.get("disable"), f"{name}: healthcheck disabled"
    assert check["test"] not in (["NONE"], "NONE"), f"{name}: healthcheck disabled"
    probe = " ".join(check["test"]) if isinstance(check["test"], list) else check["test"]
    if name in APIS:
        assert f":{CONTAINER_PORT}/health" in probe, f"{name}: the healthcheck should probe /health"
    if name in WORKERS:
        port = environment(spec).get(env_name("worker_metrics_port"))
        assert port, f"{name}: set SPENDSENSE_WORKER_METRICS_PORT, or the worker serves nothing to probe"
        assert f":{port}/metrics" in probe, f"{name}: the healthcheck should probe the metrics port"


# Start-up order -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SERVICES, *WORKERS])
def test_services_and_workers_wait_for_healthy_infra_and_the_init_job(
    containers: dict[str, dict[str, Any]], name: str
) -> None:
    conditions = depends_on(container(containers, name))
    for infra in INFRA:
        assert conditions.get(infra) == "service_healthy", f"{name}: depends_on {infra}: service_healthy"
    assert conditions.get(INIT) == "service_completed_successfully", (
        f"{name}: depends_on {INIT}: service_completed_successfully"
    )


def test_the_init_job_waits_for_healthy_infra(containers: dict[str, dict[str, Any]]) -> None:
    conditions = depends_on(container(containers, INIT))
    assert {infra: conditions.get(infra) for infra in INFRA} == dict.fromkeys(INFRA, "service_healthy")


def test_the_gateway_waits_for_healthy_services(containers: dict[str, dict[str, Any]]) -> None:
    conditions = depends_on(container(containers, GATEWAY))
    assert {s: conditions.get(s) for s in SERVICES} == dict.fromkeys(SERVICES, "service_healthy")


def test_dependencies_name_existing_containers(containers: dict[str, dict[str, Any]]) -> None:
    for name, spec in containers.items():
        unknown = set(depends_on(spec)) - set(containers)
        assert not unknown, f"{name} depends on unknown services {sorted(unknown)}"


# Environment ----------------------------------------------------------------------------------------------


def test_the_required_settings_are_real_and_the_embedded_stack_sets_them_too() -> None:
    """Keeps the lists above honest: a renamed setting fails here, not in a container."""
    stack_env = set(StackConfig().service_env())
    for required, settings in ((API_ENV | WORKER_ENV, ServiceSettings), (GATEWAY_ENV, GatewaySettings)):
        fields = {env_name(name) for name in settings.model_fields}
        assert required <= fields, f"not settings: {sorted(required - fields)}"
    # The worker metrics port is ours: the embedded stack has no healthchecks.
    needed_by_stack = API_ENV | GATEWAY_ENV
    assert needed_by_stack <= stack_env, f"`spendsense up` does not set {sorted(needed_by_stack - stack_env)}"


@pytest.mark.parametrize("name", [INIT, *SERVICES, *WORKERS, GATEWAY])
def test_each_container_sets_what_its_process_needs(containers: dict[str, dict[str, Any]], name: str) -> None:
    env = environment(container(containers, name))
    required = {
        INIT: PLATFORM_ENV,
        GATEWAY: GATEWAY_ENV,
        "auth": PLATFORM_ENV,  # auth verifies with its own key, which it must be given instead
        **dict.fromkeys(WORKERS, WORKER_ENV),
    }.get(name, API_ENV)
    required = set(required)  # a copy: the lists above are shared by every case
    if name in (*SERVICES, *WORKERS):  # and whatever else the service's own settings default to localhost
        required |= points_at_loopback(settings_class(name))
    missing = required - set(env)
    assert not missing, f"{name}: environment lacks {sorted(missing)}"


def test_auth_is_given_its_signing_key(containers: dict[str, dict[str, Any]]) -> None:
    auth, init = container(containers, "auth"), container(containers, INIT)
    key_file = environment(auth).get(env_name("jwt_private_key_file"))
    assert key_file or env_name("jwt_private_key") in environment(auth), "auth has no signing key"
    if key_file:  # the init job creates it on a volume auth mounts
        assert environment(init).get(env_name("jwt_private_key_file")) == key_file

        def volume_at(spec: dict[str, Any]) -> str | None:
            for volume in spec.get("volumes", []):
                source, target, *_ = f"{volume}:".split(":")
                if target == str(Path(key_file).parent):
                    return source
            return None

        assert volume_at(auth), f"auth mounts nothing at {Path(key_file).parent}"
        assert volume_at(auth) == volume_at(init), "auth and init must share the key volume"


@pytest.mark.parametrize("name", [INIT, *SERVICES, *WORKERS, GATEWAY])
def test_environment_names_are_settings(containers: dict[str, dict[str, Any]], name: str) -> None:
    """A misspelt variable would be ignored silently (extra="ignore") and the default used."""
    classes = [settings_class(s) for s in SERVICES] if name == INIT else [settings_class(name)]
    known = {env_name(field) for cls in classes for field in cls.model_fields}
    ours = {key for key in environment(container(containers, name)) if key.startswith("SPENDSENSE_")}
    assert ours <= known, f"{name}: not settings of its process: {sorted(ours - known)}"


@pytest.mark.parametrize("name", [INIT, *SERVICES, *WORKERS, GATEWAY])
def test_settings_load_from_the_containers_environment(
    containers: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in os.environ:
        if key.startswith("SPENDSENSE_"):
            monkeypatch.delenv(key)
    for key, value in environment(container(containers, name)).items():
        monkeypatch.setenv(key, value)
    settings = (AuthSettings if name == INIT else settings_class(name))()
    assert settings.env == "local"
    if name != GATEWAY:
        assert urlsplit(settings.database_url.get_secret_value()).scheme == "postgresql+asyncpg"
        assert urlsplit(settings.database_url.get_secret_value()).hostname == "postgres"
        assert urlsplit(settings.redis_url.get_secret_value()).hostname == "redis"
        assert urlsplit(settings.aws_endpoint_url or "").netloc == "aws:5000"
    if settings.jwks_url:
        paths = [getattr(route, "path", "") for route in auth_keys_router.routes]
        (jwks_path,) = (path for path in paths if path.endswith("jwks.json"))
        assert settings.jwks_url == f"http://auth:{CONTAINER_PORT}{jwks_path}"


# URLs a browser follows (an OAuth provider sends it back to the gateway the host publishes), not containers.
BROWSER_FACING = {env_name("oauth_redirect_base_url")}


def test_urls_name_containers_not_loopback(containers: dict[str, dict[str, Any]]) -> None:
    gateway_ports = {p.split(":")[-2] for p in container(containers, GATEWAY).get("ports", [])}
    for name, spec in containers.items():
        for key, value in environment(spec).items():
            if key in BROWSER_FACING:
                assert str(urlsplit(value).port) in gateway_ports, f"{name}: {key} is not the gateway"
                continue
            urls = json.loads(value).values() if value.startswith("{") else [value]
            for url in (u for u in urls if "://" in u):
                host = urlsplit(url).hostname
                assert host in containers, f"{name}: {key} points at {host!r}, which is no compose service"


def test_the_gateway_proxies_to_exactly_the_five_services(
    containers: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = environment(container(containers, GATEWAY)).get(env_name("upstreams"))
    assert raw, "the gateway needs SPENDSENSE_UPSTREAMS"
    monkeypatch.setenv(env_name("upstreams"), raw)
    upstreams = GatewaySettings().upstreams
    assert sorted(upstreams) == sorted(SERVICES)
    for service, url in upstreams.items():
        assert url == f"http://{service}:{CONTAINER_PORT}", f"upstream {service}: {url}"


# Dockerfiles ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", DOCKERFILES)
def test_dockerfiles_are_multi_stage_and_drop_root(image: str) -> None:
    path = ROOT / DOCKERFILES[image]
    steps = instructions(path)
    assert sum(keyword == "FROM" for keyword, _ in steps) >= 2, f"{path.name}: needs a builder stage"
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, f"{DOCKERFILES[image]}: no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{DOCKERFILES[image]}: runs as root"
    for keyword, args in steps:
        if keyword == "COPY" and "--from=" not in args and "<<" not in args:
            *sources, _ = (arg for arg in args.split() if not arg.startswith("--"))
            for source in sources:
                source = source.replace("${SERVICE}", image)
                assert (ROOT / source).exists(), f"{DOCKERFILES[image]}: COPY {source}: no such path"


@pytest.mark.parametrize("image", APIS)
def test_api_images_have_a_healthcheck_and_serve_on_8000(image: str) -> None:
    steps = dict(instructions(ROOT / DOCKERFILES[image]))
    assert steps.get("HEALTHCHECK", "NONE") != "NONE", f"{DOCKERFILES[image]}: no HEALTHCHECK"
    assert f":{CONTAINER_PORT}/health" in steps["HEALTHCHECK"]
    command = json.loads(steps["CMD"])
    if image == GATEWAY:
        assert command[:2] == ["uvicorn", "spendsense_shared.gateway.app:create_gateway"]
    else:  # the one service image: uvicorn reads the app from UVICORN_APP, built from the SERVICE argument
        assert command[0] == "uvicorn"
        assert "UVICORN_APP=spendsense_${SERVICE}.main:app" in steps["ENV"].split()
        assert (ROOT / "services" / image / f"spendsense_{image}" / "main.py").is_file()
    assert command[command.index("--port") + 1] == str(CONTAINER_PORT)
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_every_image_excludes_only_what_no_process_imports() -> None:
    """The Dockerfiles install requirements.lock minus LOCK_EXCLUDE with --no-deps, so a runtime dependency
    in that list would be missing only at run time. It may hold dev tools and embedded-stack extras only,
    and nothing the runtime dependencies reach in the lock's dependency graph."""
    exclusions = {image: lock_exclusions(ROOT / path) for image, path in DOCKERFILES.items()}
    excluded = set(exclusions[INIT])
    assert all(set(names) == excluded for names in exclusions.values()), f"LOCK_EXCLUDE differs: {exclusions}"

    def norm(requirement: str) -> str:
        return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shared = tomllib.loads((ROOT / "libs/shared/pyproject.toml").read_text())["project"]
    optional = {norm(r) for r in shared["optional-dependencies"]["embedded"]}
    optional |= {norm(r) for r in root["dependency-groups"]["dev"]}
    assert excluded <= optional, f"neither dev tools nor embedded extras: {sorted(excluded - optional)}"

    required_by: dict[str, set[str]] = {}  # the lock's "# via" annotations
    package, in_via = "", False
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        text = line.strip()
        if line[:1].isalnum():
            package, in_via = norm(line), False
            required_by.setdefault(package, set())
        elif text.startswith("# via"):
            in_via = True
            if rest := text.removeprefix("# via").strip():
                required_by[package].add(rest)
        elif in_via and text.startswith("#"):
            required_by[package].add(text.lstrip("# "))
    assert excluded <= set(required_by), f"not in requirements.lock: {sorted(excluded - set(required_by))}"

    services = [
        tomllib.loads((ROOT / f"services/{s}/pyproject.toml").read_text())["project"] for s in SERVICES
    ]
    roots = [*shared["dependencies"], *root["project"]["dependencies"]]
    roots += [requirement for service in services for requirement in service["dependencies"]]
    workspace = {norm(root["project"]["name"]), *map(norm, root["tool"]["uv"]["sources"])}
    runtime = {norm(r) for r in roots} - workspace
    while reached := {p for p, parents in required_by.items() if parents & runtime} - runtime:
        runtime |= reached
    assert not excluded & runtime, (
        f"runtime dependencies excluded from the images: {sorted(excluded & runtime)}"
    )


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".spendsense", "**/__pycache__"} <= ignored
