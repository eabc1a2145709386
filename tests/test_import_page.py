"""The import page (/import): upload, the mapping as editable JSON, the dry run's report, the
confirmed import, presets, and who may use it — all through the Flask test client."""

from __future__ import annotations

import hashlib
import html
import io
import json
import re

import pytest
from sqlalchemy import func, select

from archive.extensions import db
from archive.models import AuditEntry, CasualtyCount, Citation, Event, ImportPreset, Source

from .test_imports import CLASH_MAPPING, CLASHES, csv_bytes, xlsx_bytes
from .web_helpers import csrf_token, text

# Row 3 holds a date no format reads, row 4 a count that is a spreadsheet error.
WITH_ERRORS = [
    *CLASHES,
    ["31/31/2015", "Sinaloa", "Culiacán", "raid", "2", "0"],
    ["15/07/2015", "Sonora", "Nogales", "raid", "#VALUE!", "0"],
]


def count(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def upload(client, data: bytes, name: str = "casos.csv", **fields):
    return client.post(
        "/import",
        data={
            "file": (io.BytesIO(data), name),
            "csrf_token": csrf_token(client, "/import"),
            **fields,
        },
        content_type="multipart/form-data",
    )


def staged(client, data: bytes, name: str = "casos.csv") -> str:
    """Upload the file; answer the address of its mapping page."""
    response = upload(client, data, name)
    assert response.status_code == 302, text(response)[:2000]
    return response.headers["Location"]


def textarea(page: str) -> str:
    found = re.search(r'<textarea[^>]*id="mapping"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page[:3000]
    return html.unescape(found.group(1))


def check(client, page_url: str, mapping: dict | str, **fields):
    body = mapping if isinstance(mapping, str) else json.dumps(mapping)
    return client.post(
        page_url + "/check?lang=en",
        data={"mapping": body, "csrf_token": csrf_token(client, page_url), **fields},
    )


def confirm(client, page_url: str, mapping: dict, **fields):
    return client.post(
        page_url + "/run",
        data={
            "mapping": json.dumps(mapping),
            "on_duplicate": "skip",
            "csrf_token": csrf_token(client, page_url),
            **fields,
        },
    )


def table_rows(page: str, table_id: str) -> list[list[str]]:
    found = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, re.S)
    assert found, f"no table {table_id}"
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)
    ]


# --- Who may use it --------------------------------------------------------------------------


def test_anonymous_readers_are_sent_to_sign_in(client):
    response = client.get("/import")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_viewers_may_not_open_the_page(browser_for):
    response = browser_for("viewer").get("/import?lang=en")

    assert response.status_code == 403


def test_viewers_may_not_upload(browser_for, app):
    viewer = browser_for("viewer")
    token = csrf_token(viewer, "/")

    response = viewer.post(
        "/import",
        data={"file": (io.BytesIO(csv_bytes(CLASHES)), "casos.csv"), "csrf_token": token},
        content_type="multipart/form-data",
    )

    assert response.status_code == 403
    assert _staging_files(app) == []


def _staging_files(app) -> list:
    import pathlib

    root = pathlib.Path(app.config["FILES_DIR"]) / ".imports"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("role", ["researcher", "editor", "admin"])
def test_staff_who_may_write_open_the_page(browser_for, role):
    response = browser_for(role).get("/import?lang=en")

    assert response.status_code == 200
    assert 'type="file"' in text(response)


def test_the_menu_offers_import_to_researchers_and_not_to_viewers(browser_for):
    assert 'href="/import"' in text(browser_for("researcher").get("/"))
    assert 'href="/import"' not in text(browser_for("viewer").get("/"))


def test_an_upload_without_a_csrf_token_is_refused(browser_for, app):
    researcher = browser_for("researcher")

    response = researcher.post(
        "/import",
        data={"file": (io.BytesIO(csv_bytes(CLASHES)), "casos.csv"), "csrf_token": "x"},
        content_type="multipart/form-data",
    )

    assert response.status_code == 400
    assert _staging_files(app) == []


def test_a_confirmed_import_without_a_csrf_token_writes_nothing(browser_for, app):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))

    response = researcher.post(
        page_url + "/run", data={"mapping": json.dumps(CLASH_MAPPING), "csrf_token": "x"}
    )

    assert response.status_code == 400
    assert count(app, Event) == 0


# --- Upload and mapping ----------------------------------------------------------------------


def test_an_upload_is_kept_by_its_sha256_and_shows_the_detected_mapping(browser_for):
    researcher = browser_for("researcher")
    data = csv_bytes(CLASHES)

    page_url = staged(researcher, data)
    page = text(researcher.get(page_url))

    assert page_url.endswith("/import/" + hashlib.sha256(data).hexdigest())
    mapping = json.loads(textarea(page))
    assert mapping["columns"]["Fecha"] == "event.start_date"
    assert mapping["columns"]["Municipio"] == "place.admin2"
    assert mapping["date_formats"] == {"Fecha": "%d/%m/%Y"}


