"""``infra/terraform`` deploys exactly what the code declares.

There is no terraform binary and no AWS here: every ``.tf`` file is parsed with python-hcl2 and its
structure checked against the code (services, workers, event-bus declaration, route table, settings).
The generated declaration (``infra/generate.py``) is regenerated in memory and compared with the
committed file. Each structural check is a function returning its problems; the mutation tests at the
end remove a worker's task definition, a dashboard, a DLQ, ... from the parsed tree and make sure the
checks notice.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import hcl2  # python-hcl2
import pytest

from spendsense_shared.gateway.routes import ROUTES
from spendsense_shared.messaging.catalog import SERVICES
from spendsense_shared.messaging.topology import build_topology

ROOT = Path(__file__).resolve().parents[1]
TF = ROOT / "infra" / "terraform"
GENERATED = TF / "generated" / "main.tf.json"
MODULES = ("network", "encryption", "data", "secrets", "bus", "registry", "cluster", "load_balancer",
           "ecs_service", "api", "observability")  # fmt: skip
ENVIRONMENTS = ("dev", "staging", "prod")
WORKERS = tuple(f"{service}-worker" for service in SERVICES)
# The only SNS topic / subscription outside the event bus: CloudWatch alarm notifications.
NOT_BUS = {
    ("aws_sns_topic", "observability", "alarms"),
    ("aws_sns_topic_subscription", "observability", "alarm_email"),
}
BUS_TYPES = ("aws_sns_topic", "aws_sqs_queue", "aws_sns_topic_subscription")
# IAM actions that cannot be scoped to a resource.
UNSCOPED_ACTIONS = {"ecr:GetAuthorizationToken", "sns:ListTopics", "sts:AssumeRole"}


# --- Loading --------------------------------------------------------------------------------------------


@dataclass
class Module:
    """One Terraform module directory, its files merged (as Terraform does)."""

    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # module blocks
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    text: str = ""


Tree = dict[str, Module]  # "" is the root module, else the name under modules/


def parse(path: Path) -> dict[str, Any]:
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=options))


def load_module(directory: Path) -> Module:
    module = Module()
    files = sorted(directory.glob("*.tf"))
    assert files, f"no .tf files in {directory}"
    for path in files:
        doc = parse(path)
        module.text += path.read_text()
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    assert (rtype, name) not in module.resources, f"{rtype}.{name} declared twice"
                    module.resources[(rtype, name)] = body
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for name, body in named.items():
                    module.data[(dtype, name)] = body
        for block in doc.get("module", []):
            module.calls.update(block)
        for block in doc.get("variable", []):
            module.variables.update(block)
        for block in doc.get("output", []):
            module.outputs.update(block)
        for block in doc.get("locals", []):
            module.locals.update(block)
    return module


@cache
def _tree() -> Tree:
    tree = {"": load_module(TF)}
    for name in MODULES:
        tree[name] = load_module(TF / "modules" / name)
    return tree


@pytest.fixture
def tree() -> Tree:
    return copy.deepcopy(_tree())


@cache
def generate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("infra_generate", ROOT / "infra" / "generate.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def declaration() -> dict[str, Any]:
    outputs = json.loads(GENERATED.read_text())["output"]
    return {name: output["value"] for name, output in outputs.items()}


def expr(value: Any) -> str:
    """An HCL expression as text, without the ``${...}`` python-hcl2 wraps whole expressions in."""
    text = value if isinstance(value, str) else json.dumps(value)
    if not (text.startswith("${") and text.endswith("}")):
        return text
    depth = 0
    for index, char in enumerate(text[1:], start=1):  # is the first "{" closed by the last "}"?
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return text[2:-1] if index == len(text) - 1 else text
    return text


def calls_of(module: Module, source: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in module.calls.items() if body.get("source") == source}


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of an aws_iam_policy_document, including those of dynamic blocks."""
    found = list(policy.get("statement", []))
    for dynamic in policy.get("dynamic", []):
        for content in dynamic.get("statement", {}).get("content", []):
            found.append(content)
    return found


