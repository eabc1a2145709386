"""Bad input gets a JSON error naming the field, found by fuzzing the OpenAPI description."""

import pytest


def test_a_rule_broken_in_the_service_names_its_field(client, factory, auth):
    source = factory.source()
    response = client.post(
        "/api/v1/citations",
        json={"source_id": source, "target_type": "casualty_count", "target_id": 999999},
        headers=auth("editor"),
    )
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"target_id": ["No casualty count with id 999999."]}


def test_nested_field_errors_are_named_by_field_with_the_path_in_the_message(client, auth):
    response = client.post(
        "/api/v1/events",
        json={"title": "x", "event_type": "raid", "actors": [{"actor_id": 1, "role": "boss"}]},
        headers=auth("editor"),
    )
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {
        "actors": ["0.role: Must be one of: perpetrator, target, present."]
    }


@pytest.mark.parametrize(
    "request_args, status",
    [
        (("get", "/api/v1/events/999999"), 404),
        (("post", "/api/v1/events"), 401),
        (("get", "/api/v1/audit"), 401),
    ],
)
def test_every_error_has_the_same_shape(client, request_args, status):
    method, url = request_args
    response = getattr(client, method)(url, json={})
    assert response.status_code == status
    assert set(response.json["error"]) == {"status", "message", "fields"}
    assert response.json["error"]["fields"] == {}


@pytest.mark.parametrize(
    "url", ["/api/v1/events/99999999999999999999", "/api/v1/sources/3000000000/files/" + "a" * 64]
)
def test_an_id_too_large_for_any_column_is_not_found(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert response.json["error"]["status"] == 404


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"agents_deployed": 2**40}, "agents_deployed"),
        ({"place_id": 2**63}, "place_id"),
        ({"official_account": "a\x00b"}, "official_account"),
    ],
)
def test_values_no_database_can_store_are_rejected(client, auth, db_rows, payload, field):
    before = db_rows()
    response = client.post(
        "/api/v1/events",
        json={"title": "x", "event_type": "raid", **payload},
        headers=auth("editor"),
    )
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert db_rows() == before


@pytest.mark.parametrize(
    "query", ["page=99999999999999999999", "operation_id=99999999999999999999"]
)
def test_huge_numbers_in_the_query_string_are_rejected(client, query):
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 422
    assert query.split("=")[0] in response.json["error"]["fields"]
