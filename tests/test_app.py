"""The app factory, its configuration, and the database settings it applies."""

import pytest
from sqlalchemy import text

from archive import create_app
from archive.extensions import db


def test_refuses_to_start_without_a_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})


def test_settings_come_from_prefixed_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-env")
    monkeypatch.setenv("FLASK_SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path}/env.db")
    monkeypatch.setenv("FLASK_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("FLASK_SEARCH_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("FLASK_FILES_MAX_BYTES", "1024")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/env.db"
    assert app.config["FILES_DIR"] == str(tmp_path / "files")
    assert app.config["SEARCH_INDEX_DIR"] == str(tmp_path / "index")
    assert app.config["FILES_MAX_BYTES"] == 1024


def test_default_database_is_sqlite_in_the_instance_folder(monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY", "x")
    monkeypatch.delenv("FLASK_SQLALCHEMY_DATABASE_URI", raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith(f"sqlite:///{app.instance_path}")


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return  # the pragmas are SQLite's own; PostgreSQL runs the same tests without them
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_times_are_stored_and_read_in_utc(client, factory, auth):
    actor_id = factory.actor()
    body = client.get(f"/api/v1/actors/{actor_id}").json
    assert body["created_at"].endswith("+00:00")


def test_api_index_lists_the_resources(client):
    body = client.get("/api/v1/").json
    assert set(body["resources"]) == {
        "actors",
        "operations",
        "places",
        "events",
        "victims",
        "casualty-counts",
        "sources",
        "citations",
        "context-figures",
    }
    assert body["openapi"] == "/api/v1/openapi.json"


def test_unknown_resource_is_a_json_404(client):
    response = client.get("/api/v1/weapons")
    assert response.status_code == 404
    assert response.json["error"]["status"] == 404


def test_unknown_api_route_is_a_json_404(client):
    response = client.get("/api/v1/events/1/nothing")
    assert response.status_code == 404
    assert response.json["error"]["status"] == 404


def test_front_page_points_at_the_api(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"/api/v1/openapi.json" in response.data