# --- Checks (each returns its problems) -----------------------------------------------------------------


def check_processes(tree: Tree) -> list[str]:
    """Every service and worker: an ECS service with task definition, ECR image and log group."""
    problems = []
    root, ecs = tree[""], tree["ecs_service"]
    calls = calls_of(root, "./modules/ecs_service")
    by_for_each = {expr(body.get("for_each", "")): name for name, body in calls.items()}
    for local_name, generated in (("local.services", "services"), ("local.workers", "workers")):
        if local_name not in by_for_each:
            problems.append(f"no ecs_service module with for_each = {local_name} ({generated})")
            continue
        if expr(root.locals.get(local_name.removeprefix("local."), "")) != f"module.declaration.{generated}":
            problems.append(f"{local_name} is not module.declaration.{generated}")
        body = calls[by_for_each[local_name]]
        if "module.registry.repository_urls[" not in expr(body.get("image", "")):
            problems.append(f"{by_for_each[local_name]}: image is not from the ECR registry module")
        if "module.registry.repository_arns[" not in expr(body.get("repository_arn", "")):
            problems.append(f"{by_for_each[local_name]}: repository_arn is not from the registry module")
        if body.get("create_service") is False:
            problems.append(f"{by_for_each[local_name]}: create_service = false")
        for attribute in ("command", "port", "health_path"):
            if expr(body.get(attribute, "")) != f"each.value.{attribute}":
                problems.append(f"{by_for_each[local_name]}: {attribute} is not each.value.{attribute}")
        if "each.value.environment" not in expr(body.get("environment", "")):
            problems.append(f"{by_for_each[local_name]}: environment is not the generated names")
        if "each.value.secrets" not in expr(body.get("secrets", "")):
            problems.append(f"{by_for_each[local_name]}: secrets are not the generated names")
    registry = next(iter(calls_of(root, "./modules/registry").values()), {})
    if "keys(local.services)" not in expr(registry.get("repositories", "")):
        problems.append("the registry module does not create a repository per service")
    if ("aws_ecr_repository", "this") not in tree["registry"].resources:
        problems.append("modules/registry has no aws_ecr_repository")
    for resource in ("aws_ecs_task_definition", "aws_cloudwatch_log_group", "aws_ecs_service"):
        if (resource, "this") not in ecs.resources:
            problems.append(f"modules/ecs_service has no {resource}.this")
    task = ecs.resources.get(("aws_ecs_task_definition", "this"), {})
    if expr(task.get("container_definitions", "")) != "jsonencode([local.container])":
        problems.append("the task definition does not run local.container")
    container = json.dumps(ecs.locals.get("container", {}))
    for needle in (
        "var.image",
        "aws_cloudwatch_log_group.this.name",
        "local.health_check",
        "var.environment",
    ):
        if needle not in container:
            problems.append(f"the container definition does not use {needle}")
    if "${var.port}${var.health_path}" not in json.dumps(ecs.locals.get("health_check", "")):
        problems.append("the container health check does not probe var.port and var.health_path")
    migrations = [b for b in calls.values() if b.get("command") == ["spendsense", "migrate"]]
    if len(migrations) != 1 or migrations[0].get("create_service") is not False:
        problems.append("no one-off migrations task definition (command spendsense migrate)")
    return problems


def check_scaling(tree: Tree) -> list[str]:
    """CPU and memory target tracking for every process; queue backlog for workers."""
    problems = []
    ecs, root = tree["ecs_service"], tree[""]
    for policy in ("cpu", "memory", "queue_backlog"):
        if ("aws_appautoscaling_policy", policy) not in ecs.resources:
            problems.append(f"modules/ecs_service has no {policy} scaling policy")
    text = json.dumps(ecs.resources.get(("aws_appautoscaling_policy", "queue_backlog"), {}))
    if "ApproximateNumberOfMessagesVisible" not in text or "var.bus_access.scale_on_queue_name" not in text:
        problems.append("the queue_backlog policy does not track the queue's visible messages")
    worker = next(
        (
            b
            for b in calls_of(root, "./modules/ecs_service").values()
            if expr(b.get("for_each", "")) == "local.workers"
        ),
        {},
    )
    if "local.bus.queues[each.value.service].name" not in json.dumps(worker.get("bus_access", {})):
        problems.append("workers do not scale on their own queue")
    return problems


