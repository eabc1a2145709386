"""Bad requests are refused with an error naming what was wrong, and change nothing at all.

Every test takes a snapshot of every table before the bad request and compares it after, so a
half-written record, a stray revision or audit entry would fail it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from .factories import MINIMAL

API = "/api/v1"
MISSING = 999_999
MAX_INTEGER = 2**31 - 1
JULY_13 = dt.date(2015, 7, 13)
DROP = object()  # as a value in a case's change: leave the field out


def error_fields(response, status: int = 422) -> dict[str, list[str]]:
    """The error's fields, after checking the error's shape."""
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    fields = error.get("fields", {})
    assert all(
        isinstance(m, list) and m and all(isinstance(s, str) for s in m) for m in fields.values()
    )
    return fields


def case(resource: str, change: dict | Callable, field: str, id: str):
    return pytest.param(resource, change, field, id=id)


CREATE_CASES = [
    # Unknown fields, and fields only the server sets.
    case("events", {"colour": "red"}, "colour", "unknown field"),
    case("events", {"place": 1}, "place", "reference without _id"),
    case("actors", {"id": 7}, "id", "id is the server's"),
    case("sources", {"created_at": "2015-07-13T00:00:00Z"}, "created_at", "created_at"),
    case("sources", {"files": []}, "files", "files are uploaded, not sent"),
    case("actors", {"is_state": True}, "is_state", "is_state follows kind"),
    # Required fields.
    case("events", {"title": DROP}, "title", "event without title"),
    case("events", {"event_type": DROP}, "event_type", "event without type"),
    case("actors", {"kind": DROP}, "kind", "actor without kind"),
    case("operations", {"name": DROP}, "name", "operation without name"),
    case("victims", {"event_id": DROP}, "event_id", "victim without event"),
    case("victims", {"outcome": DROP}, "outcome", "victim without outcome"),
    case("casualty-counts", {"source_id": DROP}, "source_id", "count without source"),
    case("casualty-counts", {"count": DROP}, "count", "count without count"),
    case("sources", {"title": DROP}, "title", "source without title"),
    case("citations", {"source_id": DROP}, "source_id", "citation without source"),
    case("citations", {"target_id": DROP}, "target_id", "citation without target_id"),
    case("citations", {"target_type": DROP}, "target_type", "citation without target_type"),
    case("events", {"title": None}, "title", "null title"),
    # Controlled lists.
    case("events", {"event_type": "massacre"}, "event_type", "event_type"),
    case("events", {"status": "approved"}, "status", "status"),
    case("events", {"date_precision": "week"}, "date_precision", "date_precision"),
    case("victims", {"affiliation": "soldier"}, "affiliation", "victim affiliation"),
    case("victims", {"outcome": "dead"}, "outcome", "victim outcome"),
    case("victims", {"caused_by": "police"}, "caused_by", "victim caused_by"),
    case("victims", {"sex": "f"}, "sex", "victim sex"),
    case("victims", {"on_duty": "maybe"}, "on_duty", "victim on_duty"),
    case("casualty-counts", {"affiliation": "Civilian"}, "affiliation", "count affiliation"),
    case("casualty-counts", {"outcome": "wounded"}, "outcome", "count outcome"),
    case("actors", {"kind": "police"}, "kind", "actor kind"),
    case("actors", {"jurisdiction": "federal"}, "jurisdiction", "actor jurisdiction"),
    case("sources", {"kind": "blog"}, "kind", "source kind"),
    case("sources", {"reliability": "G"}, "reliability", "source reliability"),
    case("citations", {"credibility": 7}, "credibility", "citation credibility"),
    case("citations", {"target_type": "place"}, "target_type", "citation target_type"),
    case("places", {"precision": "street"}, "precision", "place precision"),
    case(
        "events",
        lambda f: {"actors": [{"actor_id": f.actor(), "role": "boss"}]},
        "actors",
        "event actor role",
    ),
    case(
        "operations",
        lambda f: {"actors": [{"actor_id": f.actor(), "role": "perpetrator"}]},
        "actors",
        "operation actor role from events",
    ),
    case(
        "events",
        lambda f: {"actors": [{"actor_id": f.actor()}]},
        "actors",
        "event actor without role",
    ),
    case("events", {"actors": {"actor_id": 1, "role": "target"}}, "actors", "actors not a list"),
    # Dates.
    case("events", {"start_date": "13/07/2015"}, "start_date", "day first date"),
    case("events", {"start_date": "2015-7-13"}, "start_date", "unpadded date"),
    case("events", {"start_date": "2015-02-30"}, "start_date", "impossible date"),
    case("events", {"end_date": "2015-13"}, "end_date", "impossible month"),
    case("events", {"start_date": "2015-07-13T10:00:00"}, "start_date", "a time"),
    case("events", {"start_date": 2015}, "start_date", "a number"),
    case("operations", {"start_date": "julio 2015"}, "start_date", "words"),
    case("sources", {"published_at": "2015-07"}, "published_at", "partial published_at"),
    case("sources", {"accessed_at": "ayer"}, "accessed_at", "accessed_at"),
    case(
        "events",
        {"start_date": "2015-07-13", "end_date": "2015-07-01"},
        "end_date",
        "event ends before it starts",
    ),
    case(
        "operations",
        {"start_date": "2015-07-13", "end_date": "2014-12-31"},
        "end_date",
        "operation ends before it starts",
    ),
    case(
        "events",
        {"start_date": "2015-07", "date_precision": "day"},
        "date_precision",
        "day precision for a month",
    ),
    case(
        "operations",
        {"start_date": "2015", "date_precision": "month"},
        "date_precision",
        "month precision for a year",
    ),
    # Places.
    case("places", {"latitude": 90.5, "longitude": 0}, "latitude", "latitude above 90"),
    case("places", {"latitude": -91, "longitude": 0}, "latitude", "latitude below -90"),
    case("places", {"latitude": 0, "longitude": 180.01}, "longitude", "longitude above 180"),
    case("places", {"latitude": 0, "longitude": -181}, "longitude", "longitude below -180"),
    case("places", {"latitude": "norte", "longitude": 0}, "latitude", "latitude not a number"),
    case("places", {"latitude": 10.5}, "longitude", "latitude without longitude"),
    case("places", {"country": "Venezuela"}, "country", "country not ISO"),
    case("places", {"country": "ve"}, "country", "country lower case"),
    # Numbers.
    case("casualty-counts", {"count": -1}, "count", "negative count"),
    case("casualty-counts", {"count": MAX_INTEGER + 1}, "count", "count above 32 bits"),
    case("casualty-counts", {"count": 2.5}, "count", "fractional count"),
    case("casualty-counts", {"count": "15"}, "count", "count as text"),
    case("casualty-counts", {"count": True}, "count", "count as boolean"),
    case("casualty-counts", {"count": None}, "count", "null count"),
    case("events", {"agents_deployed": -250}, "agents_deployed", "negative agents"),
    case(
        "operations",
        {"arrests_claimed": MAX_INTEGER + 1},
        "arrests_claimed",
        "arrests above 32 bits",
    ),
    case("victims", {"age": -1}, "age", "negative age"),
    case("victims", {"age": 131}, "age", "age above 130"),
    case("victims", {"event_id": 0}, "event_id", "id zero"),
    case("victims", {"event_id": "1"}, "event_id", "id as text"),
    case("events", {"operation_id": MAX_INTEGER + 1}, "operation_id", "id above 32 bits"),
    # Text.
    case("events", {"title": "x" * 501}, "title", "title too long"),
    case("events", {"title": ["a"]}, "title", "title not text"),
    case("sources", {"url": "javascript:alert(1)"}, "url", "url scheme"),
    case("sources", {"url": "not a url"}, "url", "url"),
    case("sources", {"language": "Spanish"}, "language", "language tag"),
    case("sources", {"restricted": "maybe"}, "restricted", "restricted not boolean"),
    case("operations", {"aliases": "OLP"}, "aliases", "aliases not a list"),
    # References to records that do not exist.
    case("events", {"operation_id": MISSING}, "operation_id", "missing operation"),
    case("events", {"place_id": MISSING}, "place_id", "missing place"),
    case(
        "events",
        {"actors": [{"actor_id": MISSING, "role": "perpetrator"}]},
        "actors",
        "missing actor of an event",
    ),
    case(
        "operations",
        {"actors": [{"actor_id": MISSING, "role": "lead"}]},
        "actors",
        "missing actor of an operation",
    ),
    case("actors", {"parent_id": MISSING}, "parent_id", "missing parent"),
    case("victims", {"event_id": MISSING}, "event_id", "missing event of a victim"),
    case("victims", {"actor_id": MISSING}, "actor_id", "missing actor of a victim"),
    case(
        "victims",
        {"responsible_actor_id": MISSING},
        "responsible_actor_id",
        "missing responsible actor",
    ),
    case("casualty-counts", {"event_id": MISSING}, "event_id", "missing event of a count"),
    case("casualty-counts", {"source_id": MISSING}, "source_id", "missing source of a count"),
    case("citations", {"source_id": MISSING}, "source_id", "missing source of a citation"),
    case("citations", {"target_id": MISSING}, "target_id", "missing target event"),
    *(
        case(
            "citations",
            {"target_type": target_type, "target_id": MISSING},
            "target_id",
            f"missing target {target_type}",
        )
        for target_type in ("operation", "victim", "casualty_count")
    ),
    case("citations", {"field": "colour"}, "field", "citation of a field the event lacks"),
    case("citations", {"field": "id"}, "field", "citation of the id"),
    # Events verified or published on create, without a citation.
    case("events", {"status": "verified"}, "status", "created verified"),
    case("events", {"status": "verified", "published": True}, "status", "created published"),
]


@pytest.mark.parametrize("resource, change, field", CREATE_CASES)
def test_a_bad_create_is_refused_naming_the_field(
    client, factory, auth, db_rows, resource, change, field
):
    payload = factory.payload(resource)
    if callable(change):
        change = change(factory)
    for name, value in change.items():
        if value is DROP:
            del payload[name]
        else:
            payload[name] = value
    before = db_rows()
    response = client.post(f"{API}/{resource}", json=payload, headers=auth("editor"))
    assert field in error_fields(response)
    assert field in response.json["error"]["message"]
    assert db_rows() == before


@pytest.mark.parametrize("resource", MINIMAL)
def test_the_valid_payloads_are_accepted(client, factory, auth, resource):
    """So that each case above fails for its own change, not for a broken base."""
    response = client.post(
        f"{API}/{resource}", json=factory.payload(resource), headers=auth("editor")
    )
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(
    "resource, payload",
    [
        ("casualty-counts", {"count": MAX_INTEGER}),
        ("casualty-counts", {"count": 0}),
        ("places", {"latitude": -90, "longitude": 180}),
        ("victims", {"age": 0}),
        ("victims", {"age": 130}),
        ("events", {"start_date": "2015-07-13", "end_date": "2015-07-13"}),
    ],
)
def test_the_limits_themselves_are_accepted(client, factory, auth, resource, payload):
    response = client.post(
        f"{API}/{resource}", json={**factory.payload(resource), **payload}, headers=auth("editor")
    )
    assert response.status_code == 201, response.json
    assert response.json.items() >= payload.items()


def test_every_bad_field_is_named_at_once(client, auth, db_rows):
    before = db_rows()
    response = client.post(
        f"{API}/events",
        json={"event_type": "massacre", "start_date": "ayer", "agents_deployed": -1, "x": 1},
        headers=auth("editor"),
    )
    assert set(error_fields(response)) == {
        "title",
        "event_type",
        "start_date",
        "agents_deployed",
        "x",
    }
    assert db_rows() == before


def test_the_error_explains_the_date_order(client, auth):
    response = client.post(
        f"{API}/events",
        json={
            "title": "Evento",
            "event_type": "raid",
            "start_date": "2015-07-13",
            "end_date": "2015-07-01",
        },
        headers=auth("editor"),
    )
    assert response.json == {
        "error": {
            "status": 422,
            "message": "The request has invalid fields: end_date.",
            "fields": {"end_date": ["end_date 2015-07-01 is before start_date 2015-07-13."]},
        }
    }


# --- References to deleted records -----------------------------------------------------------


RESOURCE_OF = {
    "operation_id": "operations",
    "place_id": "places",
    "event_id": "events",
    "source_id": "sources",
    "parent_id": "actors",
    "target_id": "events",
}


@pytest.mark.parametrize(
    "resource, field, make",
    [
        ("events", "operation_id", lambda f: f.operation()),
        ("events", "place_id", lambda f: f.place()),
        ("victims", "event_id", lambda f: f.event()),
        ("casualty-counts", "source_id", lambda f: f.source()),
        ("citations", "source_id", lambda f: f.source()),
        ("citations", "target_id", lambda f: f.event()),
        ("actors", "parent_id", lambda f: f.actor()),
    ],
)
def test_a_reference_to_a_deleted_record_is_refused(
    client, factory, auth, db_rows, resource, field, make
):
    target = make(factory)
    factory.delete(RESOURCE_OF[field], target)
    payload = {**factory.payload(resource), field: target}
    before = db_rows()
    response = client.post(f"{API}/{resource}", json=payload, headers=auth("editor"))
    assert field in error_fields(response)
    assert db_rows() == before


# --- Verifying and publishing need a citation ------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"status": "verified"}, "status"),
        ({"status": "verified", "published": True}, "status"),
        ({"published": True}, "published"),
    ],
)
def test_an_event_without_a_citation_cannot_be_verified_or_published(
    client, factory, auth, db_rows, change, field
):
    event = factory.event(status="in_review")
    before = db_rows()
    response = client.patch(f"{API}/events/{event}", json=change, headers=auth("editor"))
    fields = error_fields(response, 422)
    assert list(fields) == [field]
    assert "citation" in fields[field][0]
    assert db_rows() == before


def test_a_deleted_citation_does_not_count(client, factory, auth, db_rows):
    event = factory.event(status="in_review")
    citation = factory.citation(factory.source(), "event", event)
    factory.delete("citations", citation)
    before = db_rows()
    response = client.patch(
        f"{API}/events/{event}", json={"status": "verified"}, headers=auth("editor")
    )
    assert "status" in error_fields(response, 422)
    assert db_rows() == before


def test_a_citation_of_something_else_does_not_count(client, factory, auth, db_rows):
    event = factory.event(status="in_review")
    factory.citation(factory.source(), "victim", factory.victim(event))
    before = db_rows()
    response = client.patch(
        f"{API}/events/{event}", json={"status": "verified"}, headers=auth("editor")
    )
    assert "status" in error_fields(response, 422)
    assert db_rows() == before


def test_only_a_verified_event_can_be_published(client, factory, auth, db_rows):
    event = factory.event(status="in_review")
    factory.citation(factory.source(), "event", event)
    before = db_rows()
    response = client.patch(
        f"{API}/events/{event}", json={"published": True}, headers=auth("editor")
    )
    assert error_fields(response, 422) == {"published": ["Only a verified event can be published."]}
    assert db_rows() == before


def test_a_published_event_must_stay_verified(client, factory, auth, db_rows):
    event = factory.published_event()
    before = db_rows()
    response = client.patch(
        f"{API}/events/{event}", json={"status": "in_review"}, headers=auth("editor")
    )
    assert "status" in error_fields(response, 422)
    assert db_rows() == before


# --- A bad change to an existing record leaves it as it was -----------------------------------


def _existing(factory, resource):
    ids = {
        "actors": lambda: factory.actor(),
        "operations": lambda: factory.operation(start_date=JULY_13),
        "places": lambda: factory.place(),
        "events": lambda: factory.event(start_date=JULY_13),
        "victims": lambda: factory.victim(factory.event()),
        "casualty-counts": lambda: factory.casualty_count(factory.event(), factory.source()),
        "sources": lambda: factory.source(),
        "citations": lambda: factory.citation(factory.source(), "event", factory.event()),
    }
    return ids[resource]()


@pytest.mark.parametrize(
    "resource, change, field",
    [
        case("events", {"event_type": "massacre"}, "event_type", "event type"),
        case("events", {"title": None}, "title", "null title"),
        case("events", {"colour": "red"}, "colour", "unknown field"),
        case("events", {"end_date": "2015-07-01"}, "end_date", "end before the stored start"),
        case("events", {"start_date": "2015-08-01", "end_date": "2015-07-01"}, "end_date", "both"),
        case("events", {"operation_id": MISSING}, "operation_id", "missing operation"),
        case("events", {"status": "verified"}, "status", "verified without citation"),
        case("operations", {"end_date": "2015-01-01"}, "end_date", "operation end"),
        case("operations", {"agents_deployed": -1}, "agents_deployed", "negative agents"),
        case("places", {"latitude": 10.5}, "longitude", "latitude alone"),
        case("places", {"longitude": 200, "latitude": 0}, "longitude", "longitude range"),
        case("actors", {"kind": "police"}, "kind", "actor kind"),
        case("actors", {"name": None}, "name", "null name"),
        case("victims", {"outcome": "dead"}, "outcome", "victim outcome"),
        case("victims", {"event_id": MISSING}, "event_id", "victim moved to a missing event"),
        case("casualty-counts", {"count": -3}, "count", "negative count"),
        case("casualty-counts", {"count": MAX_INTEGER + 1}, "count", "count too large"),
        case("sources", {"kind": "blog"}, "kind", "source kind"),
        case("citations", {"target_type": "victim"}, "target_id", "target_type alone"),
        case("citations", {"target_id": MISSING}, "target_type", "target_id alone"),
        case(
            "citations",
            {"target_type": "victim", "target_id": MISSING},
            "target_id",
            "retarget to a missing victim",
        ),
        case("citations", {"field": "colour"}, "field", "field the target lacks"),
        case("citations", {"source_id": MISSING}, "source_id", "missing source"),
    ],
)
def test_a_bad_change_leaves_the_record_unchanged(
    client, factory, auth, db_rows, resource, change, field
):
    record = _existing(factory, resource)
    path = f"{API}/{resource}/{record}"
    shown = client.get(path, headers=auth("viewer")).json
    before = db_rows()
    response = client.patch(path, json=change, headers=auth("editor"))
    assert field in error_fields(response)
    assert db_rows() == before
    assert client.get(path, headers=auth("viewer")).json == shown


def test_an_actor_cannot_become_its_own_ancestor(client, factory, auth, db_rows):
    force = factory.actor(name="GNB")
    unit = factory.actor(name="Destacamento", parent_id=force)
    before = db_rows()
    for record, parent in ((force, unit), (force, force)):
        response = client.patch(
            f"{API}/actors/{record}", json={"parent_id": parent}, headers=auth("editor")
        )
        assert "parent_id" in error_fields(response)
    assert db_rows() == before


def test_retargeting_a_citation_to_a_field_the_new_target_lacks(client, factory, auth, db_rows):
    event = factory.event()
    citation = factory.citation(factory.source(), "event", event, field="agents_deployed")
    victim = factory.victim(event)
    before = db_rows()
    response = client.patch(
        f"{API}/citations/{citation}",
        json={"target_type": "victim", "target_id": victim},
        headers=auth("editor"),
    )
    assert "field" in error_fields(response)
    assert db_rows() == before


def test_a_bad_change_to_a_missing_record_is_not_found(client, auth, db_rows):
    before = db_rows()
    response = client.patch(f"{API}/events/{MISSING}", json={"title": "x"}, headers=auth("editor"))
    error_fields(response, 404)
    assert db_rows() == before


# --- Bodies that are not a JSON object -------------------------------------------------------


BAD_BODIES = [
    pytest.param(b'{"title": "Evento", "event_type": "raid"', id="cut short"),
    pytest.param(b"{'title': 'Evento'}", id="single quotes"),
    pytest.param(b'{"title": "Evento",}', id="trailing comma"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\xff\xfe{}", id="not utf-8"),
    pytest.param(b"title=Evento&event_type=raid", id="form data"),
]
NOT_OBJECTS = [
    pytest.param(b"[]", id="list"),
    pytest.param(b'[{"title": "Evento", "event_type": "raid"}]', id="list of objects"),
    pytest.param(b'"Evento"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"true", id="boolean"),
]


@pytest.mark.parametrize("method", ["post", "patch"])
@pytest.mark.parametrize("body", BAD_BODIES + NOT_OBJECTS)
def test_a_body_that_is_not_a_json_object_is_a_bad_request(
    client, factory, auth, db_rows, method, body
):
    event = factory.event()
    path = f"{API}/events" if method == "post" else f"{API}/events/{event}"
    before = db_rows()
    response = getattr(client, method)(
        path, data=body, content_type="application/json", headers=auth("editor")
    )
    assert error_fields(response, 400) == {}
    assert db_rows() == before


def test_the_two_bad_bodies_are_told_apart(client, auth):
    malformed = client.post(
        f"{API}/events", data=b"{", content_type="application/json", headers=auth("editor")
    )
    assert malformed.json["error"]["message"] == "The request body is not valid JSON."
    listed = client.post(
        f"{API}/events", data=b"[]", content_type="application/json", headers=auth("editor")
    )
    assert listed.json["error"]["message"] == "The request body must be a JSON object."


# --- Bad query strings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource, query, param",
    [
        ("events", "per_page=abc", "per_page"),
        ("events", "per_page=0", "per_page"),
        ("events", "per_page=-5", "per_page"),
        ("events", "per_page=2.5", "per_page"),
        ("events", "page=0", "page"),
        ("events", "page=uno", "page"),
        ("events", "date_from=nope", "date_from"),
        ("events", "date_to=2015-13-01", "date_to"),
        ("events", "date_from=2015-07", "date_from"),
        ("events", "status=approved", "status"),
        ("events", "event_type=massacre", "event_type"),
        ("events", "published=maybe", "published"),
        ("events", "operation_id=abc", "operation_id"),
        ("events", "actor_id=-1", "actor_id"),
        ("events", "place_id=", "place_id"),
        ("events", "sort=colour", "sort"),
        ("events", "sort=-start_date,", "sort"),
        ("events", "sort=internal_notes", "sort"),
        ("events", "colour=red", "colour"),
        ("events", "event_id=1", "event_id"),
        ("victims", "affiliation=soldier", "affiliation"),
        ("victims", "outcome=dead", "outcome"),
        ("victims", "event_id=uno", "event_id"),
        ("casualty-counts", "affiliation=Civilian", "affiliation"),
        ("casualty-counts", "outcome=wounded", "outcome"),
        ("casualty-counts", "event_id=1.0", "event_id"),
        ("citations", "target_type=place", "target_type"),
        ("citations", "target_id=x", "target_id"),
        ("citations", "source_id=", "source_id"),
        # Ids are per kind of record: event 5 and victim 5 are different records.
        ("citations", "target_id=5", "target_id"),
        # Half-reading a repeated parameter would answer a question nobody asked.
        ("events", "status=draft&status=verified", "status"),
        ("events", "page=1&page=2", "page"),
        ("victims", "event_id=1&event_id=2", "event_id"),
        ("sources", "restricted=sometimes", "restricted"),
        ("actors", "kind=police", "kind"),
        ("places", "precision=street", "precision"),
    ],
)
def test_a_bad_query_string_is_refused_naming_the_parameter(
    client, factory, auth, db_rows, resource, query, param
):
    factory.event()
    before = db_rows()
    response = client.get(f"{API}/{resource}?{query}", headers=auth("viewer"))
    assert param in error_fields(response)
    assert param in response.json["error"]["message"]
    assert db_rows() == before


def test_every_bad_parameter_is_named_at_once(client, auth):
    response = client.get(
        f"{API}/events?date_from=nope&status=approved&colour=red", headers=auth("viewer")
    )
    assert set(error_fields(response)) == {"date_from", "status", "colour"}