def test_an_xlsx_upload_shows_its_mapping(browser_for):
    researcher = browser_for("researcher")

    page = text(researcher.get(staged(researcher, xlsx_bytes(CLASHES), "casos.xlsx")))

    assert json.loads(textarea(page))["columns"]["Estado"] == "place.admin1"


def test_a_file_that_is_no_table_is_refused_with_its_reason(browser_for):
    researcher = browser_for("researcher")

    page_url = staged(researcher, b"\x00\x01\x02 not a table", "casos.xlsx")
    response = researcher.get(page_url + "?lang=en")

    assert response.status_code == 422
    assert 'id="file"' in text(response)


def test_an_unknown_upload_is_not_found(browser_for):
    response = browser_for("researcher").get("/import/" + "0" * 64 + "?lang=en")

    assert response.status_code == 404
    assert "upload the file again" in text(response)


# --- Dry run ---------------------------------------------------------------------------------


def test_the_dry_run_reports_counts_and_writes_nothing(browser_for, app):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))

    response = check(researcher, page_url, CLASH_MAPPING)

    assert response.status_code == 200
    page = text(response)
    counts = {row[0]: row[1:] for row in table_rows(page, "import-counts")}
    assert counts["Events"] == ["2", "0", "0", "0"]
    # Two counts per row: civilians and soldiers killed.
    assert counts["Casualty figures"] == ["4", "0", "0", "0"]
    assert dict(table_rows(page, "import-rows"))["Read"] == "2"
    assert 'id="confirm-form"' in page
    assert count(app, Event) == 0
    assert count(app, Source) == 0


def test_the_dry_run_lists_each_error_by_row_and_column(browser_for, app):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(WITH_ERRORS))

    response = check(researcher, page_url, CLASH_MAPPING)

    assert response.status_code == 422
    page = text(response)
    errors = table_rows(page, "import-errors")
    assert [(row, column) for row, column, _ in errors] == [
        ("4", "Fecha"),
        ("5", "Civiles muertos"),
    ]
    assert all(reason for _, _, reason in errors)
    assert dict(table_rows(page, "import-rows"))["With errors"] == "2"
    assert 'id="confirm-form"' not in page
    assert count(app, Event) == 0


def test_a_mapping_that_is_not_json_is_refused_with_where(browser_for):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))

    response = check(researcher, page_url, '{"rows": "event",}')

    assert response.status_code == 422
    page = text(response)
    assert "<code>mapping</code>: Not valid JSON" in page
    assert "line 1, column 18" in page
    # What was typed comes back to be corrected.
    assert textarea(page) == '{"rows": "event",}'


def test_a_bad_mapping_names_the_key_at_fault(browser_for, app):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))
    bad = {**CLASH_MAPPING, "columns": {**CLASH_MAPPING["columns"], "Fecha": "event.nonsense"}}

    response = check(researcher, page_url, bad)

    assert response.status_code == 422
    assert "<code>columns.Fecha</code>" in text(response)
    assert count(app, Event) == 0


def test_a_mapping_naming_a_header_the_file_lacks_names_it(browser_for):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))
    bad = {**CLASH_MAPPING, "skip": [{"column": "Totales", "pattern": "^TOTAL"}]}

    response = check(researcher, page_url, bad)

    assert response.status_code == 422
    assert "<code>skip" in text(response)


# --- Import ----------------------------------------------------------------------------------


def test_confirming_imports_drafts_citing_the_stored_file(browser_for, app):
    researcher = browser_for("researcher")
    data = csv_bytes(CLASHES)
    page_url = staged(researcher, data)

    response = confirm(researcher, page_url, CLASH_MAPPING)

    assert response.status_code == 200, text(response)[:3000]
    with app.app_context():
        [source] = db.session.scalars(select(Source)).all()
        assert source.kind == "dataset"
        assert [f.sha256 for f in source.files] == [hashlib.sha256(data).hexdigest()]
        found = db.session.scalars(select(Event).order_by(Event.start_date)).all()
        assert [(e.title, e.status) for e in found] == [
            ("Enfrentamiento en Monterrey", "draft"),
            ("Enfrentamiento en Reynosa", "draft"),
        ]
        locators = {
            c.event_id: c.locator
            for c in db.session.scalars(
                select(Citation).where(
                    Citation.source_id == source.id, Citation.event_id.is_not(None)
                )
            )
        }
        assert locators == {found[0].id: "row 2", found[1].id: "row 3"}
        assert sorted(c.count for c in db.session.scalars(select(CasualtyCount))) == [0, 1, 3, 5042]
    assert f'href="/sources/{source.id}"' in text(response)


def test_the_import_is_one_audited_action(browser_for, app):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))

    confirm(researcher, page_url, CLASH_MAPPING)

    assert count(app, AuditEntry, AuditEntry.action == "import") == 1


def test_a_file_with_errors_is_not_imported_even_when_confirmed(browser_for, app):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(WITH_ERRORS))

    response = confirm(researcher, page_url, CLASH_MAPPING)

    assert response.status_code == 422
    assert len(table_rows(text(response), "import-errors")) == 2
    assert count(app, Event) == 0
    assert count(app, Source) == 0