def check_least_privilege(tree: Tree) -> list[str]:
    """A worker publishes only to its service's topic and reads only its service's queue; APIs neither."""
    problems = []
    root, ecs = tree[""], tree["ecs_service"]
    for name, body in calls_of(root, "./modules/ecs_service").items():
        access = body.get("bus_access", {})
        publish, consume = expr(access.get("publish_topic_arns", "")), expr(access.get("consume_queue", ""))
        if expr(body.get("for_each", "")) == "local.workers":
            if "module.bus.topic_arns[each.value.service]" not in publish or publish.count("module.bus") != 1:
                problems.append(f"{name} may publish to something other than its own topic: {publish}")
            if "module.bus.queues[each.value.service]" not in consume or consume.count("module.bus") != 1:
                problems.append(f"{name} may consume something other than its own queue: {consume}")
        else:
            if access.get("publish_topic_arns") != [] or access.get("consume_queue") is not None:
                problems.append(f"{name} publishes or consumes, but only workers should")
    policy = ecs.data.get(("aws_iam_policy_document", "task"), {})
    by_sid = {s.get("sid"): s for s in statements(policy)}
    expected = {
        "PublishToOwnTopic": "var.bus_access.publish_topic_arns",
        "ConsumeOwnQueue": '["${statement.value.arn}"]',
        "DeadLetterToOwnDlq": '["${statement.value.dlq_arn}"]',
    }
    for sid, resources in expected.items():
        if sid not in by_sid or expr(by_sid[sid].get("resources")) != resources:
            problems.append(f"task policy statement {sid} is not limited to {resources}")
    if "sns:Publish" not in by_sid.get("PublishToOwnTopic", {}).get("actions", []):
        problems.append("PublishToOwnTopic does not allow sns:Publish")
    for module_name, module in tree.items():
        for (_, doc_name), doc in module.data.items():
            for statement in statements(doc):
                if statement.get("resources") == ["*"] and "principals" not in statement:
                    actions = set(statement.get("actions", []))
                    if not actions <= UNSCOPED_ACTIONS:
                        problems.append(
                            f"{module_name or 'root'}/{doc_name}: {sorted(actions)} on every resource"
                        )
    return problems


def check_observability(tree: Tree) -> list[str]:
    """A dashboard per service (API and worker) with the required widgets; the required alarms."""
    problems = []
    root, obs = tree[""], tree["observability"]
    call = next(iter(calls_of(root, "./modules/observability").values()), None)
    if call is None:
        return ["the root module does not call modules/observability"]
    services = json.dumps(call.get("services", ""))
    for needle in (
        "in local.services",
        "module.api_service[name]",
        'module.worker_service[\\"${name}-worker\\"]',
    ):
        if needle not in services:
            problems.append(f"observability services input lacks {needle}")
    if "in local.processes" not in expr(call.get("processes", "")):
        problems.append("observability processes input is not every process")
    processes = expr(root.locals.get("processes", ""))
    if "local.services" not in processes or "local.workers" not in processes:
        problems.append("local.processes does not cover every service and worker")
    dashboard = obs.resources.get(("aws_cloudwatch_dashboard", "service"))
    if dashboard is None or expr(dashboard.get("for_each", "")) != "var.services":
        problems.append("no aws_cloudwatch_dashboard.service for each service")
    widgets = json.dumps(obs.locals)
    for metric in ("RequestCount", "TargetResponseTime", "p50", "p95", "p99", "HTTPCode_Target_4XX_Count",
                   "HTTPCode_Target_5XX_Count", "NumberOfMessagesPublished", "NumberOfMessagesDeleted",
                   "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "s.dlq_name",
                   "s.worker_service_name", "RecommendationGenerationTime", "OpenAILatency", "OpenAIFallbacks"):  # fmt: skip
        if metric not in widgets:
            problems.append(f"the dashboards do not show {metric}")
    alarms = {
        "error_rate": "var.services",
        "latency_p95": "var.services",
        "memory": "var.processes",
        "dlq_not_empty": "var.services",
        "database_connections": None,
    }
    for alarm, over in alarms.items():
        body = obs.resources.get(("aws_cloudwatch_metric_alarm", alarm))
        if body is None:
            problems.append(f"no {alarm} alarm")
        elif over and over not in expr(body.get("for_each", "")):
            problems.append(f"the {alarm} alarm is not for each of {over}")
        elif body and "local.alarm_actions" not in expr(body.get("alarm_actions", "")):
            problems.append(f"the {alarm} alarm notifies nobody")
    defaults = obs.variables.get("thresholds", {}).get("default", {})
    if defaults != {
        "error_rate_percent": 5,
        "latency_p95_ms": 500,
        "memory_percent": 90,
        "db_connections_percent": 80,
    }:
        problems.append(f"alarm thresholds differ from the issue's: {defaults}")
    return problems


