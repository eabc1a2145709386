"""Signing in through the pages and reading their forms, as a browser would."""

from __future__ import annotations

import re

from .factories import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, url: str = "/login") -> str:
    page = client.get(url)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD):
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return client


def post_form(client, url: str, data: dict, form_url: str | None = None, **kwargs):
    """Submit a form the way the page offers it: with the CSRF token of the page."""
    token = csrf_token(client, form_url or url)
    return client.post(url, data={**data, "csrf_token": token}, **kwargs)


def text(response) -> str:
    return response.get_data(as_text=True)
