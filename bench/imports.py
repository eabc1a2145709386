"""Bulk import through the app against a bare bulk insert of the same rows, and its memory.

Generates a CSV of one row per clash, in Spanish, as a researcher's spreadsheet holds it
(folio, fecha, estado, municipio, tipo de evento, and counts of the dead, injured and detained
of each side, two columns feeding one figure, blank cells where a source said nothing), then
for each backend (SQLite in a temporary file; PostgreSQL in a database made for the run and
dropped after):

- imports it through the app's code (`imports.run_import`: every row checked with the API's
  schemas, then written in one transaction, each record citing the stored file with its row
  and audited), in a spawned process of its own that reports its seconds and its memory
  high-water (VmHWM); the same for a file a tenth of the size, to show memory does not grow
  with the file;
- bulk-inserts the same places, events and casualty counts with no validation, no citation
  and no audit entry (SQLAlchemy Core executemany), in a fresh database of its own;

and prints rows per second, peak memory and the ratio of the two times (aims: at least 2,000
rows/s, within 3x of the bare insert).

    python bench/imports.py                                     # 100,000 rows, both backends
    python bench/imports.py --rows 5000 --backend sqlite        # a quick run
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import flask_migrate  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from archive import create_app, database  # noqa: E402
from archive.extensions import db  # noqa: E402
from archive.models import CasualtyCount, Event, Place, Source  # noqa: E402

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
ROWS = 100_000
RATE_AIM = 2_000  # rows per second
RATIO_AIM = 3.0  # import time ÷ bare insert time
CHUNK = 1_000
SEED = 11

HEADERS = [
    "Folio",
    "Fecha",
    "Estado",
    "Municipio",
    "Tipo de evento",
    "Militares muertos",
    "Policías muertos",
    "Civiles muertos",
    "Civiles heridos",
    "Detenidos",
]
EVENT_TYPES = {
    "Enfrentamiento": "armed_clash_alleged",
    "Cateo": "raid",
    "Agresión": "attack_on_security_forces",
    "Detención masiva": "mass_detention",
}
# (columns, affiliation, outcome, caused_by): the two columns of agents killed feed one figure.
COUNTS = [
    (["Militares muertos", "Policías muertos"], "state_agent", "killed", "non_state"),
    (["Civiles muertos"], "civilian", "killed", "state"),
    (["Civiles heridos"], "civilian", "injured", "state"),
    (["Detenidos"], "civilian", "detained", "state"),
]
MAPPING: dict[str, Any] = {
    "rows": "event",
    "columns": {
        "Folio": None,
        "Fecha": "event.start_date",
        "Estado": "place.admin1",
        "Municipio": "place.admin2",
        "Tipo de evento": "event.event_type",
        **{column: None for spec in COUNTS for column in spec[0]},
    },
    "date_formats": {"Fecha": "%d/%m/%Y"},
    "values": {"event.event_type": EVENT_TYPES},
    "constants": {
        "place.country": "MX",
        "event.title": "{Tipo de evento} en {Municipio}, {Estado}",
    },
    "counts": [
        {"columns": columns, "affiliation": a, "outcome": o, "caused_by": c}
        for columns, a, o, c in COUNTS
    ],
    "external_id": "Folio",
}
STATES = [
    "Aguascalientes",
    "Baja California",
    "Chihuahua",
    "Coahuila",
    "Durango",
    "Guanajuato",
    "Guerrero",
    "Jalisco",
    "Michoacán",
    "Morelos",
    "Nuevo León",
    "Oaxaca",
    "Sinaloa",
    "Sonora",
    "Tamaulipas",
    "Veracruz",
    "Zacatecas",
]
MUNICIPALITIES_PER_STATE = 40


# --------------------------------------------------------------------------------------------
# The file


def generate(rows: int, seed: int = SEED) -> bytes:
    """A CSV of `rows` clashes (UTF-8), the same for the same `rows` and `seed`."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    first = dt.date(2007, 1, 1)
    types = list(EVENT_TYPES)
    for n in range(1, rows + 1):
        state = rng.choice(STATES)
        municipality = f"Municipio {rng.randrange(MUNICIPALITIES_PER_STATE) + 1:02d}"
        day = first + dt.timedelta(days=rng.randrange(12 * 365))

        def figure(blank: float, high: int) -> str:
            return "" if rng.random() < blank else str(rng.randrange(high))

        writer.writerow(
            [
                f"E-{n:07d}",
                day.strftime("%d/%m/%Y"),
                state,
                municipality,
                rng.choice(types),
                figure(0.5, 4),
                figure(0.7, 3),
                figure(0.3, 6),
                figure(0.5, 5),
                figure(0.6, 12),
            ]
        )
    return out.getvalue().encode("utf-8")


# --------------------------------------------------------------------------------------------
# Databases (as bench/indicators.py makes them)


