"""What an anonymous reader can reach: a crawl of every GET route, looking for anything withheld.

The archive below holds, beside a published event, everything DOMAIN.md section 3 keeps from
anonymous readers: a restricted identity, a restricted source with its file and the counts and
citations resting on it, internal notes, an unpublished event, an operation with no published
event, and deleted records. Each withheld thing carries a marker string; no anonymous response,
success or error, may contain one, while the public markers must all be found (so the crawl
cannot pass by reaching nothing).
"""

from __future__ import annotations

import io
import json
import re

import pytest
from sqlalchemy import select

from archive.extensions import db
from archive.resources import RESOURCES

SECRET = {
    "restricted name": "Zacarías Reservado",
    "restricted alias": "El Sigiloso",
    "restricted source title": "Testimonio confidencial de la madre",
    "restricted source publisher": "Archivo interno PROVEA",
    "restricted citation excerpt": "relato protegido del testigo",
    "restricted file bytes": "contenido del testimonio grabado",
    "internal notes": "nota interna: confirmar con fiscalía",
    "unpublished event": "Allanamiento sin verificar",
    "unpublished operation": "Operación sin publicar",
    "unpublished victim": "Víctima de evento no publicado",
    "deleted event": "Evento eliminado",
    "deleted source": "Fuente eliminada",
    "citation of a restricted identity": "nombre completo en la nota de prensa",
    "unused source": "Fuente sin citar",
}
PUBLIC = {
    "event": "Enfrentamiento en la Cota 905",
    "operation": "Operación de Liberación del Pueblo",
    "victim": "Kevin Valera",
    "source": "Quince muertos en la Cota 905",
    "citation excerpt": "quince personas fallecidas",
    "file bytes": "nota de prensa archivada",
}
RESTRICTED_AGE = 16


@pytest.fixture
def archive(client, factory, auth):
    """The archive of the module docstring; answers the ids a test may want."""
    ids = {}
    ids["operation"] = factory.operation(name=PUBLIC["operation"])
    ids["hidden operation"] = factory.operation(name=SECRET["unpublished operation"])
    public_source = factory.source(title=PUBLIC["source"])
    secret_source = factory.source(
        kind="testimony",
        title=SECRET["restricted source title"],
        publisher=SECRET["restricted source publisher"],
        restricted=True,
    )
    ids.update(public_source=public_source, secret_source=secret_source)

    event = factory.event(
        title=PUBLIC["event"],
        operation_id=ids["operation"],
        internal_notes=SECRET["internal notes"],
    )
    factory.citation(public_source, "event", event, excerpt=PUBLIC["citation excerpt"])
    factory.citation(secret_source, "event", event, excerpt=SECRET["restricted citation excerpt"])
    factory.update("events", event, status="verified", published=True)
    ids["event"] = event

    ids["named victim"] = factory.victim(event, name=PUBLIC["victim"], identity_restricted=False)
    ids["restricted victim"] = factory.victim(
        event,
        name=SECRET["restricted name"],
        alias=SECRET["restricted alias"],
        age=RESTRICTED_AGE,
        identity_restricted=True,
    )
    factory.citation(
        public_source,
        "victim",
        ids["restricted victim"],
        excerpt=SECRET["citation of a restricted identity"],
    )
    ids["public count"] = factory.casualty_count(event, public_source, count=15)
    ids["secret count"] = factory.casualty_count(event, secret_source, count=17)

    hidden = factory.event(title=SECRET["unpublished event"], operation_id=ids["hidden operation"])
    factory.victim(hidden, name=SECRET["unpublished victim"], identity_restricted=False)
    factory.citation(public_source, "event", hidden)
    factory.casualty_count(hidden, public_source)
    ids["hidden event"] = hidden

    deleted = factory.published_event(title=SECRET["deleted event"])
    factory.delete("events", deleted)
    gone = factory.source(title=SECRET["deleted source"])
    factory.delete("citations", factory.citation(gone, "operation", ids["operation"]))
    factory.delete("sources", gone)
    factory.source(title=SECRET["unused source"])

    for source, content in (
        (public_source, PUBLIC["file bytes"]),
        (secret_source, SECRET["restricted file bytes"]),
    ):
        uploaded = client.post(
            f"/api/v1/sources/{source}/files",
            data={"file": (io.BytesIO(content.encode()), "nota.txt")},
            headers=auth("researcher"),
        )
        assert uploaded.status_code == 201, uploaded.json
        ids[f"file of {source}"] = uploaded.json["sha256"]
    return ids


def ids_in_use(app) -> dict[str, list[int]]:
    """Every id of every resource's table, hidden and deleted records included."""
    with app.app_context():
        return {
            name: list(db.session.scalars(select(resource.model.id)))
            for name, resource in RESOURCES.items()
        }


