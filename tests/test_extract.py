"""Text of uploaded files (plain text, HTML, PDF) kept in SourceFile.extracted_text for search."""

from __future__ import annotations

import hashlib
import io
import logging
import unicodedata

import pytest
from sqlalchemy import select, update

from archive import create_app, extract
from archive.extensions import db
from archive.models import SourceFile

from .test_files import tamper, upload
from .web_helpers import post_form


def pdf_with_text(*lines: str) -> bytes:
    """A valid one-page PDF 1.4 showing `lines` in Helvetica (WinAnsi, so accents work)."""

    def literal(line: str) -> bytes:
        raw = line.encode("cp1252").replace(b"\\", b"\\\\")
        return b"(" + raw.replace(b"(", b"\\(").replace(b")", b"\\)") + b")"

    ops = b"BT /F1 12 Tf 72 720 Td 14 TL " + b" ".join(literal(x) + b" '" for x in lines) + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def extracted(app, data: bytes) -> list[str | None]:
    """The extracted text of every attachment of these bytes, by attachment id."""
    digest = hashlib.sha256(data).hexdigest()
    with app.app_context():
        return db.session.scalars(
            select(SourceFile.extracted_text)
            .where(SourceFile.sha256 == digest)
            .order_by(SourceFile.id)
        ).all()


def uploaded_text(app, client, factory, auth, data: bytes, filename: str, kind=None):
    response = upload(client, auth("researcher"), factory.source(), data, filename, kind)
    assert response.status_code == 201, response.json
    [text] = extracted(app, data)
    return text


def test_utf8_text_file_is_kept_as_its_text(app, client, factory, auth):
    data = "Allanamiento en Las Tejerías:\r\n\r\n  tres   muertos.\n".encode()
    text = uploaded_text(app, client, factory, auth, data, "nota.txt")
    assert text == "Allanamiento en Las Tejerías: tres muertos."


def test_latin1_text_file_is_decoded_as_latin1(app, client, factory, auth):
    data = "Operación en Petare, año 2021".encode("latin-1")
    text = uploaded_text(app, client, factory, auth, data, "nota.txt")
    assert text == "Operación en Petare, año 2021"


def test_windows_1252_quotes_are_read_as_such(app, client, factory, auth):
    data = "“Cota 905” – informe".encode("cp1252")
    assert uploaded_text(app, client, factory, auth, data, "nota.txt") == "“Cota 905” – informe"


def test_text_is_composed_and_freed_of_invisible_characters(app, client, factory, auth):
    # Decomposed "í", a soft hyphen, a bell and a zero-width space: PostgreSQL would refuse a
    # NUL, and search would miss "Tejerías" written in its decomposed form.
    data = "Teje\u00adri\u0301as\u0007 ca\u200bsa".encode()
    text = uploaded_text(app, client, factory, auth, data, "nota.txt")
    assert text == "Tejerías casa"
    assert text == unicodedata.normalize("NFC", text)


def test_html_keeps_visible_text_only(app, client, factory, auth):
    data = b"""<!doctype html><html><head><meta charset="utf-8"><title>Nota de prensa</title>
    <style>body { color: red }</style><script>var token = "SCRIPTSECRET";</script></head>
    <body><h1>Masacre</h1><p>Vecinos de <b>Cota</b> 905</p><p>denunciaron&nbsp;ejecuciones</p>
    <!-- comentario oculto --><script type="module">alert("otro")</script>
    <template>PLANTILLA</template><ul><li>uno</li><li>dos</li></ul></body></html>"""
    text = uploaded_text(app, client, factory, auth, data, "nota.html")
    assert text == "Nota de prensa Masacre Vecinos de Cota 905 denunciaron ejecuciones uno dos"


def test_html_declaring_latin1_is_read(app, client, factory, auth):
    data = '<html><head><meta charset="iso-8859-1"></head><body>Petaré</body></html>'
    text = uploaded_text(app, client, factory, auth, data.encode("latin-1"), "nota.htm")
    assert text == "Petaré"


def test_pdf_text_is_extracted(app, client, factory, auth):
    data = pdf_with_text("Informe sobre Las Tejerías (2022)", "ejecuciones extrajudiciales")
    response = upload(client, auth("researcher"), factory.source(), data, "informe.pdf")
    assert response.status_code == 201
    assert response.json["media_type"] == "application/pdf"
    assert extracted(app, data) == ["Informe sobre Las Tejerías (2022) ejecuciones extrajudiciales"]


def test_a_corrupt_pdf_still_uploads_without_text(app, client, factory, auth, caplog):
    data = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nstream\n\x00\xff garbage"
    with caplog.at_level(logging.WARNING, logger="archive.extract"):
        response = upload(client, auth("researcher"), factory.source(), data, "roto.pdf")
    assert response.status_code == 201
    assert extracted(app, data) == [None]
    assert "roto.pdf" in caplog.text


def test_malformed_html_is_read_as_far_as_it_goes(app, client, factory, auth):
    data = b"<html><body><p>sin cerrar <b>negrita <i>y <script>oculto"
    assert uploaded_text(app, client, factory, auth, data, "roto.html") == "sin cerrar negrita y"


def test_images_have_no_text(app, client, factory, auth):
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    assert uploaded_text(app, client, factory, auth, data, "foto.png") is None


def test_binary_bytes_named_txt_are_not_taken_for_text(app, client, factory, auth):
    data = b"\x00\x01\x02binario\x00"
    assert uploaded_text(app, client, factory, auth, data, "datos.txt") is None


