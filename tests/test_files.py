"""Source files: upload into the content-addressed store, download, size limit, tampering."""

from __future__ import annotations

import hashlib
import io
import os
import re

import pytest
from marshmallow import ValidationError

from archive import create_app
from archive.extensions import db
from archive.provenance import FileStore

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
LIMIT = 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(client, headers, source_id, data, filename="report.pdf", content_type=None):
    return client.post(
        f"/api/v1/sources/{source_id}/files",
        data={"file": (io.BytesIO(data), filename, content_type)},
        headers=headers,
        content_type="multipart/form-data",
    )


def stored_files(app) -> list[str]:
    """Every file under FILES_DIR, temporary uploads included, relative to it."""
    root = app.config["FILES_DIR"]
    return sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
    )


def tamper(app, digest: str, data: bytes) -> None:
    """Overwrite a stored file's bytes in place, as an intruder with disk access would."""
    path = os.path.join(app.config["FILES_DIR"], digest[:2], digest[2:4], digest)
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def small_app(app):
    """The same database and store, made with a small FILES_MAX_BYTES at create_app time."""
    small = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "FILES_DIR": app.config["FILES_DIR"],
            "SEARCH_INDEX_DIR": app.config["SEARCH_INDEX_DIR"],
            "FILES_MAX_BYTES": LIMIT,
        }
    )
    yield small
    with small.app_context():
        db.engine.dispose()


def test_upload_answers_hash_size_and_sniffed_media_type(client, factory, auth):
    source_id = factory.source()
    response = upload(client, auth("researcher"), source_id, PDF, "scan.bin", "text/plain")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["sha256"] == sha256(PDF)
    assert body["size"] == len(PDF)
    assert body["media_type"] == "application/pdf"  # by its %PDF- header, not the claim
    assert body["original_filename"] == "scan.bin"
    assert response.headers["Location"].endswith(f"/sources/{source_id}/files/{sha256(PDF)}")


def test_media_type_of_unrecognised_bytes_comes_from_the_file_name(client, factory, auth):
    source_id = factory.source()
    data = b"<html><body>snapshot</body></html>"
    body = upload(client, auth("researcher"), source_id, data, "page.html").json
    assert body["media_type"] == "text/html"
    assert body["sha256"] == sha256(data)


def test_uploaded_file_is_listed_on_the_source_and_downloads_unchanged(client, factory, auth):
    source_id = factory.source()
    assert upload(client, auth("researcher"), source_id, PDF).status_code == 201

    files = client.get(f"/api/v1/sources/{source_id}", headers=auth("viewer")).json["files"]
    assert [(f["sha256"], f["size"], f["media_type"]) for f in files] == [
        (sha256(PDF), len(PDF), "application/pdf")
    ]

    url = f"/api/v1/sources/{source_id}/files/{sha256(PDF)}"
    with client.get(url, headers=auth("viewer")) as response:
        assert response.status_code == 200
        assert response.data == PDF
        assert response.mimetype == "application/pdf"
        assert response.headers["X-Content-SHA256"] == sha256(PDF)
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_same_bytes_uploaded_again_are_kept_once(app, client, factory, auth, db_rows):
    source_id, other_id = factory.source(), factory.source()
    assert upload(client, auth("researcher"), source_id, PDF).status_code == 201
    before = db_rows()

    again = upload(client, auth("editor"), source_id, PDF, "copy.pdf")
    assert again.status_code == 200
    assert again.json["sha256"] == sha256(PDF)
    assert db_rows() == before
    files = client.get(f"/api/v1/sources/{source_id}", headers=auth("viewer")).json["files"]
    assert len(files) == 1

    # Another source may archive the same file: a second link, still one copy on disk.
    assert upload(client, auth("researcher"), other_id, PDF).status_code == 201
    assert len(db_rows()["stored_files"]) == 1
    assert len(db_rows()["source_files"]) == 2
    assert stored_files(app) == [os.path.join(sha256(PDF)[:2], sha256(PDF)[2:4], sha256(PDF))]


def test_unknown_file_of_a_source_is_a_404(client, factory, auth):
    source_id = factory.source()
    response = client.get(
        f"/api/v1/sources/{source_id}/files/{sha256(b'never uploaded')}", headers=auth("viewer")
    )
    assert response.status_code == 404
    assert response.json["error"]["status"] == 404


def test_a_file_over_the_limit_is_refused_and_nothing_is_stored(small_app, factory, auth, db_rows):
    client = small_app.test_client()
    source_id = factory.source()
    assert small_app.config["FILES_MAX_BYTES"] == LIMIT
    before = db_rows()

    response = upload(client, auth("researcher"), source_id, b"%PDF-" + b"x" * LIMIT)
    assert response.status_code == 413
    assert response.json["error"]["status"] == 413
    assert str(LIMIT) in response.json["error"]["message"]
    assert db_rows() == before
    assert stored_files(small_app) == []

    at_limit = b"y" * LIMIT
    response = upload(client, auth("researcher"), source_id, at_limit, "exact.txt")
    assert response.status_code == 201
    assert response.json["size"] == LIMIT


def test_a_request_over_the_derived_content_length_is_refused(small_app, factory, auth, db_rows):
    # MAX_CONTENT_LENGTH is the file limit plus room for the multipart envelope.
    limit = small_app.config["MAX_CONTENT_LENGTH"]
    assert limit is not None
    assert LIMIT < limit < 100 * 1024 * 1024
    client = small_app.test_client()
    source_id = factory.source()
    before = db_rows()
    # Encoded here rather than by the test client, which spools large bodies to a temporary
    # file it never closes when the app refuses to read it.
    body = (
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="file"; filename="huge.bin"\r\n\r\n'
        + b"z" * limit
        + b"\r\n--xyz--\r\n"
    )
    response = client.post(
        f"/api/v1/sources/{source_id}/files",
        data=body,
        headers=auth("researcher"),
        content_type="multipart/form-data; boundary=xyz",
    )
    assert response.status_code == 413
    assert response.json["error"]["status"] == 413
    assert db_rows() == before
    assert stored_files(small_app) == []