def make_database(backend: str, workdir: str, tag: str) -> tuple[str, Callable[[], None]]:
    """A fresh, migrated database of the backend: its URL and how to drop it."""
    if backend == "sqlite":
        path = os.path.join(workdir, f"bench-{tag}.sqlite3")
        url = f"sqlite:///{path}"

        def drop() -> None:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)

    else:
        name = f"constancia_bench_imports_{os.getpid()}_{tag}"
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(PG_SERVER).set(drivername="postgresql+psycopg", database=name)
        url = url.render_as_string(hide_password=False)

        def drop() -> None:
            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    app = make_app(url, workdir)
    # Alembic logs each migration to stderr; the benchmark's output is its table.
    with app.app_context(), _closing(), contextlib.redirect_stderr(io.StringIO()):
        flask_migrate.upgrade()
    return url, drop


def make_app(url: str, workdir: str):
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": url,
            "FILES_DIR": os.path.join(workdir, "files"),
            "SEARCH_INDEX_DIR": os.path.join(workdir, "search"),
        }
    )


@contextlib.contextmanager
def _closing():
    """Inside an app context: end the session and close the engine's connections after."""
    try:
        yield
    finally:
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------------------------
# The two ways in, each in a spawned process of its own


def import_once(url: str, workdir: str, path: str) -> dict[str, Any]:
    """Import the file at `path` through the app, as `flask import run` does, and commit."""
    from archive import access, imports, provenance

    with open(path, "rb") as f:
        data = f.read()
    app = make_app(url, workdir)
    with app.app_context(), _closing():
        user = access.SystemActor("bench@example.org", role="admin")
        store = provenance.FileStore(app.config["FILES_DIR"])
        baseline = _memory_mb("VmRSS")
        start, cpu = time.perf_counter(), time.process_time()
        with database.writing():
            report = imports.run_import(
                db.session,
                user,
                store,
                data,
                os.path.basename(path),
                MAPPING,
                max_bytes=app.config["FILES_MAX_BYTES"],
            )
            if not report.written:
                db.session.rollback()
                problems = [str(p) for p in report.errors[:5]]
                raise RuntimeError(f"the import wrote nothing: {problems}")
            db.session.commit()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = _memory_mb("VmHWM")
    return {
        "seconds": seconds,
        "cpu": cpu,
        "peak_mb": peak,
        "baseline_mb": baseline,
        "rows": report.rows_read,
        "created": report.created,
    }


def bare_once(url: str, workdir: str, path: str) -> dict[str, Any]:
    """The same places, events and casualty counts, inserted with no check, citation or audit
    entry: the file read with the csv module, each table filled by executemany in chunks."""
    app = make_app(url, workdir)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        index = {header: i for i, header in enumerate(next(reader))}
        with app.app_context(), _closing():
            baseline = _memory_mb("VmRSS")
            start, cpu = time.perf_counter(), time.process_time()
            with database.writing():
                counts = _bare_insert(db.session, reader, index)
                db.session.commit()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            peak = _memory_mb("VmHWM")
    return {"seconds": seconds, "cpu": cpu, "peak_mb": peak, "baseline_mb": baseline, **counts}


def _bare_insert(session, reader, index: dict[str, int]) -> dict[str, int]:
    now = dt.datetime.now(dt.UTC)
    stamp = {"created_at": now, "updated_at": now, "version": 1}
    places: dict[tuple[str, str], int] = {}
    made = {"rows": 0, "places": 0, "events": 0, "casualty_counts": 0}
    source_id = session.scalar(
        insert(Source).returning(Source.id),
        {"kind": "dataset", "title": "bare", "restricted": False, **stamp},
    )
    chunk: list[list[str]] = []

    def flush() -> None:
        new = {(r[index["Estado"]], r[index["Municipio"]]) for r in chunk} - set(places)
        if new:
            keys = sorted(new)
            ids = session.scalars(
                insert(Place).returning(Place.id, sort_by_parameter_order=True),
                [
                    {"country": "MX", "admin1": a, "admin2": b, "precision": "admin2", **stamp}
                    for a, b in keys
                ],
            ).all()
            places.update(zip(keys, ids, strict=True))
            made["places"] += len(keys)
        events = []
        for r in chunk:
            kind = r[index["Tipo de evento"]]
            events.append(
                {
                    "title": f"{kind} en {r[index['Municipio']]}, {r[index['Estado']]}",
                    "event_type": EVENT_TYPES[kind],
                    "start_date": dt.datetime.strptime(r[index["Fecha"]], "%d/%m/%Y").date(),
                    "date_precision": "day",
                    "place_id": places[(r[index["Estado"]], r[index["Municipio"]])],
                    "status": "draft",
                    "published": False,
                    "external_id": r[index["Folio"]],
                    **stamp,
                }
            )
        ids = session.scalars(
            insert(Event).returning(Event.id, sort_by_parameter_order=True), events
        ).all()
        figures = []
        for r, event_id in zip(chunk, ids, strict=True):
            for columns, affiliation, outcome, caused_by in COUNTS:
                cells = [r[index[c]] for c in columns if r[index[c]]]
                if cells:
                    figures.append(
                        {
                            "event_id": event_id,
                            "source_id": source_id,
                            "affiliation": affiliation,
                            "outcome": outcome,
                            "caused_by": caused_by,
                            "count": sum(int(c) for c in cells),
                            **stamp,
                        }
                    )
        if figures:
            session.execute(insert(CasualtyCount), figures)
        made["events"] += len(ids)
        made["casualty_counts"] += len(figures)
        made["rows"] += len(chunk)
        chunk.clear()

    for row in reader:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    return made