def anonymous_crawl(client, archive) -> dict[str, bytes]:
    """Every anonymous GET the API offers, over every id in use: url -> body."""
    seen: dict[str, bytes] = {}
    in_use = ids_in_use(client.application)
    every_id = sorted({i for ids in in_use.values() for i in ids})

    def get(url: str) -> None:
        with client.get(url) as response:  # downloads stream: close them
            seen[url] = response.get_data()

    get("/api/v1/")
    get("/api/v1/openapi.json")
    get("/")
    get("/api/v1/audit")
    for name, resource in RESOURCES.items():
        get(f"/api/v1/{name}?per_page=200")
        for sort_key in resource.sort_fields:
            get(f"/api/v1/{name}?sort=-{sort_key}")
        for record_id in in_use[name]:
            get(f"/api/v1/{name}/{record_id}")
            get(f"/api/v1/{name}/{record_id}/history")
        for filter_name in resource.filters:
            # Filtering on a hidden record's id must not reveal it either.
            for value in (*map(str, every_id), "true", "false"):
                get(f"/api/v1/{name}?{filter_name}={value}")
    for source in (archive["public_source"], archive["secret_source"]):
        for sha in (archive[f"file of {archive['public_source']}"], archive[f"file of {source}"]):
            get(f"/api/v1/sources/{source}/files/{sha}")
    return seen


def test_nothing_withheld_reaches_an_anonymous_reader(client, archive):
    crawl = anonymous_crawl(client, archive)
    everything = b"\n".join(crawl.values()).decode("utf-8", "replace")
    # JSON escapes non-ASCII letters; compare on decoded bodies too.
    decoded = "\n".join(_decoded(body) for body in crawl.values())
    for what, marker in SECRET.items():
        leaks = [url for url, body in crawl.items() if marker in _decoded(body)]
        assert marker not in everything and not leaks, f"{what} leaks through {leaks[:5]}"
    for what, marker in PUBLIC.items():
        assert marker in decoded, f"the crawl never reached the public {what}"


def _decoded(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def test_a_restricted_identity_is_left_out_of_every_victim_anonymous_readers_get(client, archive):
    restricted = archive["restricted victim"]
    for url in (
        f"/api/v1/victims/{restricted}",
        f"/api/v1/victims?event_id={archive['event']}",
        "/api/v1/victims?affiliation=unknown&outcome=killed",
    ):
        response = client.get(url)
        assert response.status_code == 200
        victims = response.json.get("items", [response.json])
        record = next(v for v in victims if v["id"] == restricted)
        assert record["identity_restricted"] is True
        assert not {"name", "alias", "age"} & set(record), url


def test_staff_see_what_anonymous_readers_do_not(client, archive, auth):
    for role in ("viewer", "researcher", "editor", "admin"):
        victim = client.get(f"/api/v1/victims/{archive['restricted victim']}", headers=auth(role))
        assert victim.json["name"] == SECRET["restricted name"]
        assert victim.json["age"] == RESTRICTED_AGE
        event = client.get(f"/api/v1/events/{archive['event']}", headers=auth(role))
        assert event.json["internal_notes"] == SECRET["internal notes"]
        source = client.get(f"/api/v1/sources/{archive['secret_source']}", headers=auth(role))
        assert source.json["title"] == SECRET["restricted source title"]
        sha = archive[f"file of {archive['secret_source']}"]
        url = f"/api/v1/sources/{archive['secret_source']}/files/{sha}"
        with client.get(url, headers=auth(role)) as download:
            assert download.get_data(as_text=True) == SECRET["restricted file bytes"]


def test_anonymous_lists_count_only_what_they_show(client, archive):
    """A total that counted hidden records would reveal that they exist."""
    expected = {
        "events": 1,
        "operations": 1,
        "victims": 2,
        "casualty-counts": 1,
        "sources": 1,
        # Of the four citations of live records the public source has, two hang off the
        # hidden event or the restricted identity; the restricted source's is withheld.
        "citations": 1,
    }
    for name, total in expected.items():
        body = client.get(f"/api/v1/{name}?per_page=200").json
        assert body["total"] == total == len(body["items"]), name


def test_hidden_records_answer_404_like_missing_ones(client, archive):
    for url in (
        f"/api/v1/events/{archive['hidden event']}",
        f"/api/v1/operations/{archive['hidden operation']}",
        f"/api/v1/sources/{archive['secret_source']}",
        f"/api/v1/casualty-counts/{archive['secret count']}",
    ):
        hidden = client.get(url)
        missing = client.get(re.sub(r"/\d+$", "/999999", url))
        assert hidden.status_code == missing.status_code == 404
        assert set(hidden.json["error"]) == set(missing.json["error"])
