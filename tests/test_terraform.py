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
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import hcl2  # python-hcl2
import pytest

from spendsense_profile.adapters.push import application_name, platform_applications
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.gateway import web
from spendsense_shared.gateway.routes import ROUTES
from spendsense_shared.messaging.catalog import SERVICES
from spendsense_shared.messaging.topology import build_topology

ROOT = Path(__file__).resolve().parents[1]
TF = ROOT / "infra" / "terraform"
GENERATED = TF / "generated" / "main.tf.json"
MODULES = ("network", "encryption", "data", "secrets", "bus", "registry", "cluster", "load_balancer",
           "ecs_service", "api", "observability", "web")  # fmt: skip
ENVIRONMENTS = ("dev", "staging", "prod")
WORKERS = tuple(f"{service}-worker" for service in SERVICES)
# The only SNS topic / subscription outside the event bus: CloudWatch alarm notifications.
NOT_BUS = {
    ("aws_sns_topic", "observability", "alarms"),
    ("aws_sns_topic_subscription", "observability", "alarm_email"),
}
BUS_TYPES = ("aws_sns_topic", "aws_sqs_queue", "aws_sns_topic_subscription")
# IAM actions that cannot be scoped to a resource.
UNSCOPED_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "sns:ListTopics",
    "sns:ListPlatformApplications",
    "sts:AssumeRole",
}
# The task policy statements that may publish to SNS, each limited to its own kind of target.
PUBLISHING_SIDS = {"PublishToOwnTopic", "PushToOwnEndpoints", "SendSmsToPhoneNumbersOnly"}


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


def check_push(tree: Tree) -> list[str]:
    """Mobile push: the profile worker sends through its own two platform applications and their endpoints
    only; the profile API may only delete those endpoints; no other process reaches any of them."""
    problems = []
    root, ecs = tree[""], tree["ecs_service"]
    if root.locals.get("push_service") != "profile":
        problems.append("local.push_service is not profile")
    arns = root.locals.get("push_application_arns", [])
    if arns != [
        "${local.sns_arn}:app/APNS/${local.name}-push-ios",
        "${local.sns_arn}:app/APNS_SANDBOX/${local.name}-push-ios",
        "${local.sns_arn}:app/GCM/${local.name}-push-android",
    ]:
        problems.append(f"local.push_application_arns are not the ios and android applications: {arns}")
    if not re.fullmatch(
        r"arn:\$\{[^}]+\}:sns:\$\{var\.region\}:\$\{[^}]+account_id\}", root.locals.get("sns_arn", "")
    ):
        problems.append("local.sns_arn is not this account's SNS in var.region")
    expected = {
        "local.workers": {
            "application_arns": "each.value.service == local.push_service ? local.push_application_arns : []",
            "send": "each.value.service == local.push_service",
            "delete_endpoints": "false",
        },
        "local.services": {
            "application_arns": "each.key == local.push_service ? local.push_application_arns : []",
            "send": "false",
            "delete_endpoints": "each.key == local.push_service",
        },
    }
    for name, body in calls_of(root, "./modules/ecs_service").items():
        want = expected.get(expr(body.get("for_each", "")))
        got = body.get("push_access")
        if want is None:
            if got is not None:
                problems.append(f"{name} is given push access")
            continue
        got_text = {k: expr(v) if isinstance(v, str) else json.dumps(v) for k, v in (got or {}).items()}
        if got_text != want:
            problems.append(f"{name}: push_access is {got_text}, expected {want}")
    if ecs.variables.get("push_access", {}).get("default") != {
        "application_arns": [],
        "send": False,
        "delete_endpoints": False,
    }:
        problems.append("push_access does not default to nothing")
    by_sid = {s.get("sid"): s for s in statements(ecs.data.get(("aws_iam_policy_document", "task"), {}))}
    scoped = {
        "PushFindsApplications": (["sns:ListPlatformApplications"], '["*"]'),
        "PushCreatesApplications": (["sns:CreatePlatformApplication"], "local.push_application_scopes"),
        "PushUsesOwnApplications": (
            ["sns:CreatePlatformEndpoint", "sns:SetPlatformApplicationAttributes"],
            "var.push_access.application_arns",
        ),
        "PushToOwnEndpoints": (
            ["sns:GetEndpointAttributes", "sns:Publish", "sns:SetEndpointAttributes"],
            "local.push_endpoint_arns",
        ),
        "PushDeletesOwnEndpoints": (["sns:DeleteEndpoint"], "local.push_endpoint_arns"),
    }
    for sid, (actions, resources) in scoped.items():
        statement = by_sid.get(sid)
        if statement is None:
            problems.append(f"task policy has no {sid}")
        elif sorted(statement.get("actions", [])) != actions or expr(statement.get("resources")) != resources:
            problems.append(f"{sid} is not {actions} on {resources}")
    if 'replace(arn, ":app/", ":endpoint/")' not in expr(ecs.locals.get("push_endpoint_arns", "")):
        problems.append("push endpoints are not those of the push applications")
    for publisher in statements(ecs.data.get(("aws_iam_policy_document", "task"), {})):
        if "sns:Publish" in publisher.get("actions", []) and publisher.get("sid") not in PUBLISHING_SIDS:
            problems.append(f"task policy statement {publisher.get('sid')} publishes to SNS")
    return problems


