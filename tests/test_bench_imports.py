"""bench/imports.py at a tiny size: its file imports through the app, its bare insert makes
the same records, and it prints its table; the benchmark itself stays out of the suite."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

from sqlalchemy import func, select

from archive import access, imports, provenance
from archive.extensions import db
from archive.models import AuditEntry, CasualtyCount, Citation, Event

PATH = Path(__file__).parent.parent / "bench" / "imports.py"
_spec = importlib.util.spec_from_file_location("bench_imports", PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_the_generated_file_is_spanish_rows_per_event_with_counts():
    rows = list(csv.reader(io.StringIO(bench.generate(50).decode("utf-8"))))
    assert rows[0] == bench.HEADERS
    assert len(rows) == 51
    assert rows[1][0] == "E-0000001" and rows[50][0] == "E-0000050"
    assert bench.generate(50) == bench.generate(50)  # the same file for the same size


def test_the_file_imports_through_the_app_with_every_record_cited_and_audited(app, tmp_path):
    data = bench.generate(40)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    # Counts by hand: a figure for each group of columns with any cell given.
    figures = sum(1 for row in rows for columns, *_ in bench.COUNTS if any(row[c] for c in columns))
    user = access.SystemActor("bench@example.org", role="admin")
    with app.app_context():
        report = imports.run_import(
            db.session,
            user,
            provenance.FileStore(str(tmp_path / "files")),
            data,
            "enfrentamientos.csv",
            bench.MAPPING,
        )
        assert report.ok and report.written, [str(p) for p in report.errors]
        db.session.commit()
        events = db.session.scalar(select(func.count()).select_from(Event))
        counts = db.session.scalar(select(func.count()).select_from(CasualtyCount))
        citations = db.session.scalar(select(func.count()).select_from(Citation))
        created = db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "create")
        )
        assert provenance.verify_chain(db.session).ok
    assert (events, counts) == (40, figures)
    assert citations == 40 + figures
    places = report.created["places"]
    # Every record created is audited: events, counts, citations, places and the source.
    assert created == events + counts + citations + places + 1


def test_the_bare_insert_makes_the_records_the_import_makes(app, tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(bench.generate(40))
    with app.app_context(), open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        index = {header: i for i, header in enumerate(next(reader))}
        made = bench._bare_insert(db.session, reader, index)
        db.session.commit()
        counts = db.session.scalar(select(func.count()).select_from(CasualtyCount))
    rows = list(csv.DictReader(io.StringIO(bench.generate(40).decode("utf-8"))))
    figures = sum(1 for row in rows for columns, *_ in bench.COUNTS if any(row[c] for c in columns))
    assert made["events"] == made["rows"] == 40
    assert made["casualty_counts"] == counts == figures


def test_the_benchmark_runs_and_prints_its_table(capsys):
    results = bench.main(["--rows", "30", "--backend", "sqlite"])
    out = capsys.readouterr().out
    assert "sqlite: imported 30 rows (30 events," in out
    header, row = out.split("the database server's not counted)")[1].splitlines()[1:3]
    assert header.split()[:4] == ["backend", "rows", "app", "s"]
    assert row.split()[:2] == ["sqlite", "30"]
    assert results[0]["app"]["peak_mb"] >= results[0]["app"]["baseline_mb"] > 0
    assert results[0]["bare"]["events"] == 30