def test_importing_the_same_file_again_creates_nothing(browser_for, app):
    researcher = browser_for("researcher")
    data = csv_bytes(CLASHES)
    confirm(researcher, staged(researcher, data), CLASH_MAPPING)

    response = check(researcher, staged(researcher, data), CLASH_MAPPING)

    counts = {row[0]: row[1:] for row in table_rows(text(response), "import-counts")}
    assert counts["Events"][0] == "0"
    assert count(app, Event) == 2


# --- Presets ---------------------------------------------------------------------------------


def test_a_dry_run_can_save_the_mapping_as_a_preset(browser_for, app):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))

    check(researcher, page_url, CLASH_MAPPING, save_preset="Enfrentamientos")

    with app.app_context():
        [preset] = db.session.scalars(select(ImportPreset)).all()
        assert (preset.name, preset.mapping) == ("Enfrentamientos", CLASH_MAPPING)


def test_a_saved_preset_fills_the_mapping(browser_for):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))
    check(researcher, page_url, CLASH_MAPPING, save_preset="Enfrentamientos")

    page = text(researcher.get(page_url + "?preset=Enfrentamientos"))

    assert json.loads(textarea(page)) == CLASH_MAPPING


# --- Progress --------------------------------------------------------------------------------


def test_the_status_of_an_upload_with_nothing_running_is_idle(browser_for):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))

    response = researcher.get(page_url + "/status")

    assert response.get_json() == {"stage": None, "done": 0, "total": 0}


def test_viewers_may_not_read_the_status(browser_for):
    assert browser_for("viewer").get("/import/" + "0" * 64 + "/status").status_code == 403


def test_the_page_loads_its_progress_script_from_the_archive(browser_for):
    researcher = browser_for("researcher")
    page = text(researcher.get(staged(researcher, csv_bytes(CLASHES))))

    assert '<script src="/static/js/import.js"></script>' in page
    assert 'data-status-url="' in page


def test_the_status_reads_the_progress_an_import_writes(browser_for, app):
    from archive.web.import_pages import ProgressFile, staging

    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(CLASHES))
    sha256 = page_url.rsplit("/", 1)[1]
    with app.test_request_context():
        progress = ProgressFile(staging().path(sha256) + ".progress")
    progress("importing", 2, 2)

    response = researcher.get(page_url + "/status")

    assert response.get_json() == {"stage": "importing", "done": 2, "total": 2}


# --- Languages -------------------------------------------------------------------------------


def test_the_page_speaks_spanish(browser_for):
    page = text(browser_for("researcher").get("/import?lang=es"))

    assert "Importar una hoja de cálculo" in page
    assert "Subir y leer las columnas" in page


def test_the_page_speaks_english(browser_for):
    page = text(browser_for("researcher").get("/import?lang=en"))

    assert "Import a spreadsheet" in page
    assert "Upload and read the columns" in page


def test_uploads_left_unimported_for_days_are_dropped(browser_for):
    import os
    import time

    researcher = browser_for("researcher")
    old_url = staged(researcher, csv_bytes(CLASHES))
    assert researcher.get(old_url).status_code == 200
    four_days_ago = time.time() - 4 * 24 * 3600
    for path in _staging_files(researcher.application):
        os.utime(path, (four_days_ago, four_days_ago))

    staged(researcher, csv_bytes(WITH_ERRORS))

    assert researcher.get(old_url).status_code == 404


def test_the_reports_errors_and_notes_are_in_the_readers_language(browser_for):
    researcher = browser_for("researcher")
    page_url = staged(researcher, csv_bytes(WITH_ERRORS))

    def report(lang: str) -> tuple[list, list]:
        response = researcher.post(
            f"{page_url}/check?lang={lang}",
            data={
                "mapping": json.dumps(CLASH_MAPPING),
                "csrf_token": csrf_token(researcher, page_url),
            },
        )
        assert response.status_code == 422
        page = text(response)
        return table_rows(page, "import-errors"), table_rows(page, "import-notes")

    (es_errors, es_notes), (en_errors, en_notes) = report("es"), report("en")

    assert [reason for *_, reason in en_errors] == [
        "'31/31/2015' is no date: month must be in 1..12.",
        "The cell holds the spreadsheet error #VALUE!.",
    ]
    assert [reason for *_, reason in es_errors] == [
        "'31/31/2015' no es una fecha: el mes debe estar entre 1 y 12.",
        "La celda tiene el error de hoja de cálculo #VALUE!.",
    ]
    assert [where for *where, _ in es_errors] == [where for *where, _ in en_errors]
    assert len(es_notes) == len(en_notes) > 0
    assert en_notes[0][2] == (
        "'Monterrey, Nuevo León, MX' matches no place in the archive (ignoring case and "
        "accents): it will be added as written."
    )
    assert es_notes[0][2] == (
        "'Monterrey, Nuevo León, MX' no coincide con ningún lugar del archivo (sin distinguir "
        "mayúsculas ni acentos): se añadirá tal como está escrito."
    )
