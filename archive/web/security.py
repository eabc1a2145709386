"""Headers on every response, pages and API alike, and cookies marked Secure over HTTPS."""

from __future__ import annotations

from flask import Flask, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

# Everything comes from the archive itself: no CDN, no inline script, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

# Pages that draw charts: plotly.js saves a chart as a picture by drawing it into an <img> from
# a blob: URL it has just made itself, so those pages (and only those) admit blob: images.
# Its style rules come as files (archive/web/plotly_assets.py), so style-src stays 'self'.
CHART_PAGE_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self' data:", "img-src 'self' data: blob:"
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request itself came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def allow_chart_pictures() -> str:
    """Mark this response as a page with charts (see CHART_PAGE_POLICY); renders as ""."""
    g.chart_pictures = True
    return ""


def add_headers(response):
    if g.get("chart_pictures"):
        response.headers.setdefault("Content-Security-Policy", CHART_PAGE_POLICY)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.after_request(add_headers)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_prefix=proxies
        )
