"""docker-compose.yml and infra/terraform describe the same system: the same processes, ports,
environment variables (by name) and health checks, and the same images per service.

Terraform's side is what it deploys with ``for_each``: the generated declaration
(infra/terraform/generated/main.tf.json, kept current by tests/test_terraform.py) and the HCL that consumes
it. The differences that are on purpose are listed below, each with its reason, and must stay in use.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2  # python-hcl2
import yaml

ROOT = Path(__file__).resolve().parents[1]
TF = ROOT / "infra" / "terraform"
COMPOSE_INFRA = {
    # Compose service -> what stands in for it in Terraform (module, resource type).
    "postgres": ("data", "aws_db_instance"),
    "redis": ("data", "aws_elasticache_replication_group"),
    "aws": ("bus", "aws_sqs_queue"),  # the emulator's SNS/SQS (and S3: modules/data)
}
INIT, GATEWAY = "init", "gateway"

# Only in Compose: the AWS emulator's endpoint and throwaway keys (in AWS: the real endpoints and the
# task role's credentials). Both use the default 20 s SQS long-polls: SIGTERM cancels a poll in progress.
COMPOSE_ONLY = {
    "SPENDSENSE_AWS_ENDPOINT_URL",
    "SPENDSENSE_AWS_ACCESS_KEY_ID",
    "SPENDSENSE_AWS_SECRET_ACCESS_KEY",
}
# Only in AWS: embedded-metric-format records, which CloudWatch turns into the dashboards' metrics; and
# the mobile push credentials and APNs identifiers of the profile worker: against the emulator (Compose)
# the profile service gives SNS placeholder credentials itself (adapters/push.py), and real ones would
# only be handed to the emulator.
TERRAFORM_ONLY = {
    "SPENDSENSE_METRICS_EMF",
    "SPENDSENSE_PUSH_APNS_CREDENTIAL",
    "SPENDSENSE_PUSH_APNS_PRINCIPAL",
    "SPENDSENSE_PUSH_APNS_TEAM_ID",
    "SPENDSENSE_PUSH_APNS_BUNDLE_ID",
    "SPENDSENSE_PUSH_APNS_SANDBOX",
    "SPENDSENSE_PUSH_FCM_CREDENTIAL",
}
# The same setting in another form: a key file on a volume locally, the PEM from Secrets Manager in AWS.
SAME_SETTING = {"SPENDSENSE_JWT_PRIVATE_KEY_FILE": "SPENDSENSE_JWT_PRIVATE_KEY"}
HEALTH_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[^'\"\s]*)")


@cache
def compose() -> dict[str, Any]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return dict(services)


@cache
def declaration() -> dict[str, Any]:
    outputs = json.loads((TF / "generated" / "main.tf.json").read_text())["output"]
    return {name: output["value"] for name, output in outputs.items()}


@cache
def hcl(path: Path) -> dict[str, Any]:
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=options))


def root_calls() -> dict[str, dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    for block in hcl(TF / "main.tf").get("module", []):
        calls.update(block)
    return calls


def call_for_each(for_each: str) -> dict[str, Any]:
    found = [body for body in root_calls().values() if body.get("for_each") == "${" + for_each + "}"]
    assert len(found) == 1, f"one module call with for_each = {for_each}"
    return found[0]


def resources(module: str) -> set[str]:
    types = set()
    for path in (TF / "modules" / module).glob("*.tf"):
        for block in hcl(path).get("resource", []):
            types |= set(block)
    return types


def terraform_processes() -> dict[str, dict[str, Any]]:
    decl = declaration()
    return {**decl["services"], **decl["workers"]}


def compose_processes() -> dict[str, dict[str, Any]]:
    return {name: body for name, body in compose().items() if name not in {*COMPOSE_INFRA, INIT, GATEWAY}}


def health(body: dict[str, Any]) -> tuple[int, str]:
    test = " ".join(body["healthcheck"]["test"])
    match = HEALTH_URL.search(test)
    assert match, f"no http://127.0.0.1:PORT/PATH in the healthcheck {test!r}"
    return int(match.group(1)), match.group(2)


def compose_env_names(body: dict[str, Any]) -> set[str]:
    return {SAME_SETTING.get(name, name) for name in body.get("environment", {})} - COMPOSE_ONLY


def terraform_env_names(process: dict[str, Any]) -> set[str]:
    return set(process["environment"]) | set(process["secrets"])


# --- Processes ------------------------------------------------------------------------------------------


def test_same_processes() -> None:
    assert set(compose_processes()) == set(terraform_processes())


def test_compose_infrastructure_has_its_aws_counterpart() -> None:
    assert set(compose()) >= {*COMPOSE_INFRA, INIT, GATEWAY}
    for service, (module, resource_type) in COMPOSE_INFRA.items():
        assert resource_type in resources(module), f"{service}: no {resource_type} in modules/{module}"
    # The gateway is API Gateway, with one integration per service the local gateway proxies to.
    upstreams = json.loads(compose()[GATEWAY]["environment"]["SPENDSENSE_UPSTREAMS"])
    assert set(upstreams) == set(declaration()["services"])
    api_resources = {"aws_apigatewayv2_api", "aws_apigatewayv2_integration", "aws_apigatewayv2_route"}
    assert api_resources <= resources("api")
    api = next(body for body in root_calls().values() if body.get("source") == "./modules/api")
    assert api["services"] == "${keys(local.services)}"
    # The init job is the one-off migrations task, from the same image (infra/docker/init.Dockerfile).
    assert compose()[INIT]["build"]["dockerfile"] == "infra/docker/init.Dockerfile"
    migrate = next(body for body in root_calls().values() if body.get("command") == ["spendsense", "migrate"])
    assert 'repository_urls[\\"init\\"]' in json.dumps(migrate["image"])


def test_same_image_per_service() -> None:
    """API and worker of a service run one image: one Dockerfile in Compose, one ECR repository in AWS."""
    for name, body in compose_processes().items():
        service = name.removesuffix("-worker")
        assert body["build"]["dockerfile"] == "infra/docker/service.Dockerfile", name
        assert body["build"]["args"] == {"SERVICE": service}, name
        assert body["image"] == f"spendsense/{service}:local", name
    assert "each.value.service" in call_for_each("local.workers")["image"]
    assert "each.key" in call_for_each("local.services")["image"]
    assert {w["service"] for w in declaration()["workers"].values()} == set(declaration()["services"])


def test_same_commands() -> None:
    processes = terraform_processes()
    for name, body in compose_processes().items():
        # An API runs its image's CMD in both; a worker the same module of the same image.
        assert body.get("command", []) == processes[name]["command"], name


# --- Ports, environment, health checks ------------------------------------------------------------------


def test_same_ports() -> None:
    processes = terraform_processes()
    for name, body in compose_processes().items():
        if name in declaration()["services"]:
            container_ports = {int(str(p).rsplit(":", 1)[-1]) for p in body.get("ports", [])}
            assert container_ports == {processes[name]["port"]}, name
        else:  # workers publish nothing; their metrics port is a setting
            assert "ports" not in body, name
            assert int(body["environment"]["SPENDSENSE_WORKER_METRICS_PORT"]) == processes[name]["port"], name
    # Terraform opens the same port: the target group, the container and the ALB's security group rule.
    assert call_for_each("local.services")["port"] == "${each.value.port}"
    network = hcl(TF / "main.tf")["module"]
    service_port = next(block["network"]["service_port"] for block in network if "network" in block)
    assert {p["port"] for p in declaration()["services"].values()} == {service_port}


def test_same_environment_variable_names() -> None:
    processes = terraform_processes()
    for name, body in compose_processes().items():
        assert compose_env_names(body) == terraform_env_names(processes[name]) - TERRAFORM_ONLY, name


def test_the_listed_differences_are_still_real() -> None:
    """Each exception above is used, so that the lists cannot silently outlive their reason."""
    compose_names = set().union(*(set(b.get("environment", {})) for b in compose_processes().values()))
    terraform_names = set().union(*(terraform_env_names(p) for p in terraform_processes().values()))
    assert compose_names >= COMPOSE_ONLY | set(SAME_SETTING)
    assert terraform_names >= TERRAFORM_ONLY | set(SAME_SETTING.values())
    assert not COMPOSE_ONLY & terraform_names
    assert not TERRAFORM_ONLY & compose_names


def test_same_health_checks() -> None:
    processes = terraform_processes()
    for name, body in compose_processes().items():
        assert health(body) == (processes[name]["port"], processes[name]["health_path"]), name
    # Terraform probes exactly that: the container health check and an API's target group.
    ecs = (TF / "modules" / "ecs_service" / "main.tf").read_text()
    assert "urlopen('http://127.0.0.1:${var.port}${var.health_path}', timeout=3)" in ecs
    assert re.search(r"health_check \{\s*path\s*=\s*var\.health_path", ecs)
    assert call_for_each("local.workers")["health_path"] == "${each.value.health_path}"


def test_dockerfiles_agree_with_both() -> None:
    """The image's own EXPOSE and HEALTHCHECK are what Compose restates and Terraform deploys."""
    dockerfile = (ROOT / "infra/docker/service.Dockerfile").read_text()
    for service, process in declaration()["services"].items():
        assert re.search(rf"^EXPOSE {process['port']}$", dockerfile, re.M), service
        assert f"http://127.0.0.1:{process['port']}{process['health_path']}" in dockerfile, service
