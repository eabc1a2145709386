"""The API writes JSON in UTF-8 as it is ("Operación"), escaping only <, > and &.

Needs `app.json.ensure_ascii = False` beside `app.json.sort_keys = False` in create_app.
"""

from __future__ import annotations


def test_accented_letters_are_written_as_they_are_and_markup_still_escaped(client, auth):
    response = client.post(
        "/api/v1/operations",
        json={"name": "Operación <Liberación> & Protección"},
        headers=auth("editor"),
    )
    assert response.status_code == 201
    assert response.content_type == "application/json"
    body = response.get_data()
    assert "Operación \\u003cLiberación\\u003e \\u0026 Protección".encode() in body
    assert b"\\u00f3" not in body
    assert response.json["name"] == "Operación <Liberación> & Protección"