@pytest.fixture
def short_app(app):
    """The same database and store, keeping at most 20 characters of a file's text."""
    short = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "FILES_DIR": app.config["FILES_DIR"],
            "SEARCH_INDEX_DIR": app.config["SEARCH_INDEX_DIR"],
            "EXTRACTED_TEXT_MAX_CHARS": 20,
        }
    )
    yield short
    with short.app_context():
        db.engine.dispose()


def test_extracted_text_is_cut_at_the_configured_length(short_app, factory, auth):
    data = b"uno dos tres cuatro cinco seis siete"
    response = upload(short_app.test_client(), auth("researcher"), factory.source(), data, "a.txt")
    assert response.status_code == 201
    assert extracted(short_app, data) == ["uno dos tres cuatro"]  # 19 characters: whole words


def test_a_file_uploaded_through_the_page_gets_its_text(app, factory, browser_for):
    source_id = factory.source()
    client = browser_for("researcher")
    data = b"Desalojo en el barrio"
    response = post_form(
        client,
        f"/sources/{source_id}/files",
        {"file": (io.BytesIO(data), "nota.txt")},
        form_url=f"/sources/{source_id}",
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert extracted(app, data) == ["Desalojo en el barrio"]


def forget_texts(app) -> None:
    """As the archive was before extraction: every file without text."""
    with app.app_context():
        db.session.execute(update(SourceFile).values(extracted_text=None))
        db.session.commit()


def test_files_extract_fills_the_text_of_earlier_uploads(app, client, factory, auth, runner):
    text_file, html_file = b"primero", b"<p>segundo</p>"
    image = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    for data, name in ((text_file, "a.txt"), (html_file, "b.html"), (image, "c.png")):
        assert upload(client, auth("researcher"), factory.source(), data, name).status_code == 201
    forget_texts(app)

    result = runner.invoke(args=["files", "extract"])
    assert result.exit_code == 0, result.output
    assert "Text extracted from 2 of 2 readable files." in result.output
    assert extracted(app, text_file) == ["primero"]
    assert extracted(app, html_file) == ["segundo"]
    assert extracted(app, image) == [None]

    again = runner.invoke(args=["files", "extract"])
    assert "Text extracted from 0 of 0 readable files." in again.output


def test_files_extract_all_extracts_again_files_that_have_text(app, client, factory, auth, runner):
    data = b"<p>uno</p><p>dos</p>"
    assert upload(client, auth("researcher"), factory.source(), data, "a.html").status_code == 201
    with app.app_context():
        db.session.execute(update(SourceFile).values(extracted_text="stale"))
        db.session.commit()

    assert "0 of 0" in runner.invoke(args=["files", "extract"]).output
    result = runner.invoke(args=["files", "extract", "--all"])
    assert "Text extracted from 1 of 1 readable files." in result.output
    assert extracted(app, data) == ["uno dos"]


def test_files_extract_skips_and_names_a_tampered_file(app, client, factory, auth, runner):
    good, bad = b"intacto", b"alterado"
    source_id = factory.source()
    for data, name in ((good, "a.txt"), (bad, "b.txt")):
        assert upload(client, auth("researcher"), source_id, data, name).status_code == 201
    forget_texts(app)
    tamper(app, hashlib.sha256(bad).hexdigest(), b"otra cosa")

    result = runner.invoke(args=["files", "extract"])
    assert result.exit_code == 1
    assert hashlib.sha256(bad).hexdigest() in result.output
    assert f"source {source_id}" in result.output
    assert "Text extracted from 1 of 2 readable files." in result.output
    assert extracted(app, good) == ["intacto"]
    assert extracted(app, bad) == [None]


def test_the_same_file_on_a_second_source_gets_the_same_text(app, client, factory, auth):
    data = pdf_with_text("Comunicado oficial")
    for _ in range(2):
        assert (
            upload(client, auth("researcher"), factory.source(), data, "c.pdf").status_code == 201
        )
    assert extracted(app, data) == ["Comunicado oficial", "Comunicado oficial"]


def test_html_in_another_declared_encoding_is_read_in_it(app, client, factory, auth):
    data = '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r"><p>Москва</p>'
    text = uploaded_text(app, client, factory, auth, data.encode("koi8-r"), "nota.html")
    assert text == "Москва"


def test_text_extracted_later_is_found_by_search(app, client, factory, auth, runner):
    source_id = factory.source(title="Informe")
    data = b"<p>Declaraciones de Yusneidy</p>"
    assert upload(client, auth("researcher"), source_id, data, "a.html").status_code == 201
    forget_texts(app)
    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    found = client.get("/api/v1/search?q=yusneidy", headers=auth("researcher")).json
    assert found["total"] == 0

    assert runner.invoke(args=["files", "extract"]).exit_code == 0
    found = client.get("/api/v1/search?q=yusneidy", headers=auth("researcher")).json
    assert [(i["type"], i["id"]) for i in found["items"]] == [("source", source_id)]


def test_the_source_page_says_how_much_of_each_file_is_searchable(
    client, factory, auth, browser_for
):
    source_id = factory.source()
    assert (
        upload(client, auth("researcher"), source_id, b"uno dos tres", "a.txt").status_code == 201
    )
    image = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    assert upload(client, auth("researcher"), source_id, image, "b.png").status_code == 201
    staff = browser_for("viewer")
    body = staff.get(f"/sources/{source_id}?lang=en").get_data(as_text=True)
    assert "searchable text: 12 characters" in body
    assert "no searchable text" in body


def test_the_invisible_characters_written_out_are_those_of_pythons_unicode_data():
    if unicodedata.unidata_version != extract.INVISIBLE_UNIDATA_VERSION:
        pytest.skip("this Python's Unicode data is scanned, not the ranges written out")
    assert extract.invisible_ranges() == extract.INVISIBLE_RANGES