def check_bus(tree: Tree) -> list[str]:
    """Topics, queues, DLQs and subscriptions come from the declaration via for_each, and nothing else."""
    problems = []
    root, bus = tree[""], tree["bus"]
    call = next(iter(calls_of(root, "./modules/bus").values()), {})
    for attribute in ("topics", "queues", "subscriptions"):
        if expr(call.get(attribute, "")) != f"local.bus.{attribute}":
            problems.append(f"the bus module's {attribute} are not local.bus.{attribute}")
    bus_local = expr(root.locals.get("bus", ""))
    for needle in ("module.declaration.bus", "module.declaration.placeholder", "local.deployment"):
        if needle not in bus_local:
            problems.append(f"local.bus does not use {needle}")
    expected = {
        ("aws_sns_topic", "this"): ("var.topics", {"name": "each.value"}),
        ("aws_sqs_queue", "dlq"): ("var.queues", {"name": "each.value.dlq"}),
        ("aws_sqs_queue", "this"): ("var.queues", {"name": "each.value.name", "visibility_timeout_seconds": "each.value.visibility_timeout_s"}),
        ("aws_sns_topic_subscription", "this"): ("local.subscriptions", {"filter_policy": "jsonencode(each.value.filter_policy)"}),
    }  # fmt: skip
    for key, (for_each, attributes) in expected.items():
        body = bus.resources.get(key)
        if body is None:
            problems.append(f"modules/bus has no {key[0]}.{key[1]}")
            continue
        if expr(body.get("for_each", "")) != for_each:
            problems.append(f"{key[0]}.{key[1]} is not for each of {for_each}")
        for attribute, value in attributes.items():
            if expr(body.get(attribute, "")) != value:
                problems.append(f"{key[0]}.{key[1]}.{attribute} is not {value}")
    redrive = expr(bus.resources.get(("aws_sqs_queue", "this"), {}).get("redrive_policy", ""))
    if "aws_sqs_queue.dlq[each.key].arn" not in redrive or "each.value.max_receives" not in redrive:
        problems.append("a queue's redrive policy does not point at its own DLQ")
    if "var.subscriptions" not in expr(bus.locals.get("subscriptions", "")):
        problems.append("subscriptions are not built from var.subscriptions")
    for module_name, module in tree.items():
        for rtype, name in module.resources:
            if rtype in BUS_TYPES and module_name != "bus" and (rtype, module_name, name) not in NOT_BUS:
                problems.append(f"{rtype}.{name} in {module_name or 'root'} is not from the declaration")
    return problems