def test_a_tampered_file_is_not_served(app, client, factory, auth):
    source_id = factory.source()
    digest = upload(client, auth("researcher"), source_id, PDF).json["sha256"]
    tamper(app, digest, PDF.replace(b"Catalog", b"Katalog"))

    response = client.get(f"/api/v1/sources/{source_id}/files/{digest}", headers=auth("admin"))
    assert response.status_code != 200
    assert response.is_json
    assert response.json["error"]["status"] == response.status_code
    assert digest in response.json["error"]["message"]
    assert b"Katalog" not in response.data


def test_a_file_missing_from_the_store_is_not_served(app, client, factory, auth):
    source_id = factory.source()
    digest = upload(client, auth("researcher"), source_id, PDF).json["sha256"]
    os.remove(os.path.join(app.config["FILES_DIR"], digest[:2], digest[2:4], digest))
    response = client.get(f"/api/v1/sources/{source_id}/files/{digest}", headers=auth("admin"))
    assert response.status_code != 200
    assert response.json["error"]["status"] == response.status_code


def test_files_verify_passes_on_an_intact_store_and_names_a_tampered_file(
    app, client, runner, factory, auth
):
    source_id = factory.source()
    good = upload(client, auth("researcher"), source_id, b"intact bytes", "a.txt").json
    bad = upload(client, auth("researcher"), source_id, PDF).json

    result = runner.invoke(args=["files", "verify"])
    assert result.exit_code == 0, result.output
    assert re.search(r"\b2\b", result.output), result.output

    tamper(app, bad["sha256"], b"%PDF-forged")
    result = runner.invoke(args=["files", "verify"])
    assert result.exit_code != 0
    assert bad["sha256"] in result.output
    assert good["sha256"] not in result.output


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 403)])
def test_only_researchers_and_above_upload(client, factory, auth, db_rows, role, status):
    source_id = factory.source()
    before = db_rows()
    response = upload(client, auth(role), source_id, PDF)
    assert response.status_code == status
    assert response.json["error"]["status"] == status
    assert db_rows() == before


def test_upload_without_the_file_field_is_a_422(client, factory, auth, db_rows):
    source_id = factory.source()
    before = db_rows()
    response = client.post(
        f"/api/v1/sources/{source_id}/files",
        data={"document": (io.BytesIO(PDF), "report.pdf")},
        headers=auth("researcher"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "file" in response.json["error"]["fields"]
    assert db_rows() == before


def test_upload_to_a_missing_source_is_a_404_and_stores_nothing(app, client, auth, db_rows):
    before = db_rows()
    response = upload(client, auth("researcher"), 999_999, PDF)
    assert response.status_code == 404
    assert db_rows() == before
    assert stored_files(app) == []


def test_an_upload_refused_after_its_file_was_stored_leaves_no_file(
    app, client, factory, auth, db_rows, monkeypatch
):
    """A request that fails once the bytes are in the store rolls back its rows, and the
    file it stored goes with them: nothing on disk that no row refers to."""
    from archive import sourcefiles

    source_id = factory.source()
    before = db_rows()

    def refused(*args, **kwargs):
        raise ValidationError("refused after storing", "file")

    monkeypatch.setattr(sourcefiles.provenance, "record", refused)
    response = upload(client, auth("researcher"), source_id, PDF)

    assert response.status_code == 422
    assert db_rows() == before
    assert stored_files(app) == []


def test_a_failed_upload_keeps_the_same_file_another_source_committed(
    app, client, factory, auth, monkeypatch
):
    from archive import sourcefiles

    first, second = factory.source(), factory.source()
    assert upload(client, auth("researcher"), first, PDF).status_code == 201

    def refused(*args, **kwargs):
        raise ValidationError("refused after storing", "file")

    monkeypatch.setattr(sourcefiles.provenance, "record", refused)
    assert upload(client, auth("researcher"), second, PDF).status_code == 422
    monkeypatch.undo()

    download = client.get(f"/api/v1/sources/{first}/files/{sha256(PDF)}", headers=auth("viewer"))
    assert download.status_code == 200
    assert download.data == PDF
    download.close()
    assert stored_files(app) == [os.path.join(sha256(PDF)[:2], sha256(PDF)[2:4], sha256(PDF))]


def test_a_file_two_transactions_hold_outlives_the_one_that_rolls_back(tmp_path):
    """Two uncommitted transactions store the same bytes; the first to give up must not
    delete the file the other is about to commit a row for."""
    store = FileStore(str(tmp_path))
    digest, _size, first = store.save(io.BytesIO(PDF), LIMIT, hold=True)
    same, _size, second = store.save(io.BytesIO(PDF), LIMIT, hold=True)
    assert same == digest and first != second

    store.release(first, unreferenced=lambda: True)  # rolled back; no row in the database
    assert os.path.exists(store.path(digest))
    store.release(second)  # committed
    assert os.path.exists(store.path(digest)) and not store.held(digest)

    _digest, _size, third = store.save(io.BytesIO(PDF), LIMIT, hold=True)
    store.release(third, unreferenced=lambda: False)  # rolled back; a committed row needs it
    assert os.path.exists(store.path(digest))
    _digest, _size, fourth = store.save(io.BytesIO(PDF), LIMIT, hold=True)
    store.release(fourth, unreferenced=lambda: True)  # rolled back; nothing needs it
    assert not os.path.exists(store.path(digest))
