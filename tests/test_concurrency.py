"""Several processes writing at once, as several gunicorn workers would."""

import multiprocessing
import os

import pytest

from archive import create_app, provenance
from archive.extensions import db

WORKERS = 4
WRITES_EACH = 15


def write_events(database_url: str, files_dir: str, token: str, worker: int) -> list[int]:
    """Run in a fresh process: create events through the API and answer the status codes."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "FILES_DIR": files_dir,
            # The test's own (never the instance folder's) search index.
            "SEARCH_INDEX_DIR": os.path.join(os.path.dirname(files_dir), "search"),
        }
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    statuses = []
    for n in range(WRITES_EACH):
        response = client.post(
            "/api/v1/events",
            json={"title": f"Worker {worker} event {n}", "event_type": "raid"},
            headers=headers,
        )
        statuses.append(response.status_code)
        event_id = response.json.get("id")
        if event_id:
            patched = client.patch(
                f"/api/v1/events/{event_id}", json={"status": "in_review"}, headers=headers
            )
            statuses.append(patched.status_code)
    with app.app_context():
        db.engine.dispose()
    return statuses


@pytest.mark.slow
def test_parallel_writers_never_fail_and_keep_the_audit_chain_whole(
    app, client, factory, database_url
):
    token = factory.user_token("researcher")
    context = multiprocessing.get_context("spawn")
    args = [(database_url, app.config["FILES_DIR"], token, w) for w in range(WORKERS)]
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(write_events, args)

    statuses = [s for worker in results for s in worker]
    assert statuses.count(201) == WORKERS * WRITES_EACH
    assert statuses.count(200) == WORKERS * WRITES_EACH
    assert len(statuses) == 2 * WORKERS * WRITES_EACH

    listed = client.get(
        "/api/v1/events?status=in_review", headers={"Authorization": f"Bearer {token}"}
    )
    assert listed.json["total"] == WORKERS * WRITES_EACH
    with app.app_context():
        report = provenance.verify_chain(db.session)
    assert report.ok, report.problem