def check_api(tree: Tree) -> list[str]:
    """API Gateway routes are the generated route table, each to its service's integration."""
    problems = []
    root, api = tree[""], tree["api"]
    call = next(iter(calls_of(root, "./modules/api").values()), {})
    if (
        expr(call.get("routes", "")) != "local.routes"
        or expr(root.locals.get("routes", "")) != "module.declaration.routes"
    ):
        problems.append("the API routes are not the generated route table")
    if expr(call.get("services", "")) != "keys(local.services)":
        problems.append("the API integrations are not one per service")
    route = api.resources.get(("aws_apigatewayv2_route", "this"), {})
    if expr(route.get("for_each", "")) != "var.routes" or expr(route.get("route_key", "")) != "each.key":
        problems.append("aws_apigatewayv2_route is not one per generated route key")
    if "aws_apigatewayv2_integration.service[each.value].id" not in expr(route.get("target", "")):
        problems.append("a route does not target its own service's integration")
    integration = api.resources.get(("aws_apigatewayv2_integration", "service"), {})
    if expr(integration.get("for_each", "")) != "toset(var.services)":
        problems.append("aws_apigatewayv2_integration is not one per service")
    if "each.key" not in json.dumps(integration.get("request_parameters", {})):
        problems.append("integrations do not tell the ALB which service a request is for")
    others = [
        k
        for k in api.resources
        if k[0] == "aws_apigatewayv2_route" and k != ("aws_apigatewayv2_route", "this")
    ]
    if others:
        problems.append(f"routes outside the generated table: {others}")
    return problems


ALL_CHECKS: tuple[Callable[[Tree], list[str]], ...] = (
    check_processes, check_scaling, check_least_privilege, check_observability, check_bus, check_api,
)  # fmt: skip


# --- The generated declaration --------------------------------------------------------------------------


def test_generated_declaration_is_up_to_date() -> None:
    assert GENERATED.read_text() == generate().render(), "run: .venv/bin/python infra/generate.py"


def test_declaration_is_the_code_s() -> None:
    decl = declaration()
    placeholder = decl["placeholder"]
    topology = build_topology(placeholder).to_dict()
    del topology["env"]
    assert decl["bus"] == topology
    assert decl["routes"] == {route.route_key: route.service for route in ROUTES}
    assert set(decl["routes"].values()) <= set(SERVICES)
    assert list(decl["services"]) == sorted(SERVICES) or set(decl["services"]) == set(SERVICES)
    assert set(decl["workers"]) == set(WORKERS)
    assert {w["service"] for w in decl["workers"].values()} == set(SERVICES)
    for queue in decl["bus"]["queues"].values():
        assert queue["dlq"], "every queue has a DLQ"
        assert queue["dlq"] != queue["name"], "every queue has its own DLQ"


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("owner_id", ["", "chuong"])
def test_names_terraform_creates_are_the_names_services_derive(env: str, owner_id: str) -> None:
    """Terraform's deployment name (locals.tf) put into the placeholder gives build_topology(SPENDSENSE_ENV)."""
    locals_ = _tree()[""].locals
    assert expr(locals_["deployment"]) == 'var.owner_id == "" ? var.env : "${var.env}-${var.owner_id}"'
    assert expr(locals_["plain_env"]["SPENDSENSE_ENV"]) == "local.deployment"
    deployment = f"{env}-{owner_id}" if owner_id else env
    decl = declaration()
    rendered = json.loads(json.dumps(decl["bus"]).replace(decl["placeholder"], deployment))
    expected = build_topology(deployment).to_dict()
    del expected["env"]
    assert rendered == expected
    if owner_id:  # the seed's bucket naming: spendsense-{resource}-{env}-{owner_id}
        assert rendered["buckets"]["data"] == f"spendsense-data-{env}-{owner_id}"


