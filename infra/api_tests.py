"""What .github/workflows/api-tests.yml runs against a deployed environment (staging).

    python infra/api_tests.py openapi OUT_DIR   # each service's OpenAPI document, from the release's code
    python infra/api_tests.py token             # a fresh user's access token (for schemathesis), on stdout
    python infra/api_tests.py journey           # the e2e journey: sign-up → consent → upload → analysis →
                                                # recommendations → operator review, for a few new users

The deployed services serve their OpenAPI documents only inside the VPC, and the images are built from the
same commit, so the documents come from the code of the release under test (``app.openapi()``), limited
to the paths the public edge routes (the gateway's route table). Settings from the environment:
``API_URL`` (the public base URL), ``ADMIN_EMAIL``/``ADMIN_PASSWORD`` (the environment's bootstrap admin,
for the journey's batch upload and review). Nothing secret is printed: the token goes to stdout only for
the workflow to mask and pass on.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

SERVICES = ("auth", "profile", "features", "recommender", "operator")


def _edge_patterns() -> list[re.Pattern[str]]:
    """The public edge's routes (``ANY /api/v1/users/{proxy+}``, ``GET /api/v1/profile/{user_id}``) as
    path patterns."""
    from spendsense_shared.gateway.routes import ROUTES  # the gateway's and API Gateway's one table

    patterns = []
    for route in ROUTES:
        path = route.path.replace("{proxy+}", "\x00")
        path = re.sub(r"\{[^}]+\}", "[^/]+", path).replace("\x00", ".+")
        patterns.append(re.compile(f"^{path}$"))
    return patterns


def openapi(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    patterns = _edge_patterns()
    for service in SERVICES:
        app = importlib.import_module(f"spendsense_{service}.main").app
        document: dict[str, Any] = app.openapi()
        concrete = {p: ops for p, ops in document["paths"].items() if any(x.match(p) for x in patterns)}
        document["paths"] = concrete
        (out_dir / f"{service}.json").write_text(json.dumps(document, indent=1))
        print(f"{service}: {len(concrete)} public paths", file=sys.stderr)


def token() -> None:
    from spendsense_cli.accounts import new_password, register

    with httpx.Client(base_url=os.environ["API_URL"], timeout=60) as client:
        account = register(client, f"api-tests+{uuid.uuid4().hex[:12]}@spendsense.example", new_password())
    print(account.access_token)


def journey() -> None:
    from spendsense_cli.pipeline_demo import run_pipeline_demo

    admin = (os.environ["ADMIN_EMAIL"], os.environ["ADMIN_PASSWORD"])
    with tempfile.TemporaryDirectory(prefix="spendsense-journey-") as state_dir:
        result = run_pipeline_demo(
            os.environ["API_URL"],
            Path(state_dir),
            admin=admin,
            users=int(os.environ.get("JOURNEY_USERS", "8")),
            seed=int(uuid.uuid4().int % 10_000),  # new users each run: staging keeps earlier runs' users
            progress=lambda message: print(f"  {message}", file=sys.stderr),
        )
    recommended = result.stages.get("recommended", 0)
    print(f"journey: {result.users} users, {recommended} recommended; review: {result.review}")
    if recommended != result.users:
        raise SystemExit(f"only {recommended} of {result.users} users got recommendations")


def main(argv: list[str]) -> None:
    match argv:
        case ["openapi", out_dir]:
            openapi(Path(out_dir))
        case ["token"]:
            token()
        case ["journey"]:
            journey()
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
