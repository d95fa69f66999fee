"""Browser tests of the web app: Python Playwright driving Debian's chromium (``/usr/bin/chromium``, which
``.ci/run`` installs with apt; no browser download) against a whole embedded stack started with
``spendsense up`` on free ports, whose gateway serves the built app (``web/dist``, built by ``make install``).

Without ``/usr/bin/chromium`` every test here is skipped, saying so. Every test writes screenshots of the
pages it visits, and checks each of those pages with axe-core (no serious or critical violation). They go to
``build/web-screenshots/`` at the repository's root (``SPENDSENSE_WEB_SCREENSHOTS=<folder>`` puts them
elsewhere), emptied of the previous run's PNGs when the first browser test starts:

- ``desktop/<page>.png`` at 1280 px and ``phone/<page>.png`` at 375 px (CSS pixels, full page). A page shot
  at a phone's width is shot at desktop width too (the viewport widened for it, then narrowed back), so each
  page the phone-width test visits (every page of the app) is there at both widths;
- ``failures/<test>-<n>.png``: each page a failed test had open, as it was (listed at the end of the run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spendsense_shared.testing.fakes import load_beside

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SPENDSENSE_TEST_CHROMIUM", "/usr/bin/chromium"))
HERE = Path(__file__).parent
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(
    os.environ.get("SPENDSENSE_WEB_SCREENSHOTS") or ROOT / "build" / "web-screenshots"
).resolve()

support = load_beside(str(ROOT / "tests" / "e2e" / "conftest.py"), "e2e_support.py", "spendsense_e2e_support")
oauth_provider = load_beside(
    str(ROOT / "services" / "auth" / "tests" / "conftest.py"),
    "oauth_provider.py",
    "spendsense_auth_tests_oauth_provider",
)
web_support = load_beside(__file__, "web_support.py", "spendsense_web_support")

_FAILURE_SHOTS: list[Path] = []
_SHOTS: dict[str, set[str]] = {"desktop": set(), "phone": set()}  # the pages shot this run, per width


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "web: drives the web app in a real browser (chromium) against the stack"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mine = [i for i in items if HERE in Path(str(i.path)).parents]
    for item in mine:
        item.add_marker(pytest.mark.web)
        item.add_marker(pytest.mark.stack)
        if not CHROMIUM.exists():
            item.add_marker(
                pytest.mark.skip(
                    reason=f"browser tests need Debian's chromium at {CHROMIUM} "
                    "(`apt-get install chromium`; .ci/run installs it)"
                )
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHOTS["desktop"] or _SHOTS["phone"]:
        terminalreporter.section("web app: screenshots")
        terminalreporter.line(
            f"{SCREENSHOTS}: {len(_SHOTS['desktop'])} pages at desktop width (desktop/), "
            f"{len(_SHOTS['phone'])} at phone width (phone/)"
        )
    if _FAILURE_SHOTS:
        terminalreporter.section("web app: screenshots of the failed tests' pages")
        for shot in _FAILURE_SHOTS:
            terminalreporter.line(str(shot))


def _stack_env(running: Any, providers: Any) -> dict[str, str]:
    """Sign-in with Google pointed at a local OAuth provider (GitHub, Facebook and Apple stay unconfigured),
    and this stack's web app allowed as the callback's redirect target (``/signin/oauth/<provider>``)."""
    return {
        **{f"SPENDSENSE_{k.upper()}": str(v) for k, v in providers.settings("google").items()},
        "SPENDSENSE_OAUTH_ALLOWED_REDIRECT_URIS": json.dumps([f"{running.gateway}/signin/oauth/"]),
    }


@pytest.fixture(scope="session")
def web_stack() -> Iterator[Any]:
    """The whole stack, once for every browser test; its gateway serves this checkout's web/dist, and
    sign-in with Google goes to a local OAuth provider (``services/auth/tests/oauth_provider.py``).

    ``SPENDSENSE_WEB_TEST_STACK=<state dir>`` uses a stack already running from that state directory
    instead (``spendsense up --state-dir …``), neither started nor stopped here: quicker while working on
    the app (``providers`` is then None: the OAuth test runs only if that stack has Google configured)."""
    if not (ROOT / "web" / "dist" / "index.html").is_file():
        pytest.fail("web/dist is not built: run `make install` (it runs npm ci and npm run build in web/)")
    running_dir = os.environ.get("SPENDSENSE_WEB_TEST_STACK")
    if running_dir:
        manifest = json.loads((Path(running_dir) / "stack.json").read_text())
        yield support.Stack(Path(running_dir), int(manifest["urls"]["gateway"].rsplit(":", 1)[1]))
        return
    # Not under pytest's basetemp: as root, PostgreSQL runs as another user that must reach the state dir.
    state_dir = Path(tempfile.mkdtemp(prefix="spendsense-web-"))
    state_dir.chmod(0o755)
    providers = oauth_provider.LocalProviders().start()
    running = support.Stack(state_dir, support.free_block(9))
    try:
        for _ in range(3):  # another process may take a port of the block before a server binds it
            env = _stack_env(running, providers)
            result = support.cli("up", *running.args, "--timeout", "300", env=env, timeout=400)
            if result.returncode == 0 or "already in use" not in result.stdout + result.stderr:
                break
            running = support.Stack(state_dir, support.free_block(9))
        assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
        running.providers = providers
        yield running
    finally:
        support.cli("down", "--state-dir", str(running.state_dir))
        providers.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Per module, not per session: while Playwright's sync API is open, the thread looks as if an event
    # loop were running, which would break any asyncio test that pytest runs after these.
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for the pipeline (upload → analysis → review) on a machine that may be busy: a
    # readiness wait, not a benchmark, so a slow run is slow, never red.
    expect.set_options(timeout=60_000)

    with sync_playwright() as playwright:
        # Playwright's own launcher, Debian's browser: no download. As root it adds --no-sandbox itself.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """``build/web-screenshots`` (or ``SPENDSENSE_WEB_SCREENSHOTS``) with its ``desktop/``, ``phone/`` and
    ``failures/`` folders, the PNGs of a previous run removed (nothing else is touched)."""
    for width in ("desktop", "phone", "failures"):
        folder = SCREENSHOTS / width
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
    return SCREENSHOTS


class Pages:
    """Browser contexts (each its own person: cookies and storage apart) opened by one test."""

    def __init__(self, browser: Any, base_url: str, screenshots: Path, test_name: str):
        self.browser = browser
        self.base_url = base_url
        self.screenshots = screenshots
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.contexts: list[Any] = []
        self.pages: list[Any] = []
        self.errors: list[str] = []
        self.inaccessible: list[str] = []

    def open(
        self,
        width: int = web_support.DESKTOP["width"],
        height: int = web_support.DESKTOP["height"],
        **options: Any,
    ) -> Any:
        context = self.browser.new_context(
            base_url=self.base_url, viewport={"width": width, "height": height}, **options
        )
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )
        self.contexts.append(context)
        self.pages.append(page)
        return page

    def shot(self, page: Any, name: str) -> Path:
        """A screenshot of the page as it is (``phone/<name>.png`` or ``desktop/<name>.png``, by the
        viewport's width), and an accessibility check of it (axe-core). At a phone's width the page is shot
        at desktop width too, so every page the phone-width test visits exists at both widths."""
        viewport = page.viewport_size
        if viewport["width"] > web_support.PHONE["width"]:
            path = self._screenshot(page, "desktop", name)
            self.check_accessibility(page, name)
            return path
        path = self._screenshot(page, "phone", name)
        self.check_accessibility(page, name)
        page.set_viewport_size(web_support.DESKTOP)
        try:
            self._screenshot(page, "desktop", name)
        finally:
            page.set_viewport_size(viewport)
            _settle(page)
        return path

    def _screenshot(self, page: Any, width: str, name: str) -> Path:
        _settle(page)
        path = self.screenshots / width / f"{name}.png"
        # CSS pixels: a phone context's device scale factor does not double the PNG.
        page.screenshot(path=str(path), full_page=True, scale="css")
        _SHOTS[width].add(name)
        return path

    def check_accessibility(self, page: Any, name: str) -> None:
        """axe-core's rules (labels, names, contrast, landmarks, ARIA) on the page as it is now; serious and
        critical violations are kept in ``self.inaccessible``. axe comes from web/node_modules (a
        devDependency) and is evaluated through the DevTools protocol, which the page's CSP does not govern."""
        if not AXE.is_file():
            pytest.fail(f"{AXE} is missing: run `make install` (npm ci in web/)")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(AXE.read_text())
        result = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
        for violation in result["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [node["target"] for node in violation["nodes"][:3]]
                self.inaccessible.append(f"{name}: {violation['id']} ({violation['help']}) at {targets}")

    def console_errors(self) -> list[str]:
        """What the pages logged as errors (script errors, refused by the content security policy, React
        warnings), but the browser's note of each API answer that is not 2xx: the app shows those itself."""
        answered = "Failed to load resource: the server responded with a status of"
        return [e for e in self.errors if answered not in e]

    def close(self, failed: bool, failures: Path) -> None:
        if failed:
            failures.mkdir(parents=True, exist_ok=True)
            for n, page in enumerate(self.pages):
                path = failures / f"{self.test_name}-{n}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                    _FAILURE_SHOTS.append(path)
                except Exception as exc:  # a closed page: note it, keep the others
                    _FAILURE_SHOTS.append(Path(f"{path} (not taken: {exc})"))
        for context in self.contexts:
            context.close()


def _settle(page: Any) -> None:
    """Two animation frames: the layout has followed a change of the viewport before a screenshot."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


@pytest.fixture
def pages(
    request: pytest.FixtureRequest, browser: Any, web_stack: Any, screenshot_dir: Path
) -> Iterator[Pages]:
    opened = Pages(browser, web_stack.gateway, screenshot_dir, request.node.name)
    yield opened
    report = getattr(request.node, "rep_call", None)
    opened.close(bool(report and report.failed), screenshot_dir / "failures")


def eventually(probe: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 1.0) -> None:
    """Poll ``probe`` until true: a readiness wait for the asynchronous pipeline, not a benchmark."""
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(interval_s)


@pytest.fixture(scope="session")
def helpers() -> Any:
    """Shared helpers for the test modules (which pytest's importlib mode cannot import from here)."""

    class Helpers:
        eventually = staticmethod(eventually)
        support_module = support
        web = web_support

    return Helpers
