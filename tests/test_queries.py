"""No request runs one query per row: the query count of a page does not grow with its rows."""

import contextlib

import pytest
from sqlalchemy import event

from archive.extensions import db


@contextlib.contextmanager
def counting_queries(app):
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def fill(factory, n: int) -> None:
    """n published events, each with actors, a victim, a count, and a source with a file."""
    actor_a, actor_b = factory.actor(), factory.actor(kind="non_state_armed")
    operation = factory.operation(actors=[{"actor_id": actor_a, "role": "lead"}])
    for _ in range(n):
        source = factory.source()
        event_id = factory.event(
            place_id=factory.place(),
            operation_id=operation,
            actors=[
                {"actor_id": actor_a, "role": "perpetrator"},
                {"actor_id": actor_b, "role": "target"},
            ],
        )
        factory.victim(event_id, name="Persona", identity_restricted=True)
        factory.casualty_count(event_id, source)
        factory.citation(source, "event", event_id)
        factory.update("events", event_id, status="verified", published=True)


def queries_for(app, client, url, headers) -> int:
    with counting_queries(app) as statements:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.json
    return len(statements)


LISTS = [
    "/api/v1/events",
    "/api/v1/victims",
    "/api/v1/casualty-counts",
    "/api/v1/sources",
    "/api/v1/citations",
    "/api/v1/operations",
    "/api/v1/actors",
    "/api/v1/places",
]


@pytest.mark.parametrize("role", [None, "viewer"])
@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_rows(app, client, factory, auth, url, role):
    fill(factory, 2)
    few = queries_for(app, client, url, auth(role))
    fill(factory, 6)
    many = queries_for(app, client, url, auth(role))
    assert many == few
    assert many <= 5, "BEGIN, token, count, page, one eager load"


@pytest.mark.parametrize("resource", ["events", "sources", "operations"])
def test_detail_query_count_is_small(app, client, factory, auth, resource):
    fill(factory, 3)
    first = client.get(f"/api/v1/{resource}", headers=auth("viewer")).json["items"][0]
    assert queries_for(app, client, f"/api/v1/{resource}/{first['id']}", auth("viewer")) <= 4