def _behaviours(distribution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path pattern ("*" for the default) -> cache behaviour of a parsed aws_cloudfront_distribution."""
    found: dict[str, dict[str, Any]] = {"*": next(iter(distribution.get("default_cache_behavior", [])), {})}
    for behaviour in distribution.get("ordered_cache_behavior", []):
        found[behaviour.get("path_pattern", "")] = behaviour
    return found


def check_web(tree: Tree) -> list[str]:
    """The web app: private frontend bucket behind CloudFront (origin access control), SPA fallback that
    leaves the API alone, the gateway's cache rules and headers, /api/* to API Gateway, HTTPS, logs."""
    problems = []
    root, web_module, data = tree[""], tree["web"], tree["data"]
    call = next(iter(calls_of(root, "./modules/web").values()), None)
    if call is None:
        return ["the root module does not call modules/web"]
    wiring = {
        "bucket": "module.data.frontend_bucket",
        "logs_bucket_domain_name": "module.data.cloudfront_logs_bucket_domain_name",
        "api_endpoint": "module.api.endpoint",
    }
    for attribute, value in wiring.items():
        if expr(call.get(attribute, "")) != value:
            problems.append(f"modules/web {attribute} is not {value}")
    if expr(root.outputs.get("web_cloudfront_domain", {}).get("value", "")) != "module.web.domain_name":
        problems.append("no output with the CloudFront domain")

    # The bucket: only this distribution reads it, with its requests signed; one policy per bucket.
    policy = web_module.data.get(("aws_iam_policy_document", "bucket"), {})
    reads = [s for s in statements(policy) if s.get("sid") == "CloudFrontReadsWebApp"]
    condition = json.dumps(reads[0].get("condition", [])) if reads else ""
    if (
        len(reads) != 1
        or set(reads[0].get("actions", [])) - {"s3:GetObject", "s3:ListBucket"}
        or reads[0].get("principals") != [{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}]
        or "AWS:SourceArn" not in condition
        or "aws_cloudfront_distribution.this.arn" not in condition
    ):
        problems.append("the frontend bucket is not readable by the web app's distribution only")
    common = data.outputs.get("frontend_bucket", {}).get("value", {}).get("policy_json", "")
    if policy.get("source_policy_documents") != ["${var.bucket.policy_json}"] or (
        expr(common) != 'data.aws_iam_policy_document.bucket["frontend"].json'
    ):
        problems.append("the frontend bucket policy drops the bucket's common statements (TLS only)")
    bucket_policy = web_module.resources.get(("aws_s3_bucket_policy", "web"), {})
    if expr(bucket_policy.get("policy", "")) != "data.aws_iam_policy_document.bucket.json" or (
        expr(bucket_policy.get("bucket", "")) != "var.bucket.id"
    ):
        problems.append("the frontend bucket's policy is not the CloudFront one")
    if 'if kind != "frontend"' not in expr(
        data.resources.get(("aws_s3_bucket_policy", "this"), {}).get("for_each", "")
    ):
        problems.append("the frontend bucket would get two policies")
    key_statements = statements(tree["encryption"].data.get(("aws_iam_policy_document", "key"), {}))
    if not any(
        s.get("sid") == "CloudFrontReadsFrontendBucket"
        and s.get("actions") == ["kms:Decrypt"]
        and "var.frontend_bucket_arn" in json.dumps(s.get("condition", []))
        for s in key_statements
    ):
        problems.append(
            "the deployment key does not let CloudFront read (only) the frontend bucket's objects"
        )

    # The distribution.
    distribution = web_module.resources.get(("aws_cloudfront_distribution", "this"))
    if distribution is None:
        return [*problems, "modules/web has no aws_cloudfront_distribution.this"]
    origins = {o.get("origin_id"): o for o in distribution.get("origin", [])}
    bucket_origin, api_origin = origins.get("web", {}), origins.get("api", {})
    if (
        expr(bucket_origin.get("origin_access_control_id", ""))
        != "aws_cloudfront_origin_access_control.web.id"
    ):
        problems.append("the bucket origin does not use origin access control")
    oac = web_module.resources.get(("aws_cloudfront_origin_access_control", "web"), {})
    if oac.get("signing_behavior") != "always" or oac.get("origin_access_control_origin_type") != "s3":
        problems.append("origin access control does not always sign requests to S3")
    api_config: dict[str, Any] = next(iter(api_origin.get("custom_origin_config", [])), {})
    if (
        api_config.get("origin_protocol_policy") != "https-only"
        or expr(api_origin.get("domain_name", "")) != "local.api_domain"
    ):
        problems.append("/api/* does not go to API Gateway over HTTPS")
    if distribution.get("default_root_object") != "index.html":
        problems.append("the default root object is not index.html")
    behaviours = _behaviours(distribution)
    if set(behaviours) != {"*", "/assets/*", "/api/*"}:
        problems.append(f"cache behaviours are {sorted(behaviours)}, not *, /assets/*, /api/*")
    for pattern, behaviour in behaviours.items():
        if behaviour.get("viewer_protocol_policy") not in ("redirect-to-https", "https-only"):
            problems.append(f"{pattern} is served over plain HTTP")
        if not behaviour.get("response_headers_policy_id"):
            problems.append(f"{pattern} has no response headers policy")
    default, assets, api = behaviours["*"], behaviours.get("/assets/*", {}), behaviours.get("/api/*", {})
    if default.get("target_origin_id") != "web" or assets.get("target_origin_id") != "web":
        problems.append("the web app is not served from the bucket")
    if api.get("target_origin_id") != "api" or api.get("viewer_protocol_policy") != "https-only":
        problems.append("/api/* is not the API origin, HTTPS only")
    disabled = "data.aws_cloudfront_cache_policy.disabled.id"
    if (
        expr(default.get("cache_policy_id", "")) != disabled
        or expr(api.get("cache_policy_id", "")) != disabled
    ):
        problems.append("index.html or the API is cached at the edge")
    if "Managed-AllViewerExceptHostHeader" not in json.dumps(list(web_module.data.values())):
        problems.append("the API origin is not sent the viewer's request (except Host)")
    if set(api.get("allowed_methods", [])) != {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}:
        problems.append("/api/* does not allow every method")
    functions = default.get("function_association", [])
    if [(f.get("event_type"), expr(f.get("function_arn", ""))) for f in functions] != [
        ("viewer-request", "aws_cloudfront_function.spa_fallback.arn")
    ]:
        problems.append("the default behaviour does not run the SPA fallback on viewer requests")
    spa = web_module.resources.get(("aws_cloudfront_function", "spa_fallback"), {})
    if "spa_fallback.js" not in expr(spa.get("code", "")) or spa.get("publish") is not True:
        problems.append("the SPA fallback function is not spa_fallback.js, published")
    # Error responses must pass through unchanged: a response page would apply to /api/* as well.
    errors = json.dumps(distribution.get("custom_error_response", [])) + json.dumps(
        distribution.get("dynamic", [])
    )
    if "response_page_path" in errors or "response_code" in errors:
        problems.append("custom error responses rewrite errors (the API's too)")
    if "error_caching_min_ttl" not in errors:
        problems.append("error responses are cached (10 s by default), one user's for another")
    if not distribution.get("logging_config"):
        problems.append("the distribution has no access logs")

    # The gateway's cache rules and headers (libs/shared/spendsense_shared/gateway/web.py).
    one_year = web_module.locals.get("one_year")
    cache = web_module.resources.get(("aws_cloudfront_cache_policy", "assets"), {})
    if expr(assets.get("cache_policy_id", "")) != "aws_cloudfront_cache_policy.assets.id" or any(
        expr(cache.get(ttl, "")) != "local.one_year" for ttl in ("min_ttl", "default_ttl", "max_ttl")
    ):
        problems.append("/assets/* is not cached for local.one_year at the edge")
    policies = {
        name: {k: str(v).replace("${local.one_year}", str(one_year)) for k, v in body.items()}
        for name, body in web_module.locals.get("response_policies", {}).items()
    }
    if policies.get("app", {}).get("cache_control") != web.INDEX_CACHE:
        problems.append(f"index.html is not sent with Cache-Control: {web.INDEX_CACHE}")
    if policies.get("assets", {}).get("cache_control") != web.ASSETS_CACHE:
        problems.append(f"/assets/* is not sent with Cache-Control: {web.ASSETS_CACHE}")
    if web_module.locals.get("content_security_policy") != web.SECURITY_HEADERS["Content-Security-Policy"]:
        problems.append("the CloudFront CSP differs from the gateway's")
    headers = web_module.resources.get(("aws_cloudfront_response_headers_policy", "this"), {})
    security = json.dumps(headers.get("security_headers_config", []))
    for needle in (
        '"frame_option": "' + web.SECURITY_HEADERS["X-Frame-Options"] + '"',
        '"referrer_policy": "' + web.SECURITY_HEADERS["Referrer-Policy"] + '"',
        "content_type_options",
        "strict_transport_security",
        "local.content_security_policy",
    ):
        if needle not in security:
            problems.append(f"the response headers policies lack {needle}")
    return problems


ALL_CHECKS: tuple[Callable[[Tree], list[str]], ...] = (
    check_processes, check_scaling, check_least_privilege, check_observability, check_bus, check_api,
    check_push, check_web,
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


def test_push_application_names_are_the_ones_the_app_looks_for() -> None:
    """Terraform grants the ARNs of the applications adapters/push.py finds or creates, on the same platforms."""
    locals_ = _tree()[""].locals
    assert expr(locals_["name"]) == "spendsense-${local.deployment}"
    arns = locals_["push_application_arns"]
    for platform in ("ios", "android"):
        name = application_name("{deployment}", platform).replace("{deployment}", "${local.deployment}")
        assert name == f"spendsense-${{local.deployment}}-push-{platform}"
        assert any(a.endswith(f"/${{local.name}}-push-{platform}") for a in arns), platform
    for sandbox, ios_platform in ((False, "APNS"), (True, "APNS_SANDBOX")):
        settings = ProfileSettings.model_construct(
            aws_endpoint_url=None,
            push_apns_credential=None,
            push_fcm_credential=None,
            push_apns_principal=None,
            push_apns_team_id=None,
            push_apns_bundle_id=None,
            push_apns_sandbox=sandbox,
        )
        applications = platform_applications(settings)
        assert applications["ios"].platform == ios_platform
        for platform, application in applications.items():  # the ARN the app's suffix match finds
            arn = f"${{local.sns_arn}}:app/{application.platform}/${{local.name}}-push-{platform}"
            assert arn in arns, (sandbox, arn)


def _node() -> str | None:
    return shutil.which("node") or next(
        (str(p) for p in [ROOT / ".venv" / "bin" / "node"] if p.is_file()), None
    )


@pytest.mark.skipif(_node() is None, reason="no node to run the CloudFront function with")
def test_spa_fallback_function_routes_like_the_gateway() -> None:
    """A path without a file extension gets /index.html (the app's router takes it); files stay files."""
    cases = {
        "/": "/index.html",
        "/me/persona": "/index.html",
        "/operator/review": "/index.html",
        "/me/uploads/": "/index.html",
        "/index.html": "/index.html",
        "/favicon.svg": "/favicon.svg",
        "/robots.txt": "/robots.txt",
        "/old-build.js": "/old-build.js",
        "/api": "/api",
    }
    code = (TF / "modules" / "web" / "spa_fallback.js").read_text()
    driver = code + (
        "\nconst cases = JSON.parse(process.argv[1]);"
        "\nconst out = {};"
        "\nfor (const uri of Object.keys(cases)) { out[uri] = handler({request: {uri: uri}}).uri; }"
        "\nprocess.stdout.write(JSON.stringify(out));"
    )
    node = _node()
    assert node
    result = subprocess.run(
        [node, "-e", driver, json.dumps(cases)], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == cases


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


def _task_statement(tree: Tree, sid: str) -> dict[str, Any]:
    policy = tree["ecs_service"].data[("aws_iam_policy_document", "task")]
    return next(s for s in statements(policy) if s.get("sid") == sid)


def _push_to_any_endpoint(tree: Tree) -> None:
    _task_statement(tree, "PushToOwnEndpoints")["resources"] = ["*"]


def _every_worker_pushes(tree: Tree) -> None:
    for body in tree[""].calls.values():
        if expr(body.get("for_each", "")) == "local.workers":
            body["push_access"]["send"] = True


def _api_through_the_bucket(tree: Tree) -> None:
    distribution = tree["web"].resources[("aws_cloudfront_distribution", "this")]
    for behaviour in distribution["ordered_cache_behavior"]:
        if behaviour["path_pattern"] == "/api/*":
            behaviour["target_origin_id"] = "web"


def _spa_fallback_by_error_page(tree: Tree) -> None:
    distribution = tree["web"].resources[("aws_cloudfront_distribution", "this")]
    distribution["custom_error_response"] = [
        {"error_code": 404, "response_code": 200, "response_page_path": "/index.html"}
    ]


def _bucket_readable_by_any_distribution(tree: Tree) -> None:
    policy = tree["web"].data[("aws_iam_policy_document", "bucket")]
    for statement in policy["statement"]:
        statement.pop("condition", None)


def _index_cached_for_a_year(tree: Tree) -> None:
    tree["web"].locals["response_policies"]["app"]["cache_control"] = web.ASSETS_CACHE


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
    "push to any endpoint": (_push_to_any_endpoint, check_push),
    "every worker pushes": (_every_worker_pushes, check_push),
    "API behind the bucket": (_api_through_the_bucket, check_web),
    "SPA fallback by error page": (_spa_fallback_by_error_page, check_web),
    "bucket readable by any distribution": (_bucket_readable_by_any_distribution, check_web),
    "index.html cached for a year": (_index_cached_for_a_year, check_web),
    "distribution removed": (_drop("web", "aws_cloudfront_distribution", "this"), check_web),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_checks_fail_when_something_is_missing(tree: Tree, mutation: str) -> None:
    mutate, check = MUTATIONS[mutation]
    mutate(tree)
    assert check(tree), f"{check.__name__} did not notice: {mutation}"