def spawned(fn: Callable[..., dict[str, Any]], *args: str) -> dict[str, Any]:
    """fn(*args) in a new interpreter of its own (this script run with --child), so its VmHWM
    is its own; it answers in JSON on its standard output."""
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", fn.__name__, *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{fn.__name__} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


CHILDREN = {"import_once": import_once, "bare_once": bare_once}


def _memory_mb(field: str) -> float:
    """This process's VmHWM (peak) or VmRSS (now) in MB, from /proc; ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------
# The run


def run_backend(backend: str, rows: int, workdir: str, files: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend, "rows": rows}
    for size, key in ((rows, "app"), (max(rows // 10, 1), "app_tenth")):
        url, drop = make_database(backend, workdir, key)
        try:
            out[key] = spawned(import_once, url, workdir, files[size])
        finally:
            drop()
        if key == "app":
            r = out[key]
            print(
                f"{backend}: imported {r['rows']:,} rows ({r['created']['events']:,} events,"
                f" {r['created']['casualty_counts']:,} casualty counts,"
                f" {r['created']['citations']:,} citations) in {r['seconds']:.1f} s,"
                f" peak {r['peak_mb']:.0f} MB",
                flush=True,
            )
    url, drop = make_database(backend, workdir, "bare")
    try:
        out["bare"] = spawned(bare_once, url, workdir, files[rows])
    finally:
        drop()
    b = out["bare"]
    print(
        f"{backend}: bare insert of {b['events']:,} events and {b['casualty_counts']:,}"
        f" casualty counts in {b['seconds']:.1f} s",
        flush=True,
    )
    if (b["events"], b["casualty_counts"]) != (
        out["app"]["created"]["events"],
        out["app"]["created"]["casualty_counts"],
    ):
        raise SystemExit(f"{backend}: the bare insert and the import made different records")
    return out


def report(results: list[dict[str, Any]]) -> None:
    print("\nImporting the file through the app beside a bare bulk insert of the same rows")
    print("(s: wall seconds; CPU: this process's CPU seconds, the database server's not counted)")
    print(
        f"{'backend':<12}{'rows':>9}{'app s':>9}{'CPU':>7}{'rows/s':>9}{'bare s':>8}{'CPU':>7}"
        f"{'ratio':>8}{'start MB':>10}{'peak MB':>9}{'peak MB, 1/10 file':>20}{'aims':>22}"
    )
    for r in results:
        app, bare, tenth = r["app"], r["bare"], r["app_tenth"]
        rate = r["rows"] / app["seconds"] if app["seconds"] else math.inf
        ratio = app["seconds"] / bare["seconds"] if bare["seconds"] else math.inf
        verdict = "ok" if rate >= RATE_AIM and ratio <= RATIO_AIM else "MISSED"
        print(
            f"{r['backend']:<12}{r['rows']:>9,}{app['seconds']:>9.1f}{app['cpu']:>7.1f}"
            f"{rate:>9,.0f}{bare['seconds']:>8.1f}{bare['cpu']:>7.1f}{ratio:>7.2f}x"
            f"{app['baseline_mb']:>10.0f}{app['peak_mb']:>9.0f}{tenth['peak_mb']:>20.0f}"
            f"{f'≥{RATE_AIM:,}/s ≤{RATIO_AIM:g}x':>22} {verdict}"
        )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows in the generated file")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one measurement, in a process of its own (see spawned())
        name, *child_args = args.child
        print(json.dumps(CHILDREN[name](*child_args)))
        return []
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="constancia-bench-imports-") as workdir:
        files = {}
        for size in {args.rows, max(args.rows // 10, 1)}:
            files[size] = os.path.join(workdir, f"enfrentamientos-{size}.csv")
            with open(files[size], "wb") as f:
                f.write(generate(size))
        for backend in backends:
            results.append(run_backend(backend, args.rows, workdir, files))
    report(results)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return results


if __name__ == "__main__":
    main()
