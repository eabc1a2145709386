"""A real browser on the real app: the server, Chromium, axe-core and what the pages report.

The app runs in a thread of the test process (werkzeug's server) on 127.0.0.1, so the tests
share its database and can check what was stored. Chromium comes from the system (Debian's
package, /usr/bin/chromium), axe-core from npm (tests/browser/package.json, installed by
`make test`); in CI a missing one fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server

from .factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_JS = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# axe is served as if it were the archive's own script, so that the pages' Content Security
# Policy (script-src 'self') admits it without turning the policy off.
AXE_PATH = "/__tests__/axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
BLOCKING_IMPACTS = ("serious", "critical")


def missing_tools() -> list[str]:
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append(f"Chromium ({CHROMIUM}): apt-get install chromium")
    if not AXE_JS.exists():
        missing.append(f"axe-core ({AXE_JS}): npm ci --prefix tests/browser")
    return missing


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # the test output is no place for an access log
        pass


class LiveServer:
    """The app served on a free port of 127.0.0.1 from a thread, until `stop`."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Watch:
    """What the pages of a browser context did that they should not have."""

    outside_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def take_console_errors(self) -> list[str]:
        found, self.console_errors[:] = list(self.console_errors), []
        return found


def local_only(watch: Watch, base_url: str):
    """A route handler: the archive's own requests go through, any other is refused and
    remembered (the archive promises to work offline: no CDN, no font service, no tracker)."""
    host = urlsplit(base_url).netloc

    def handle(route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc == host:
            if parts.path == AXE_PATH:
                route.fulfill(path=str(AXE_JS), content_type="application/javascript")
            else:
                route.continue_()
            return
        watch.outside_requests.append(url)
        route.abort("blockedbyclient")

    return handle


def watch_page(watch: Watch, page) -> None:
    def on_console(message):
        if message.type != "error":
            return
        # A page answered 4xx on purpose (a form sent back with its errors, a 404) is the
        # test's to check; the browser's note about that document is not a page error.
        # The same note about a stylesheet or a script is one.
        if message.text.startswith("Failed to load resource: the server responded") and (
            message.location.get("url") == page.url
        ):
            return
        watch.console_errors.append(f"{page.url}: console: {message.text} {message.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watch.console_errors.append(f"{page.url}: pageerror: {exc}"))


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would: type, then press the button."""
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert "/login" not in page.url, page.inner_text("main")


def with_lang(path: str, lang: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


def axe_violations(page) -> list[dict]:
    """The serious and critical accessibility violations axe-core finds on the page."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_PATH)
    result = page.evaluate(
        """async () => await window.axe.run(document, {resultTypes: ['violations']})"""
    )
    assert result["passes"], f"axe checked nothing on {page.url}"
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "elements": [
                {"target": n["target"], "html": n["html"][:200], "summary": n["failureSummary"]}
                for n in v["nodes"]
            ],
        }
        for v in result["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]


def describe_violations(url: str, violations: list[dict]) -> str:
    lines = [f"{url}:"]
    for v in violations:
        lines.append(f"  {v['impact']} {v['rule']}: {v['help']}")
        for el in v["elements"][:5]:
            lines.append(f"    {el['target']} {el['html']}")
            lines.append(f"      {el['summary']}".replace("\n", "\n      "))
    return "\n".join(lines)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
