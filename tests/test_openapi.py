"""The OpenAPI description is valid and describes every route of the API."""

import re

from openapi_spec_validator import validate

from archive.resources import RESOURCES


def test_description_is_valid_openapi_3(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    validate(response.json)
    assert response.json["openapi"].startswith("3.")


def test_every_api_route_is_described(app, client):
    spec = client.get("/api/v1/openapi.json").json
    described = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint in ("api.openapi", "api.index"):
            continue
        names = list(RESOURCES) if "<name>" in rule.rule else [None]
        for name in names:
            path = rule.rule.replace("<name>", name or "")
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in described, f"{method} {path} is not described"


def test_schemas_name_the_fields_of_the_contract(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    event = schemas["Event"]["properties"]
    for name in (
        "title",
        "event_type",
        "start_date",
        "end_date",
        "date_precision",
        "place_id",
        "operation_id",
        "actors",
        "agents_deployed",
        "official_account",
        "status",
        "published",
        "internal_notes",
    ):
        assert name in event
    assert set(schemas["Event"]["required"]) == {"title", "event_type"}
    citation = schemas["Citation"]["properties"]
    assert citation["target_type"]["enum"] == ["operation", "event", "victim", "casualty_count"]