def test_every_setting_terraform_passes_has_a_value() -> None:
    locals_ = _tree()[""].locals
    decl = declaration()
    given = set(locals_["plain_env"]) | {"SPENDSENSE_WORKER_METRICS_PORT"}
    for name, process in {**decl["services"], **decl["workers"]}.items():
        assert set(process["environment"]) <= given, name
        assert set(process["secrets"]) <= set(locals_["secret_env"]), name
        assert "SPENDSENSE_ENV" in process["environment"], name
        assert not {"SPENDSENSE_AWS_ENDPOINT_URL", "SPENDSENSE_AWS_ACCESS_KEY_ID"} & set(
            process["environment"]
        )
    assert "SPENDSENSE_DATABASE_URL" in decl["services"]["auth"]["secrets"]
    assert "SPENDSENSE_JWT_PRIVATE_KEY" in decl["services"]["auth"]["secrets"]
    assert "SPENDSENSE_JWT_PRIVATE_KEY" not in decl["workers"]["auth-worker"]["secrets"]


# --- Structure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_structure(tree: Tree, check: Callable[[Tree], list[str]]) -> None:
    assert check(tree) == []


def test_every_module_is_documented(tree: Tree) -> None:
    for name, module in tree.items():
        where = f"modules/{name}" if name else "root"
        if name:
            assert {p.name for p in (TF / "modules" / name).glob("*.tf")} >= {
                "main.tf",
                "variables.tf",
                "outputs.tf",
            }
        for variable, body in module.variables.items():
            assert body.get("description"), f"{where}: variable {variable} has no description"
            assert body.get("type"), f"{where}: variable {variable} has no type"
        for output, body in module.outputs.items():
            assert body.get("description"), f"{where}: output {output} has no description"
    for name in MODULES:  # every module is used
        assert any(body.get("source") == f"./modules/{name}" for body in tree[""].calls.values()), name


def test_root_variables_validate_env_and_owner_id(tree: Tree) -> None:
    variables = tree[""].variables
    assert "contains" in expr(variables["env"]["validation"][0]["condition"])
    assert variables["owner_id"]["default"] == ""
    pattern = re.search(
        r'regex\("(.+?)", var\.owner_id\)', variables["owner_id"]["validation"][0]["condition"]
    )
    assert pattern
    regex = re.compile(pattern.group(1).replace("\\\\", "\\"))
    for good in ("", "chuong", "jane2"):
        assert regex.fullmatch(good), good
    for bad in ("Chuong", "a-b", "abcdefghi", "2jane"):
        assert not regex.fullmatch(bad), bad


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_files(tree: Tree, env: str) -> None:
    values = parse(TF / "environments" / f"{env}.tfvars")
    variables = tree[""].variables
    assert values["env"] == env
    assert set(values) <= set(variables), "only declared variables"
    required = {name for name, body in variables.items() if "default" not in body} - {"image_tag"}
    assert required <= set(values), f"{env}.tfvars misses {required - set(values)}"
    assert 1 <= values["database"]["backup_retention_days"] <= 35
    if env == "prod":
        assert values["database"]["multi_az"] is True
        assert values["database"]["backup_retention_days"] == 30
        assert values["database"]["deletion_protection"] is True
        assert values["redis"]["num_cache_nodes"] >= 2
        assert values["autoscaling"]["min_tasks"] >= 2


def test_data_services_are_encrypted_and_backed_up(tree: Tree) -> None:
    data = tree["data"].resources
    rds = data[("aws_db_instance", "this")]
    assert rds["engine"] == "postgres"
    assert str(rds["engine_version"]).startswith("16")
    assert rds["storage_encrypted"] is True
    assert rds["publicly_accessible"] is False
    assert expr(rds["multi_az"]) == "var.database.multi_az"
    assert expr(rds["backup_retention_period"]) == "var.database.backup_retention_days"
    redis = data[("aws_elasticache_replication_group", "this")]
    assert str(redis["engine_version"]).startswith("7")
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["transit_encryption_enabled"] is True
    assert "random_password.redis" in expr(redis["auth_token"])
    assert expr(data[("aws_s3_bucket", "this")]["for_each"]) == "var.buckets"
    for resource in (
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_public_access_block",
    ):
        assert expr(data[(resource, "this")]["for_each"]) == "aws_s3_bucket.this", resource
    lifecycle = tree["data"].locals["lifecycle"]
    assert lifecycle["data"]["glacier_after_days"] == 90  # seed: Glacier after 90 days
    assert lifecycle["logs"]["expire_after_days"] == 90  # seed: delete after 90 days
    assert lifecycle["reports"]["expire_after_days"] == 365  # seed: delete after a year
    call = tree[""].calls["data"]
    assert expr(call["buckets"]) == "local.bus.buckets"


