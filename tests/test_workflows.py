"""Delivery: the four GitHub workflows, GitHub's deploy roles in Terraform, and infra/release.sh.

The workflows are checked as GitHub and zizmor read them (check-jsonschema's vendored workflow schema,
``zizmor --offline``), and for what the issue asks of them: every action pinned to a commit, least
permissions, no secret in a command line, a release that goes staging → approval → production and rolls
back. infra/release.sh is run for real against the AWS emulator's ECS and ECR: a deploy moves every
service to the new image's revision, a roll-back moves them back, and a missing image stops the release
before anything changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest
import yaml

from spendsense_shared.embedded.servers import EMULATOR_CREDENTIALS
from spendsense_shared.testing.plugin import Infra

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("ci", "build", "deploy", "api-tests")
SERVICES = ("auth", "profile", "features", "recommender", "operator")
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def parse(path: Path) -> dict[str, Any]:
    """A Terraform file as python-hcl2 reads it, quotes stripped (as tests/test_terraform.py reads them)."""
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=options))


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in the venv (dev dependency; `make install` after a re-lock)")
    return str(path)


# -- the workflows -------------------------------------------------------------------------------------


def test_the_four_workflows_exist_and_nothing_else_runs() -> None:
    assert {p.stem for p in WORKFLOWS.glob("*.yml")} == set(NAMES)
    assert not list(WORKFLOWS.glob("*.yaml"))


def test_they_are_valid_workflows() -> None:
    files = [str(WORKFLOWS / f"{name}.yml") for name in NAMES]
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_at_medium_severity_or_above() -> None:
    files = [str(WORKFLOWS / f"{name}.yml") for name in NAMES]
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--min-severity", "medium", "--format", "plain", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_commit_with_its_version_named(name: str) -> None:
    text = (WORKFLOWS / f"{name}.yml").read_text()
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", text, flags=re.MULTILINE)
    assert uses
    for ref, comment in uses:
        if ref.startswith("./"):
            continue  # our own reusable workflows, at the same commit
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
        assert re.search(r"#\s*v\d+(\.\d+)*", comment), f"{ref}: no `# vX.Y.Z` comment"


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_granted_per_job_and_nothing_by_default(name: str) -> None:
    loaded = workflow(name)
    assert loaded["permissions"] == {}
    for job_name, job in loaded["jobs"].items():
        granted = job.get("permissions")
        assert isinstance(granted, dict), f"{name}.{job_name} states no permissions"
        assert set(granted) <= {"contents", "id-token"}, granted
        assert granted.get("contents") in (None, "read"), granted


@pytest.mark.parametrize("name", NAMES)
def test_no_secret_or_expression_is_pasted_into_a_command(name: str) -> None:
    for job in workflow(name)["jobs"].values():
        for step in steps(job):
            # Values reach commands through env: an expression in `run` is a template injection, and a
            # secret there ends up in the process list.
            assert "${{" not in step.get("run", ""), step
            for checkout in (s for s in [step] if str(s.get("uses", "")).startswith("actions/checkout@")):
                assert checkout["with"]["persist-credentials"] is False


def test_images_are_built_after_ci_on_main_and_released_after_them() -> None:
    ci = workflow("ci")["jobs"]
    assert ci["build"]["needs"] == "ci"
    assert ci["build"]["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert ci["build"]["uses"] == "./.github/workflows/build.yml"
    assert ci["deploy"]["needs"] == "build"
    assert ci["deploy"]["with"]["image_tag"] == "${{ github.sha }}"


def test_build_makes_scans_and_pushes_one_image_per_service_tagged_with_the_commit() -> None:
    build = workflow("build")
    assert "workflow_call" in build["on"]
    job = build["jobs"]["image"]
    assert job["strategy"]["matrix"]["image"] == [*SERVICES, "init"]
    assert job["env"]["TAG"] == "${{ github.sha }}"
    assert job["permissions"]["id-token"] == "write"  # OIDC, no stored keys
    names = [s.get("name", s.get("uses", "")) for s in steps(job)]
    scan = next(i for i, s in enumerate(steps(job)) if "trivy-action" in str(s.get("uses")))
    assert scan < min(i for i, n in enumerate(names) if str(n).startswith("Push"))  # scanned before any push
    assert steps(job)[scan]["with"]["exit-code"] == "1"
    text = (WORKFLOWS / "build.yml").read_text()
    assert "service.Dockerfile" in text
    assert "aws-access-key-id" not in text


def test_a_release_goes_through_staging_and_an_approval_and_rolls_back() -> None:
    jobs = workflow("deploy")["jobs"]
    assert jobs["staging"]["environment"]["name"] == "staging"
    assert jobs["production"]["environment"]["name"] == "production"  # its reviewers are the approval
    assert jobs["production"]["needs"] == "staging"
    for job in jobs.values():
        run = [s.get("run", "") for s in steps(job)]
        order = [
            next(i for i, r in enumerate(run) if f"release.sh {step}" in r)
            for step in ("migrate", "deploy", "smoke")
        ]
        assert order == sorted(order), run
        rollback = next(s for s in steps(job) if "release.sh rollback" in s.get("run", ""))
        assert rollback["if"] == "failure() && steps.deploy.outcome != 'skipped'"


def test_api_tests_run_daily_and_by_hand_against_staging() -> None:
    api = workflow("api-tests")
    assert api["on"]["schedule"]
    assert "workflow_dispatch" in api["on"]
    job = api["jobs"]["api-tests"]
    assert job["environment"] == "staging"
    commands = " ".join(s.get("run", "") for s in steps(job))
    assert "schemathesis run" in commands
    assert "api_tests.py journey" in commands


# -- GitHub's roles in Terraform -----------------------------------------------------------------------


def test_the_deploy_roles_trust_one_branch_or_one_environment_of_one_repository() -> None:
    module = ROOT / "infra" / "terraform" / "modules" / "github_deploy"
    documents = {
        name: body
        for d in parse(module / "main.tf")["data"]
        for name, body in d.get("aws_iam_policy_document", {}).items()
    }
    trust = documents["trust"]
    assert trust["for_each"] == {
        "push": "repo:${var.repository}:ref:refs/heads/main",
        "deploy": "repo:${var.repository}:environment:${var.environment}",
    }
    conditions = {c["variable"]: c for c in trust["statement"][0]["condition"]}
    assert conditions["${local.oidc_host}:sub"]["test"] == "StringEquals"  # exact: never StringLike with "*"
    assert conditions["${local.oidc_host}:sub"]["values"] == ["${each.value}"]
    assert conditions["${local.oidc_host}:aud"]["values"] == ["sts.amazonaws.com"]
    variables = {name: body for v in parse(module / "variables.tf")["variable"] for name, body in v.items()}
    assert "validation" in variables["repository"]
    assert "validation" in variables["environment"]


def test_each_role_may_do_only_what_its_workflow_does_here() -> None:
    module = ROOT / "infra" / "terraform" / "modules" / "github_deploy"
    documents = {
        name: body
        for d in parse(module / "main.tf")["data"]
        for name, body in d.get("aws_iam_policy_document", {}).items()
    }
    deploy = {s["sid"]: s for s in documents["deploy"]["statement"]}
    push = {s["sid"]: s for s in documents["push"]["statement"]}
    # "*" only where IAM has no resource to scope to.
    unscoped = {sid for doc in (deploy, push) for sid, s in doc.items() if "*" in s["resources"]}
    assert unscoped == {"TaskDefinitions", "EcrLogin"}
    assert set(deploy["TaskDefinitions"]["actions"]) == {
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
    }
    assert push["EcrLogin"]["actions"] == ["ecr:GetAuthorizationToken"]
    # PassRole: this deployment's task and execution roles, to ECS tasks only.
    assert deploy["PassOwnTaskRoles"]["resources"] == "${var.task_role_arns}"
    assert deploy["PassOwnTaskRoles"]["condition"][0]["values"] == ["ecs-tasks.amazonaws.com"]
    assert deploy["RunMigrations"]["condition"][0]["variable"] == "ecs:cluster"
    assert "${var.migrate_task_family}" in deploy["RunMigrations"]["resources"][0]
    assert push["PushToOwnRepositories"]["resources"] == "${var.repository_arns}"
    assert not any(a.startswith(("ecs:", "iam:")) for s in push.values() for a in s["actions"])


# -- infra/release.sh against the emulator -------------------------------------------------------------

NAME = "spendsense-drill"
CLUSTER = f"{NAME}-cluster"
# One service's API and worker: every AWS CLI call is a process start (a few seconds on a busy machine),
# and the script does the same for each of the five.
RELEASED = ("auth",)
PROCESSES = [p for service in RELEASED for p in (service, f"{service}-worker")]


def aws_env(infra: Infra) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": infra.aws_endpoint_url,
        "AWS_DEFAULT_REGION": "us-west-1",
        "AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["SPENDSENSE_AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["SPENDSENSE_AWS_SECRET_ACCESS_KEY"],
        "NAME": NAME,
        "RELEASE_SERVICES": " ".join(RELEASED),
    }


def client(infra: Infra, service: str) -> Any:
    env = aws_env(infra)
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def push(infra: Infra, tag: str) -> None:
    ecr = client(infra, "ecr")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "digest": f"sha256:{tag[:8] * 8}",
                "size": 1,
                "mediaType": "application/vnd.docker.container.image.v1+json",
            },
            "layers": [],
        }
    )
    for image in (*RELEASED, "init"):
        ecr.put_image(repositoryName=f"{NAME}/{image}", imageManifest=manifest, imageTag=tag)


@pytest.fixture(scope="module")
def deployment(infra: Infra) -> dict[str, str]:
    """A deployment as Terraform leaves it: repositories, a cluster, every service on revision 1."""
    if not (shutil.which("aws") and shutil.which("jq")):
        pytest.skip("infra/release.sh needs the AWS CLI and jq (GitHub's runners have both)")
    ecr, ecs = client(infra, "ecr"), client(infra, "ecs")
    registry = {}
    for image in (*RELEASED, "init"):
        registry[image] = ecr.create_repository(repositoryName=f"{NAME}/{image}")["repository"][
            "repositoryUri"
        ]
    push(infra, "a" * 40)
    ecs.create_cluster(clusterName=CLUSTER)
    for process in PROCESSES:
        image = registry[process.removesuffix("-worker")]
        definition = ecs.register_task_definition(
            family=f"{NAME}-{process}",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            taskRoleArn=f"arn:aws:iam::123456789012:role/{NAME}-{process}-task",
            executionRoleArn=f"arn:aws:iam::123456789012:role/{NAME}-{process}-execution",
            containerDefinitions=[{"name": process, "image": f"{image}:{'a' * 40}", "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=CLUSTER, serviceName=process, taskDefinition=definition, desiredCount=0)
    return registry


def release(infra: Infra, step: str, tag: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "infra" / "release.sh"), step],
        env={**aws_env(infra), "TAG": tag, "STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def running(infra: Infra) -> dict[str, str]:
    ecs = client(infra, "ecs")
    described = ecs.describe_services(cluster=CLUSTER, services=PROCESSES)["services"]
    images = {}
    for service in described:
        definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        images[service["serviceName"]] = definition["containerDefinitions"][0]["image"].rsplit(":", 1)[1]
    return images


def test_a_release_moves_every_service_to_the_new_image_and_a_rollback_moves_it_back(
    infra: Infra, deployment: dict[str, str], tmp_path: Path
) -> None:
    old, new = "a" * 40, "b" * 40
    push(infra, new)
    deployed = release(infra, "deploy", new, tmp_path / "previous.json")
    assert deployed.returncode == 0, deployed.stderr
    assert running(infra) == dict.fromkeys(PROCESSES, new)
    assert "every service runs" in deployed.stderr
    rolled_back = release(infra, "rollback", new, tmp_path / "previous.json")
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert running(infra) == dict.fromkeys(PROCESSES, old)


def test_a_release_of_an_image_that_was_never_pushed_changes_nothing(
    infra: Infra, deployment: dict[str, str], tmp_path: Path
) -> None:
    before = running(infra)
    refused = release(infra, "deploy", "c" * 40, tmp_path / "previous.json")
    assert refused.returncode != 0
    assert f"no image {NAME}/auth:{'c' * 40}" in refused.stderr
    assert running(infra) == before
    assert release(infra, "deploy", "latest", tmp_path / "p.json").returncode == 2  # a tag is a commit
