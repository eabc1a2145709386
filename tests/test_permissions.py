"""The permission matrix of DOMAIN.md section 3: every role against every action, every resource.

A refused request answers 401 to an anonymous caller and 403 to a signed-in role that may not,
and leaves the database exactly as it was.
"""

from __future__ import annotations

import pytest

from .audit_helpers import audit_entries
from .factories import MINIMAL

ROLES = (None, "viewer", "researcher", "editor", "admin")
WRITERS = ("researcher", "editor", "admin")
EDITORS = ("editor", "admin")


def expected(role: str | None, allowed: tuple[str, ...], success: int) -> int:
    if role in allowed:
        return success
    return 401 if role is None else 403


# For each resource: a valid partial change.
CHANGE = {
    "actors": {"name": "Policía Municipal de Sucre (renombrada)"},
    "places": {"locality": "Petare"},
    "operations": {"agents_deployed": 250},
    "events": {"title": "Allanamiento en Petare"},
    "victims": {"outcome": "injured"},
    "casualty-counts": {"count": 14},
    "sources": {"publisher": "Efecto Cocuyo"},
    "citations": {"locator": "párrafo 3"},
    "context-figures": {"homicides": 1_432},
}
RESOURCES = tuple(MINIMAL)


def existing(factory, resource: str) -> int:
    """A live record of `resource`, created as an administrator would."""
    return factory.create(resource, **factory.payload(resource))


def test_the_tables_cover_every_resource_of_the_api(client):
    assert set(client.get("/api/v1/").json["resources"]) == set(MINIMAL) == set(CHANGE)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_create(client, factory, auth, db_rows, resource, role):
    payload = factory.payload(resource)
    before = db_rows()
    response = client.post(f"/api/v1/{resource}", json=payload, headers=auth(role))
    assert response.status_code == expected(role, WRITERS, 201), response.json
    if response.status_code == 201:
        assert client.get(f"/api/v1/{resource}/{response.json['id']}", headers=auth("viewer")).json
    else:
        assert response.json["error"]["status"] == response.status_code
        assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_update(client, factory, auth, db_rows, resource, role):
    record_id = existing(factory, resource)
    before = db_rows()
    response = client.patch(
        f"/api/v1/{resource}/{record_id}", json=CHANGE[resource], headers=auth(role)
    )
    assert response.status_code == expected(role, WRITERS, 200), response.json
    if response.status_code == 200:
        assert response.json.items() >= CHANGE[resource].items()
    else:
        assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_delete(client, factory, auth, db_rows, resource, role):
    record_id = existing(factory, resource)
    before = db_rows()
    response = client.delete(f"/api/v1/{resource}/{record_id}", headers=auth(role))
    assert response.status_code == expected(role, EDITORS, 204)
    still_there = client.get(f"/api/v1/{resource}/{record_id}", headers=auth("viewer"))
    if response.status_code == 204:
        assert still_there.status_code == 404
    else:
        assert still_there.status_code == 200
        assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_restore(client, factory, auth, db_rows, resource, role):
    record_id = existing(factory, resource)
    factory.delete(resource, record_id)
    before = db_rows()
    response = client.post(f"/api/v1/{resource}/{record_id}/restore", headers=auth(role))
    assert response.status_code == expected(role, EDITORS, 200)
    after = client.get(f"/api/v1/{resource}/{record_id}", headers=auth("viewer"))
    if response.status_code == 200:
        assert response.json["id"] == record_id
        assert after.status_code == 200
    else:
        assert after.status_code == 404
        assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_read_history(client, factory, auth, resource, role):
    record_id = existing(factory, resource)
    response = client.get(f"/api/v1/{resource}/{record_id}/history", headers=auth(role))
    assert response.status_code == expected(role, ROLES[1:], 200)
    if response.status_code == 200:
        assert [item["action"] for item in response.json["items"]] == ["create"]


# --- Reading unpublished records -------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_read_an_unpublished_event_and_what_hangs_off_it(client, factory, auth, role):
    source = factory.source()
    event = factory.event(status="in_review")
    victim = factory.victim(event)
    count = factory.casualty_count(event, source)
    citation = factory.citation(source, "event", event)
    paths = [
        f"/api/v1/events/{event}",
        f"/api/v1/victims/{victim}",
        f"/api/v1/casualty-counts/{count}",
        f"/api/v1/citations/{citation}",
        f"/api/v1/sources/{source}",
    ]
    for path in paths:
        response = client.get(path, headers=auth(role))
        # Anonymous readers cannot tell an unpublished record from a missing one.
        assert response.status_code == (404 if role is None else 200), path
    listed = client.get("/api/v1/events", headers=auth(role)).json["total"]
    assert listed == (0 if role is None else 1)


