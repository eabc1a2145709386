"""The pages, through the test client: every page for every role, sign-in, forms, review."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from archive.extensions import db
from archive.models import AuditEntry, User

from . import test_visibility
from .conftest import ROLES
from .test_visibility import PUBLIC, SECRET, ids_in_use
from .web_helpers import CSRF, csrf_token, post_form, sign_in, text

# The archive the API's crawl reads, with a marker in every withheld field: the pages must
# keep back exactly what the API does.
archive = test_visibility.archive

ANONYMOUS_PAGES = ("/", "/events", "/operations", "/sources", "/actors", "/login")


def record_pages(ids: dict) -> list[str]:
    return [
        f"/events/{ids['event']}",
        f"/operations/{ids['operation']}",
        f"/sources/{ids['public_source']}",
    ]


# --- Every page, every role ------------------------------------------------------------------


@pytest.mark.parametrize("role", [None, *ROLES])
def test_every_page_answers_every_role(browser_for, archive, role):
    client = browser_for(role)
    for url in (*ANONYMOUS_PAGES, *record_pages(archive)):
        response = client.get(url)
        signed_in_at_login = role and url == "/login"
        assert response.status_code == (302 if signed_in_at_login else 200), (role, url)
        if signed_in_at_login:
            continue
        assert "<html lang=" in text(response)
    event = text(client.get(f"/events/{archive['event']}"))
    assert PUBLIC["event"] in event and PUBLIC["victim"] in event
    assert PUBLIC["citation excerpt"] in event
    staff_pages = ("/review", "/deleted", "/admin/users", f"/events/{archive['event']}/history")
    for url in staff_pages:
        response = client.get(url)
        if role is None:
            assert response.status_code == 302 and "/login" in response.headers["Location"]
    if role == "admin":
        assert all(client.get(url).status_code == 200 for url in staff_pages)
    if role == "viewer":
        assert client.get("/events/new").status_code == 403
        assert client.get("/review").status_code == 403
    if role in ("researcher", "editor", "admin"):
        assert client.get("/events/new").status_code == 200
        assert client.get(f"/events/{archive['event']}/edit").status_code == 200
        assert client.get("/review").status_code == 200


def test_staff_see_restricted_and_unpublished_records_on_the_pages(browser_for, archive):
    client = browser_for("viewer")
    event = text(client.get(f"/events/{archive['event']}"))
    assert SECRET["restricted name"] in event and SECRET["internal notes"] in event
    assert client.get(f"/events/{archive['hidden event']}").status_code == 200


# --- Nothing withheld on any anonymous page --------------------------------------------------


def anonymous_page_crawl(client, app) -> dict[str, str]:
    in_use = ids_in_use(app)
    pages = {
        "events": "/events/{}",
        "operations": "/operations/{}",
        "sources": "/sources/{}",
        "actors": "/actors/{}",
        "places": "/places/{}",
    }
    urls = [*ANONYMOUS_PAGES, "/events?status=draft"]
    for name, pattern in pages.items():
        urls += [pattern.format(i) for i in in_use[name]]
    for i in in_use["events"] + in_use["operations"]:
        urls += [f"/events?operation_id={i}", f"/events?actor_id={i}"]
    for name in ("events", "victims", "citations", "sources"):
        urls += [f"/{name}/{i}/history" for i in in_use[name]]
        urls += [f"/{name}/{i}/edit" for i in in_use[name]]
    seen = {}
    for lang in ("es", "en"):
        for url in urls:
            joiner = "&" if "?" in url else "?"
            response = client.get(f"{url}{joiner}lang={lang}")
            seen[f"{url} {lang}"] = text(response)
    return seen


def test_nothing_withheld_reaches_an_anonymous_page(client, app, archive):
    crawl = anonymous_page_crawl(client, app)
    for what, marker in SECRET.items():
        leaks = [url for url, body in crawl.items() if marker in body]
        assert not leaks, f"{what} leaks through {leaks[:5]}"
    everything = "\n".join(crawl.values())
    for what, marker in PUBLIC.items():
        if what != "file bytes":
            assert marker in everything, f"the crawl never reached the public {what}"


def test_hidden_records_are_404_pages_like_missing_ones(client, archive):
    for url in (
        f"/events/{archive['hidden event']}",
        f"/operations/{archive['hidden operation']}",
        f"/sources/{archive['secret_source']}",
        "/events/999999",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "<html" in text(response)


def test_the_public_page_withholds_a_restricted_identity_and_offers_a_citation(client, archive):
    page = text(client.get(f"/events/{archive['event']}?lang=en"))
    assert SECRET["restricted name"] not in page
    assert "Identity withheld" in page
    assert "Cite this record" in page and f"/events/{archive['event']}" in page
    spanish = text(client.get(f"/events/{archive['event']}?lang=es"))
    assert "Citar este registro" in spanish or "Cómo citar" in spanish


# --- Sign-in ---------------------------------------------------------------------------------


def test_sign_in_and_out(app, factory):
    client = app.test_client()
    email = factory.account("researcher")
    response = sign_in(client, email)
    assert response.get("/events/new").status_code == 200
    cookie = next(c for c in client._cookies.values() if c.key == "session")
    assert cookie.http_only and cookie.same_site == "Lax"
    logout = post_form(client, "/logout", {}, form_url="/")
    assert logout.status_code == 302
    assert client.get("/events/new").status_code == 302
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "login" in actions


def test_the_session_cookie_is_secure_over_https(app, factory):
    client = app.test_client()
    email = factory.account("viewer")
    site = "https://archive.example.org"
    page = client.get("/login", base_url=site)
    token = CSRF.search(text(page)).group(1)
    response = client.post(
        "/login",
        data={"email": email, "password": "correct horse battery staple", "csrf_token": token},
        base_url=site,
        headers={"Referer": f"{site}/login"},
    )
    assert response.status_code == 302
    set_cookie = response.headers.get("Set-Cookie")
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie


def test_a_wrong_password_is_refused_with_a_message(app, factory):
    client = app.test_client()
    email = factory.account("editor")
    response = client.post(
        "/login?lang=en",
        data={"email": email, "password": "wrong password!", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 200
    assert "not right" in text(response)
    assert client.get("/review").status_code == 302


def test_failed_sign_ins_are_limited_per_account(app, factory):
    client = app.test_client()
    email = factory.account("editor")
    token = csrf_token(client)
    statuses = [
        client.post(
            "/login?lang=en", data={"email": email, "password": "nope", "csrf_token": token}
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    blocked = client.post(
        "/login?lang=en",
        data={"email": email, "password": "correct horse battery staple", "csrf_token": token},
    )
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in text(blocked)
    # Another account from elsewhere is not blocked by this one's failures.
    other = app.test_client()
    sign_in(other, factory.account("viewer"))


def test_failed_sign_ins_are_limited_per_address(app, factory):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "3 per 15 minutes"
    client = app.test_client()
    token = csrf_token(client)
    for n in range(3):
        response = client.post(
            "/login", data={"email": f"nobody{n}@example.org", "password": "x", "csrf_token": token}
        )
        assert response.status_code == 200
    response = client.post(
        "/login", data={"email": "nobody9@example.org", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 429


def test_a_deactivated_user_is_signed_out_at_the_next_request(app, browser_for):
    client = browser_for("researcher")
    assert client.get("/events/new").status_code == 200
    with app.app_context():
        user = db.session.scalars(select(User).where(User.role == "researcher")).first()
        user.active = False
        db.session.commit()
    response = client.get("/events/new")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sign_in_never_redirects_off_site(app, factory):
    client = app.test_client()
    email = factory.account("viewer")
    response = client.post(
        "/login",
        data={
            "email": email,
            "password": "correct horse battery staple",
            "csrf_token": csrf_token(client),
            "next": "//evil.example.org/x",
        },
    )
    assert response.headers["Location"] == "/"


# --- CSRF ------------------------------------------------------------------------------------


def test_forms_without_a_csrf_token_are_refused(browser_for, db_rows):
    client = browser_for("researcher")
    before = db_rows()
    response = client.post("/events/new", data={"title": "Sin token", "event_type": "raid"})
    assert response.status_code == 400
    assert db_rows() == before
    bad = client.post(
        "/events/new", data={"title": "Token falso", "event_type": "raid", "csrf_token": "x"}
    )
    assert bad.status_code == 400
    assert db_rows() == before


def test_the_api_refuses_a_cookie_session_write_without_a_csrf_token(browser_for, db_rows):
    client = browser_for("researcher")
    before = db_rows()
    response = client.post("/api/v1/places", json={"country": "VE", "admin1": "Miranda"})
    assert response.status_code == 400
    assert db_rows() == before


# --- Headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/events", "/login", "/api/v1/events", "/nowhere"])
def test_security_headers_on_pages_and_api(client, url):
    response = client.get(url)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_no_page_loads_anything_from_another_site(browser_for, archive):
    client = browser_for("editor")
    for url in (*ANONYMOUS_PAGES, *record_pages(archive), "/events/new", "/review"):
        page = text(client.get(url))
        for attribute in ('src="http', 'src="//', 'href="//', "<script>"):
            assert attribute not in page, (url, attribute)
        assert "cdn" not in page.lower()


def test_bootstrap_is_served_by_the_app(client):
    page = text(client.get("/"))
    assert "/bootstrap/static/css/bootstrap.min.css" in page
    with client.get("/bootstrap/static/css/bootstrap.min.css") as css:
        assert css.status_code == 200
