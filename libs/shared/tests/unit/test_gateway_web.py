"""The gateway serves the built web app at ``/``: hashed assets cached for a year, ``index.html`` never
cached, an SPA fallback for the app's own routes, and the API routes exactly as before."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from spendsense_shared.gateway.app import GatewaySettings, create_gateway
from spendsense_shared.gateway.web import ASSETS_CACHE, default_web_dist

INDEX = (
    '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'
)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('app');")
    (root / "assets" / "index-def456.css").write_text("body{margin:0}")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


def gateway_client(web_dist: Path) -> httpx.AsyncClient:
    down = f"http://127.0.0.1:{closed_port()}"
    settings = GatewaySettings(
        upstreams={s: down for s in ("auth", "profile", "features", "recommender", "operator")}
    )
    app = create_gateway(settings, web_dist=web_dist)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


@pytest.fixture
async def client(dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(dist) as c:
        yield c


async def test_the_root_serves_index_html_never_cached(client: httpx.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/index.html")).headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_for_a_year_and_immutable(client: httpx.AsyncClient) -> None:
    script = await client.get("/assets/index-abc123.js")
    style = await client.get("/assets/index-def456.css")

    assert script.status_code == 200
    assert script.text == "console.log('app');"
    assert script.headers["cache-control"] == ASSETS_CACHE == "public, max-age=31536000, immutable"
    assert "javascript" in script.headers["content-type"]
    assert style.headers["cache-control"] == ASSETS_CACHE
    assert style.headers["content-type"].startswith("text/css")


async def test_other_files_are_served_with_a_short_cache(client: httpx.AsyncClient) -> None:
    icon = await client.get("/favicon.svg")

    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.headers["cache-control"] == "public, max-age=3600"


@pytest.mark.parametrize(
    "path", ["/me", "/me/persona", "/operator/review?status=pending", "/signin", "/a/b/c/d"]
)
async def test_app_routes_fall_back_to_index_html(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"


async def test_head_is_answered_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/me/upload")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == b""


@pytest.mark.parametrize(
    "path", ["/assets/index-old999.js", "/missing.png", "/robots.txt", "/assets/nothing"]
)
async def test_a_missing_file_is_404_not_the_app(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt"]
)
async def test_nothing_outside_the_build_is_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)  # reaches the handler as ``../secret.txt``

    assert response.status_code == 404
    assert "not for the web" not in response.text


@pytest.mark.parametrize("path", ["/api", "/api/v2/uploads", "/api/anything.json"])
async def test_non_v1_api_paths_get_a_json_404_not_the_app(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_api_routes_are_unchanged(client: httpx.AsyncClient) -> None:
    unrouted = await client.get("/api/v1/nowhere")
    routed_get = await client.get("/api/v1/profile/u1")
    routed_post = await client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "x"})

    assert unrouted.status_code == 404
    assert unrouted.json()["error"]["message"] == "no route for GET /api/v1/nowhere"
    # Routed paths still go to the (here unreachable) service, never to the app's HTML.
    assert routed_get.status_code == 502
    assert routed_get.json()["error"]["code"] == "bad_gateway"
    assert routed_post.status_code == 502
    health = await client.get("/health")
    assert health.json() == {"status": "ok", "service": "gateway"}


async def test_only_get_and_head_reach_the_app(client: httpx.AsyncClient) -> None:
    response = await client.post("/me/upload", content=b"x")

    assert response.status_code == 405


async def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path) -> None:
    empty = tmp_path / "dist"
    empty.mkdir()
    async with gateway_client(empty) as client:
        root = await client.get("/")
        deep = await client.get("/me/persona")
        api = await client.get("/api/v1/nowhere")

    assert root.status_code == 503
    assert root.headers["content-type"].startswith("text/html")
    assert "make install" in root.text
    assert "npm run build" in root.text
    assert root.headers["cache-control"] == "no-store"
    assert deep.status_code == 503
    assert api.status_code == 404


async def test_a_missing_dist_folder_is_not_an_error_either(tmp_path: Path) -> None:
    async with gateway_client(tmp_path / "never-built") as client:
        response = await client.get("/")

    assert response.status_code == 503
    assert "make install" in response.text


def test_the_default_is_this_checkouts_web_dist() -> None:
    found = default_web_dist()

    assert found is not None
    assert found.parts[-2:] == ("web", "dist")
    assert (found.parent / "package.json").is_file()