def test_vpc_has_three_tiers_nat_and_endpoints(tree: Tree) -> None:
    network = tree["network"]
    for tier in ("public", "private", "database"):
        assert network.resources[("aws_subnet", tier)]["count"] == 2, tier
    assert ("aws_nat_gateway", "this") in network.resources
    endpoints = expr(network.locals["interface_endpoints"])
    for service in ("ecr.api", "ecr.dkr", "secretsmanager", "sqs", "sns"):
        assert f'"{service}"' in endpoints, service
    assert network.resources[("aws_vpc_endpoint", "s3")]["vpc_endpoint_type"] == "Gateway"


def test_checkov_skips_give_a_reason() -> None:
    skips = 0
    for path in sorted(TF.rglob("*.tf")):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                skips += 1
                assert re.fullmatch(r"\s*#checkov:skip=CKV2?_AWS_\d+:\S.{20,}", line), (
                    f"{path.name}: {line.strip()}"
                )
    assert skips > 0


# --- The checks catch what they are for -----------------------------------------------------------------


def _drop_call(source_for_each: str) -> Callable[[Tree], None]:
    def mutate(tree: Tree) -> None:
        for name, body in list(tree[""].calls.items()):
            if expr(body.get("for_each", "")) == source_for_each:
                del tree[""].calls[name]

    return mutate


def _drop(module: str, rtype: str, name: str) -> Callable[[Tree], None]:
    def mutate(tree: Tree) -> None:
        del tree[module].resources[(rtype, name)]

    return mutate


def _add_queue(tree: Tree) -> None:
    tree["api"].resources[("aws_sqs_queue", "extra")] = {"name": "spendsense-dev-extra"}


def _hardcode_route(tree: Tree) -> None:
    tree["api"].resources[("aws_apigatewayv2_route", "extra")] = {"route_key": "GET /extra"}


def _worker_publishes_everywhere(tree: Tree) -> None:
    for body in tree[""].calls.values():
        if expr(body.get("for_each", "")) == "local.workers":
            body["bus_access"]["publish_topic_arns"] = "${values(module.bus.topic_arns)}"


def _no_redrive(tree: Tree) -> None:
    del tree["bus"].resources[("aws_sqs_queue", "this")]["redrive_policy"]


MUTATIONS = {
    "worker task definitions removed": (_drop_call("local.workers"), check_processes),
    "task definition resource removed": (
        _drop("ecs_service", "aws_ecs_task_definition", "this"),
        check_processes,
    ),
    "log group removed": (_drop("ecs_service", "aws_cloudwatch_log_group", "this"), check_processes),
    "dashboard removed": (_drop("observability", "aws_cloudwatch_dashboard", "service"), check_observability),
    "memory alarm removed": (
        _drop("observability", "aws_cloudwatch_metric_alarm", "memory"),
        check_observability,
    ),
    "DLQ removed": (_drop("bus", "aws_sqs_queue", "dlq"), check_bus),
    "redrive policy removed": (_no_redrive, check_bus),
    "subscriptions removed": (_drop("bus", "aws_sns_topic_subscription", "this"), check_bus),
    "queue outside the declaration": (_add_queue, check_bus),
    "route outside the table": (_hardcode_route, check_api),
    "worker publishes to every topic": (_worker_publishes_everywhere, check_least_privilege),
    "queue backlog scaling removed": (
        _drop("ecs_service", "aws_appautoscaling_policy", "queue_backlog"),
        check_scaling,
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_checks_fail_when_something_is_missing(tree: Tree, mutation: str) -> None:
    mutate, check = MUTATIONS[mutation]
    mutate(tree)
    assert check(tree), f"{check.__name__} did not notice: {mutation}"
