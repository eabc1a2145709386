"""Fuzz the API from its own OpenAPI description: no input may cause a server error, and
every answer must match the description (status code, content type, body schema)."""

import schemathesis
from hypothesis import HealthCheck, given, settings

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
]


def test_api_holds_to_its_description(app, factory):
    factory.published_event()
    headers = {"Authorization": f"Bearer {factory.user_token('editor')}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def holds(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        holds()