@pytest.mark.parametrize("role", ROLES)
def test_read_a_published_event(client, factory, auth, role):
    event = factory.published_event(title="Cota 905")
    response = client.get(f"/api/v1/events/{event}", headers=auth(role))
    assert response.status_code == 200
    assert response.json["title"] == "Cota 905"


# --- Moving an event through its states ------------------------------------------------------


def _patch_event(client, auth, event, role, **change):
    return client.patch(f"/api/v1/events/{event}", json=change, headers=auth(role))


@pytest.mark.parametrize("role", ROLES)
def test_send_a_draft_to_review_and_back(client, factory, auth, db_rows, role):
    event = factory.event()
    before = db_rows()
    sent = _patch_event(client, auth, event, role, status="in_review")
    assert sent.status_code == expected(role, WRITERS, 200)
    if sent.status_code != 200:
        assert db_rows() == before
        return
    assert sent.json["status"] == "in_review"
    back = _patch_event(client, auth, event, role, status="draft")
    assert back.status_code == 200
    assert back.json["status"] == "draft"


@pytest.mark.parametrize("role", ROLES)
def test_verify(client, factory, auth, db_rows, role):
    event = factory.event(status="in_review")
    factory.citation(factory.source(), "event", event)
    before = db_rows()
    response = _patch_event(client, auth, event, role, status="verified")
    assert response.status_code == expected(role, EDITORS, 200)
    if response.status_code == 200:
        assert response.json["status"] == "verified"
    else:
        assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
def test_publish(client, factory, auth, db_rows, role):
    event = factory.event()
    factory.citation(factory.source(), "event", event)
    factory.update("events", event, status="verified")
    before = db_rows()
    response = _patch_event(client, auth, event, role, published=True)
    assert response.status_code == expected(role, EDITORS, 200)
    anonymous = client.get(f"/api/v1/events/{event}")
    if response.status_code == 200:
        assert response.json["published"] is True
        assert anonymous.status_code == 200
        assert [e["action"] for e in audit_entries(factory.app, record_id=event)][-1] == "publish"
    else:
        assert anonymous.status_code == 404
        assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
def test_unpublish(client, factory, auth, db_rows, role):
    event = factory.published_event()
    before = db_rows()
    response = _patch_event(client, auth, event, role, published=False)
    assert response.status_code == expected(role, EDITORS, 200)
    anonymous = client.get(f"/api/v1/events/{event}")
    if response.status_code == 200:
        assert anonymous.status_code == 404
    else:
        assert anonymous.status_code == 200
        assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
def test_create_an_event_already_published(client, factory, auth, db_rows, role):
    """Publishing cannot be slipped in through create: it is still the editor's decision."""
    before = db_rows()
    response = client.post(
        "/api/v1/events",
        json={"title": "Evento", "event_type": "raid", "published": True},
        headers=auth(role),
    )
    if role in EDITORS:
        # Allowed to publish, but not this one: it has no citation and is not verified.
        assert response.status_code == 422
        assert "published" in response.json["error"]["fields"]
    else:
        assert response.status_code == expected(role, (), 0)
    assert db_rows() == before


def test_a_researcher_cannot_verify_by_creating(client, auth, db_rows):
    before = db_rows()
    response = client.post(
        "/api/v1/events",
        json={"title": "Evento", "event_type": "raid", "status": "verified"},
        headers=auth("researcher"),
    )
    assert response.status_code == 403
    assert db_rows() == before


@pytest.mark.parametrize("role", ROLES)
def test_edit_a_published_event_keeps_its_history(client, factory, auth, role):
    event = factory.published_event(title="Cota 905")
    response = _patch_event(client, auth, event, role, title="Cota 905, El Valle")
    assert response.status_code == expected(role, WRITERS, 200)
    history = client.get(f"/api/v1/events/{event}/history", headers=auth("viewer")).json["items"]
    edits = [item for item in history if item["action"] == "update"]
    if response.status_code == 200:
        assert edits[-1]["changes"]["title"] == {
            "before": "Cota 905",
            "after": "Cota 905, El Valle",
        }
    else:
        assert edits == []


# --- Users and the audit log -----------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_read_the_audit_log(client, factory, auth, role):
    existing(factory, "events")
    response = client.get("/api/v1/audit", headers=auth(role))
    assert response.status_code == expected(role, ("admin",), 200)


def test_a_deactivated_account_is_anonymous(app, client, factory, auth):
    from archive.extensions import db
    from archive.models import User

    token = factory.user_token("editor", email="gone@example.org")
    with app.app_context():
        db.session.execute(
            User.__table__.update().where(User.email == "gone@example.org").values(active=False)
        )
        db.session.commit()
    response = client.post(
        "/api/v1/actors",
        json={"name": "X", "kind": "state_military"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "bearer", "Token abc"],
)
def test_bad_credentials_are_refused_for_writes(client, db_rows, header):
    before = db_rows()
    response = client.post(
        "/api/v1/actors",
        json={"name": "X", "kind": "state_military"},
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert db_rows() == before
