"""Indicators through the app against one hand-written SQL query, and the memory of exports.

Fills a fresh archive (SQLite in a temporary file; PostgreSQL in a database made for the run
and dropped after) with 500 operations, 200,000 events, 1,000,000 victims and 200,000 casualty
counts, then prints, for each backend:

- the time to compute every operation's indicators through the app's code
  (`indicators.grouped(..., group_by=operation)`) beside one hand-written SQL statement that
  computes the same per-operation counts (low, best, high) over the same tables, and their
  ratio (the aim: within 1.5x). The two must give the same figures, or the run stops with an
  error: the timing compares equal work. Each is timed as the best of three runs after a
  warm-up. On PostgreSQL the app runs its statement without JIT compilation, so the
  hand-written statement is timed both with the server's JIT setting and without, and the
  faster of the two is the baseline;
- the peak memory (high-water resident set of a process of its own) of exporting the
  1,000,000 victims to CSV and to XLSX (the aim: under 300 MB).

    python bench/indicators.py                          # both backends, full size
    python bench/indicators.py --scale 0.01 --backend sqlite --skip-export   # a quick run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import flask_migrate  # noqa: E402
import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from sqlalchemy import JSON, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from archive import create_app  # noqa: E402
from archive.extensions import db  # noqa: E402
from archive.models import (  # noqa: E402
    Actor,
    CasualtyCount,
    Event,
    EventActor,
    Operation,
    Place,
    Source,
    User,
    Victim,
)

SIZES = {"operations": 500, "events": 200_000, "victims": 1_000_000, "casualty_counts": 200_000}
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
APP_AIM = 1.5  # app time ÷ SQL time
MEMORY_AIM_MB = 300
CHUNK = 10_000
REPEAT = 3
ADMIN_EMAIL = "bench-admin@example.org"

# The count indicators the hand-written query computes, and the app's figures are checked on.
CHECKED = (
    "civilians_killed_by_state",
    "civilians_injured_by_state",
    "agents_killed",
    "agents_injured",
    "detained",
    "agents_killed_off_duty",
)

# What happened at an event decides who its victims were: (share of events, the victims'
# (affiliation, outcome, caused_by) cells with their weights).
SCENARIOS: dict[str, tuple[float, list[tuple[tuple[str, str, str], float]]]] = {
    "raid": (
        0.62,
        [
            (("civilian", "killed", "state"), 60),
            (("unknown", "killed", "state"), 10),
            (("non_state_armed", "killed", "state"), 8),
            (("civilian", "injured", "state"), 10),
            (("civilian", "detained", "state"), 8),
            (("civilian", "disappeared", "state"), 2),
            (("state_agent", "injured", "non_state"), 2),
        ],
    ),
    "armed_clash_alleged": (
        0.12,
        [
            (("non_state_armed", "killed", "state"), 40),
            (("civilian", "killed", "state"), 15),
            (("non_state_armed", "injured", "state"), 10),
            (("state_agent", "killed", "non_state"), 12),
            (("state_agent", "injured", "non_state"), 15),
            (("civilian", "killed", "unknown"), 5),
            (("non_state_armed", "detained", "state"), 3),
        ],
    ),
    "attack_on_security_forces": (
        0.08,
        [
            (("state_agent", "killed", "non_state"), 45),
            (("state_agent", "injured", "non_state"), 40),
            (("state_agent", "killed", "unknown"), 10),
            (("civilian", "injured", "non_state"), 5),
        ],
    ),
    "mass_detention": (
        0.13,
        [
            (("civilian", "detained", "state"), 80),
            (("civilian", "injured", "state"), 10),
            (("civilian", "tortured", "state"), 5),
            (("civilian", "killed", "state"), 5),
        ],
    ),
    "protest": (
        0.05,
        [
            (("civilian", "injured", "state"), 45),
            (("civilian", "detained", "state"), 35),
            (("civilian", "killed", "state"), 10),
            (("state_agent", "injured", "unknown"), 10),
        ],
    ),
}

# --------------------------------------------------------------------------------------------
# Filling the archive


def sizes_for(scale: float) -> dict[str, int]:
    return {name: max(int(round(size * scale)), 1) for name, size in SIZES.items()}


def fill(
    session, scale: float = 1.0, seed: int = 7, sizes: dict[str, int] | None = None
) -> dict[str, int]:
    """Bulk-insert an archive of SIZES × scale, straight into the tables (no services, no audit).

    Most events are verified (and most of those published), some are drafts or in review, a
    few deleted; victims fall into cells by what happened at their event; about half the
    events have casualty counts, one to three sources per cell that disagree with each other
    and with the victims recorded by name. `sizes` (as SIZES) overrides `scale`.
    """
    rng = random.Random(seed)
    size = sizes or sizes_for(scale)
    writer = _Writer(session)
    now = dt.datetime(2024, 1, 15, 12, 0, tzinfo=dt.UTC)
    gone = dt.datetime(2024, 2, 1, 9, 30, tzinfo=dt.UTC)
    stamp = {"created_at": now, "updated_at": now}

    writer.write(
        User,
        [{"id": 1, "email": ADMIN_EMAIL, "role": "admin", "active": True, **stamp}],
    )
    kinds = ["state_police", "state_military", "state_intelligence", "state_other"]
    actors = [
        {"id": i, "name": f"Cuerpo {i}", "kind": kinds[i % 4], "deleted_at": None, **stamp}
        for i in range(1, 33)
    ] + [
        {"id": i, "name": f"Banda {i}", "kind": "non_state_armed", "deleted_at": None, **stamp}
        for i in range(33, 41)
    ]
    writer.write(Actor, actors)
    places = []
    for i in range(1, 1001):
        places.append(
            {
                "id": i,
                "country": "VE",
                "admin1": f"Estado {1 + i % 24}",
                "admin2": f"Municipio {i}",
                "precision": "admin2",
                "latitude": round(1.0 + rng.random() * 11.0, 5),
                "longitude": round(-73.0 + rng.random() * 13.0, 5),
                "deleted_at": None,
                **stamp,
            }
        )
    writer.write(Place, places)
    operations = []
    for i in range(1, size["operations"] + 1):
        start = _day(rng.randrange(2900))
        operations.append(
            {
                "id": i,
                "name": f"Operación {i}",
                "start_date": start,
                "date_precision": "day",
                "agents_deployed": rng.randrange(50, 3000) if rng.random() < 0.6 else None,
                "deleted_at": None,
                **stamp,
            }
        )
    writer.write(Operation, operations)
    n_sources = max(size["casualty_counts"] // 20, 3)
    writer.write(
        Source,
        [
            {
                "id": i,
                "kind": rng.choice(("news_article", "ngo_report", "official_statement")),
                "title": f"Fuente {i}",
                "language": "es",
                "restricted": rng.random() < 0.05,
                "deleted_at": None,  # the app refuses to delete a source still counted
                **stamp,
            }
            for i in range(1, n_sources + 1)
        ],
    )

    # Victims per event: heavy-tailed (most events have a few, some are massacres), exactly
    # size["victims"] in all. Operations: a few large ones, many small.
    n_events = size["events"]
    weights = [rng.lognormvariate(0, 1.0) for _ in range(n_events)]
    per_event = [0] * n_events
    for e in rng.choices(range(n_events), cum_weights=_cumulative(weights), k=size["victims"]):
        per_event[e] += 1
    op_weights = _cumulative([1 / (1 + i) ** 0.8 for i in range(size["operations"])])
    scenario_names = list(SCENARIOS)
    scenario_weights = [SCENARIOS[name][0] for name in scenario_names]
    # Casualty counts for about half the events, one or more each, exactly as many in all.
    reports = [0] * n_events
    reported = rng.sample(range(n_events), k=min(n_events // 2 + 1, size["casualty_counts"]))
    for e in reported:
        reports[e] = 1
    for e in rng.choices(reported, k=size["casualty_counts"] - len(reported)):
        reports[e] += 1
    victim_id = count_id = 0

    for start in range(0, n_events, CHUNK):
        events, event_actors, victims, counts = [], [], [], []
        for e in range(start, min(start + CHUNK, n_events)):
            event_id = e + 1
            scenario = rng.choices(scenario_names, scenario_weights)[0]
            cells, cell_weights = zip(*SCENARIOS[scenario][1], strict=True)
            roll = rng.random()
            status = "verified" if roll < 0.85 else "draft" if roll < 0.95 else "in_review"
            operation_id = (
                1 + rng.choices(range(size["operations"]), cum_weights=op_weights)[0]
                if rng.random() < 0.92
                else None
            )
            events.append(
                {
                    "id": event_id,
                    "title": f"Evento {event_id}",
                    "description": "<p>Operativo con víctimas, según vecinos y prensa.</p>",
                    "event_type": scenario,
                    "start_date": _day(rng.randrange(2922)),
                    "date_precision": "day" if rng.random() < 0.9 else "month",
                    "place_id": 1 + rng.randrange(1000) if rng.random() < 0.95 else None,
                    "operation_id": operation_id,
                    "agents_deployed": rng.randrange(10, 600) if rng.random() < 0.2 else None,
                    "status": status,
                    "published": status == "verified" and rng.random() < 0.95,
                    "deleted_at": gone if rng.random() < 0.02 else None,
                    **stamp,
                }
            )
            state_actor = 1 + rng.randrange(32)
            event_actors.append(
                {"event_id": event_id, "actor_id": state_actor, "role": "perpetrator"}
            )
            named: dict[tuple[str, str, str], int] = {}
            for _ in range(per_event[e]):
                victim_id += 1
                cell = rng.choices(cells, cell_weights)[0]
                affiliation, outcome, caused_by = cell
                agent = affiliation == "state_agent"
                deleted = rng.random() < 0.03
                if not deleted:
                    named[cell] = named.get(cell, 0) + 1
                victims.append(
                    {
                        "id": victim_id,
                        "event_id": event_id,
                        "name": f"Persona {victim_id}" if rng.random() < 0.85 else None,
                        "alias": f"El {victim_id % 997}" if rng.random() < 0.1 else None,
                        "age": 14 + rng.randrange(55) if rng.random() < 0.8 else None,
                        "sex": rng.choice(("male", "male", "male", "female", "unknown")),
                        "affiliation": affiliation,
                        "actor_id": (state_actor if agent else 33 + rng.randrange(8))
                        if agent or affiliation == "non_state_armed"
                        else None,
                        "outcome": outcome,
                        "caused_by": caused_by,
                        "responsible_actor_id": state_actor if caused_by == "state" else None,
                        "circumstances": (
                            "Según los familiares, fue sacado de su casa antes del amanecer."
                            if rng.random() < 0.3
                            else None
                        ),
                        "on_duty": _on_duty(rng) if agent else None,
                        "identity_restricted": rng.random() < 0.1,
                        "deleted_at": gone if deleted else None,
                        **stamp,
                    }
                )
            for cell, figures in _reported_cells(rng, named, cells, cell_weights, reports[e]):
                n = named.get(cell, 0)
                for _ in range(figures):
                    count_id += 1
                    figure = (
                        n + rng.choice((-2, -1, 0, 0, 1, 2, 3, 5)) if n else 1 + rng.randrange(12)
                    )
                    counts.append(
                        {
                            "id": count_id,
                            "event_id": event_id,
                            "source_id": 1 + rng.randrange(n_sources),
                            "affiliation": cell[0],
                            "outcome": cell[1],
                            "caused_by": cell[2],
                            "count": max(figure, 0),
                            "deleted_at": gone if rng.random() < 0.02 else None,
                            **stamp,
                        }
                    )
        writer.write(Event, events)
        writer.write(EventActor, event_actors)
        writer.write(Victim, victims)
        writer.write(CasualtyCount, counts)
    writer.finish()
    return {
        "operations": size["operations"],
        "events": n_events,
        "victims": victim_id,
        "casualty_counts": count_id,
    }


def _reported_cells(rng, named, cells, cell_weights, figures: int) -> list[tuple[tuple, int]]:
    """Which cells `figures` casualty counts are about, and how many for each: one to three
    sources per cell, the event's largest cells first, then what else might have happened."""
    ranked = sorted(named, key=lambda cell: -named[cell])
    ranked += [
        c for _, c in sorted(zip(cell_weights, cells, strict=True), reverse=True) if c not in named
    ]
    chosen = []
    for i, cell in enumerate(ranked):
        if figures <= 0:
            break
        last = i == len(ranked) - 1
        take = figures if last else min(figures, rng.choices((1, 2, 3), (40, 35, 25))[0])
        chosen.append((cell, take))
        figures -= take
    return chosen


def _on_duty(rng) -> str | None:
    return rng.choices(("true", "false", "unknown", None), (78, 10, 6, 6))[0]


def _day(offset: int) -> dt.date:
    return dt.date(2015, 1, 1) + dt.timedelta(days=offset)


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


class _Writer:
    """Rows into tables in bulk: COPY on PostgreSQL, executemany through SQLAlchemy on SQLite."""

    def __init__(self, session):
        self.session = session
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        self.tables: list[str] = []

    def write(self, model, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table = model.__table__
        if table.name not in self.tables:
            self.tables.append(table.name)
        if not self.postgresql:
            for start in range(0, len(rows), CHUNK):
                self.session.execute(insert(model), rows[start : start + CHUNK])
            return
        # COPY skips the models' Python-side defaults (aliases=[], version=1...): add them.
        columns = list(rows[0])
        defaults = {
            column.name: column.default.arg(None)
            if callable(column.default.arg)
            else column.default.arg
            for column in table.c
            if column.name not in columns and column.default is not None
        }
        columns += list(defaults)
        json = {column.name for column in table.c if isinstance(column.type, JSON)}
        raw = self.session.connection().connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                values = {**defaults, **row}
                copy.write_row([Jsonb(values[c]) if c in json else values[c] for c in columns])

    def finish(self) -> None:
        session = self.session
        session.commit()
        if self.postgresql:
            for table in self.tables:
                if "id" in db.metadata.tables[table].c:
                    session.execute(
                        text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                    )
            session.commit()
        session.execute(text("ANALYZE"))
        session.commit()


# --------------------------------------------------------------------------------------------
# The hand-written query

# Per event and (affiliation, outcome, caused_by) cell: n live victim records (and how many of
# them were agents off duty), the min, lower median and max of the live casualty counts from
# live sources; low/best/high = max(n, min/median/max); then summed per operation over its
# verified, live events. The lower median is the figure ranked ceil(m / 2) of the m figures,
# counted from the smallest. Agents recorded as off duty are taken out of the agents killed
# and injured and reported apart (agents_killed_off_duty), as archive/indicators.py does.
SQL = """
WITH counted AS (
    SELECT id, operation_id FROM events
    WHERE deleted_at IS NULL AND status = 'verified' AND operation_id IS NOT NULL
),
named AS (
    SELECT v.event_id, v.affiliation, v.outcome, v.caused_by,
           count(*) AS n,
           sum(CASE WHEN v.affiliation = 'state_agent' AND v.on_duty = 'false'
                    THEN 1 ELSE 0 END) AS off_duty
    FROM victims v JOIN counted e ON e.id = v.event_id
    WHERE v.deleted_at IS NULL
    GROUP BY v.event_id, v.affiliation, v.outcome, v.caused_by
),
ranked AS (
    SELECT c.event_id, c.affiliation, c.outcome, c.caused_by, c.count,
           row_number() OVER (PARTITION BY c.event_id, c.affiliation, c.outcome, c.caused_by
                              ORDER BY c.count) AS k,
           count(*) OVER (PARTITION BY c.event_id, c.affiliation, c.outcome, c.caused_by) AS m
    FROM casualty_counts c
    JOIN counted e ON e.id = c.event_id
    JOIN sources s ON s.id = c.source_id AND s.deleted_at IS NULL
    WHERE c.deleted_at IS NULL
),
reported AS (
    SELECT event_id, affiliation, outcome, caused_by,
           min(count) AS lo, max(count) AS hi,
           max(CASE WHEN k = (m + 1) / 2 THEN count END) AS med
    FROM ranked
    GROUP BY event_id, affiliation, outcome, caused_by
),
cells AS (
    SELECT event_id, affiliation, outcome, caused_by,
           sum(n) AS n, sum(off_duty) AS off_duty, max(lo) AS lo, max(med) AS med, max(hi) AS hi
    FROM (
        SELECT event_id, affiliation, outcome, caused_by, n, off_duty,
               CAST(NULL AS INTEGER) AS lo, CAST(NULL AS INTEGER) AS med,
               CAST(NULL AS INTEGER) AS hi
        FROM named
        UNION ALL
        SELECT event_id, affiliation, outcome, caused_by, 0, 0, lo, med, hi
        FROM reported
    ) AS both_kinds
    GROUP BY event_id, affiliation, outcome, caused_by
),
ranged AS (
    SELECT event_id, off_duty,
           CASE WHEN affiliation IN ('civilian', 'non_state_armed', 'unknown')
                     AND caused_by = 'state' THEN outcome END AS civilian_outcome,
           CASE WHEN affiliation = 'state_agent' THEN outcome END AS agent_outcome,
           CASE WHEN affiliation IN ('civilian', 'non_state_armed', 'unknown')
                     AND outcome = 'detained' AND caused_by = 'state' THEN 1 ELSE 0 END
               AS detained,
           CASE WHEN lo > n THEN lo ELSE n END AS low,
           CASE WHEN med > n THEN med ELSE n END AS best,
           CASE WHEN hi > n THEN hi ELSE n END AS high
    FROM cells
)
SELECT e.operation_id,
{columns}
FROM ranged r JOIN counted e ON e.id = r.event_id
GROUP BY e.operation_id
ORDER BY e.operation_id
"""

# Each checked indicator as the condition on a ranged cell and what it adds.
_FIGURES = {
    "civilians_killed_by_state": ("civilian_outcome = 'killed'", "{x}"),
    "civilians_injured_by_state": ("civilian_outcome = 'injured'", "{x}"),
    "agents_killed": ("agent_outcome = 'killed'", "{x} - off_duty"),
    "agents_injured": ("agent_outcome = 'injured'", "{x} - off_duty"),
    "detained": ("detained = 1", "{x}"),
    "agents_killed_off_duty": ("agent_outcome = 'killed'", "off_duty"),
}


def _sql() -> str:
    columns = []
    for key in CHECKED:
        condition, added = _FIGURES[key]
        for bound in ("low", "best", "high"):
            expression = added.format(x=bound)
            columns.append(
                f"    sum(CASE WHEN {condition} THEN {expression} ELSE 0 END) AS {key}_{bound}"
            )
    return SQL.format(columns=",\n".join(columns))


Figures = dict[str, dict[str, tuple[int, int, int]]]


def sql_figures(session, jit: bool = True) -> Figures:
    """Every operation's checked counts from the one hand-written statement. With `jit`
    False, PostgreSQL runs it without compiling it to machine code first, as the app runs its
    own statement (the setting is put back after); SQLite has no such thing."""
    out: Figures = {}
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql and not jit:
        previous = session.execute(text("SELECT current_setting('jit')")).scalar()
        session.execute(text("SELECT set_config('jit', 'off', true)"))
    for row in session.execute(text(_sql())).mappings():
        out[str(row["operation_id"])] = {
            key: tuple(int(row[f"{key}_{bound}"]) for bound in ("low", "best", "high"))
            for key in CHECKED
        }
    if postgresql and not jit:
        session.execute(text("SELECT set_config('jit', :previous, true)"), {"previous": previous})
    return out


def app_result(session, user) -> dict:
    from archive import indicators

    return indicators.grouped(session, user, indicators.parse_query({"group_by": "operation"}))


def app_figures(result: dict) -> Figures:
    """The checked counts out of indicators.grouped's answer, by operation id."""
    out: Figures = {}
    for group in result["groups"]:
        if group["key"] is None:
            continue
        figures = group["indicators"]
        out[str(group["key"])] = {
            key: tuple(int(figures[key][bound]) for bound in ("low", "best", "high"))
            for key in CHECKED
        }
    return out


def mismatches(app: Figures, sql: Figures) -> list[str]:
    """Where the app and the query disagree; an operation missing on one side counts as zeros."""
    zeros = {key: (0, 0, 0) for key in CHECKED}
    problems = []
    for operation in sorted(set(app) | set(sql), key=lambda k: (len(k), k)):
        ours, theirs = app.get(operation, zeros), sql.get(operation, zeros)
        for key in CHECKED:
            if ours[key] != theirs[key]:
                problems.append(
                    f"operation {operation} {key}: app (low, best, high) = {ours[key]},"
                    f" SQL = {theirs[key]}"
                )
    return problems


def best_time(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    """Seconds of the fastest of `repeat` runs, after one run to warm caches."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# --------------------------------------------------------------------------------------------
# Databases


def make_database(backend: str, workdir: str) -> tuple[str, Callable[[], None]]:
    """A fresh, migrated database of the backend: its URL and how to drop it."""
    if backend == "sqlite":
        path = os.path.join(workdir, "bench.sqlite3")
        url = f"sqlite:///{path}"

        def drop() -> None:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)

    else:
        name = f"constancia_bench_{os.getpid()}"
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


def admin(session) -> User:
    return session.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()


# --------------------------------------------------------------------------------------------
# Export memory, each export in a fresh process of its own


def export_peak(url: str, workdir: str, what: str, fmt: str) -> dict[str, float]:
    """Export `what` to a file in a spawned process; its rows, seconds and memory high-water.

    The child is a new interpreter (spawn), and reads its own VmHWM from /proc: ru_maxrss of a
    child started from a large parent can carry the parent's high-water across exec.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    path = os.path.join(workdir, f"export.{fmt}")
    child = context.Process(target=_export_child, args=(url, workdir, what, fmt, path, queue))
    child.start()
    result = queue.get()
    child.join()
    if child.exitcode != 0 or "error" in result:
        raise RuntimeError(f"export of {what} to {fmt} failed: {result.get('error')}")
    os.remove(path)
    return result


def _export_child(url, workdir, what, fmt, path, queue) -> None:
    try:
        queue.put(export_once(url, workdir, what, fmt, path))
    except BaseException as error:  # the parent must hear of it, not wait forever
        queue.put({"error": f"{type(error).__name__}: {error}"})
        raise


def export_once(url: str, workdir: str, what: str, fmt: str, path: str) -> dict[str, float]:
    """Export every record of `what` as the admin, through exports.write, into `path`."""
    from archive import exports

    app = make_app(url, workdir)
    with app.app_context(), _closing():
        user = admin(db.session)
        baseline = _memory_mb("VmRSS")
        start = time.perf_counter()
        with open(path, "wb") as out:
            rows = exports.write(db.session, user, what, fmt, {}, out)
        seconds = time.perf_counter() - start
        peak = _memory_mb("VmHWM")
    if fmt == "csv":  # the file holds what write() says it wrote
        written = _csv_rows(path)
        if written != rows:
            raise RuntimeError(f"write() answered {rows} rows, the CSV holds {written}")
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "baseline_mb": baseline,
        "bytes": os.path.getsize(path),
        "rows": rows,
    }


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


def _csv_rows(path: str) -> int:
    """Data rows in a CSV file, its header left out."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        return sum(1 for _ in csv.reader(f)) - 1


# --------------------------------------------------------------------------------------------
# The run


def run_backend(backend: str, scale: float, skip_export: bool, workdir: str) -> dict[str, Any]:
    url, drop = make_database(backend, workdir)
    try:
        app = make_app(url, workdir)
        with app.app_context(), _closing():
            started = time.perf_counter()
            made = fill(db.session, scale)
            filled = time.perf_counter() - started
            print(
                f"{backend}: filled {made['operations']:,} operations, {made['events']:,} events,"
                f" {made['victims']:,} victims, {made['casualty_counts']:,} casualty counts"
                f" in {filled:.1f} s",
                flush=True,
            )
            user = admin(db.session)
            check(db.session, user, backend)
            app_seconds = best_time(lambda: app_result(db.session, user))
            sql_seconds = best_time(lambda: sql_figures(db.session))
            if backend == "postgresql":
                # The app turns PostgreSQL's JIT off for its statement; the baseline gets
                # whichever is faster for it, with JIT as the server has it or without.
                without_jit = best_time(lambda: sql_figures(db.session, jit=False))
                print(
                    f"{backend}: SQL {sql_seconds:.2f} s with the server's JIT setting,"
                    f" {without_jit:.2f} s without; the faster is the baseline",
                    flush=True,
                )
                sql_seconds = min(sql_seconds, without_jit)
        out: dict[str, Any] = {
            "backend": backend,
            "made": made,
            "app": app_seconds,
            "sql": sql_seconds,
            "exports": [],
        }
        print(f"{backend}: app {app_seconds:.2f} s, SQL {sql_seconds:.2f} s", flush=True)
        if not skip_export:
            for fmt in ("csv", "xlsx"):
                result = export_peak(url, workdir, "victims", fmt)
                out["exports"].append({"format": fmt, **result})
                print(
                    f"{backend}: export victims {fmt}: {result['rows']:,} rows,"
                    f" {result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB",
                    flush=True,
                )
        return out
    finally:
        drop()


@contextlib.contextmanager
def _closing():
    """Inside an app context: end the session and close the engine's connections after."""
    try:
        yield
    finally:
        db.session.remove()
        db.engine.dispose()


def check(session, user, backend: str) -> None:
    """Stop the run, loudly, if the app's figures differ from the hand-written query's."""
    problems = mismatches(app_figures(app_result(session, user)), sql_figures(session))
    if problems:
        print(
            f"\n*** MISMATCH on {backend}: the app and the SQL query disagree ***", file=sys.stderr
        )
        for line in problems[:20]:
            print("  " + line, file=sys.stderr)
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more", file=sys.stderr)
        raise SystemExit(1)


def report(results: Iterable[dict[str, Any]]) -> None:
    results = list(results)
    print(f"\nEvery operation's indicators (best of {REPEAT}, after a warm-up run); seconds")
    print(f"{'backend':<12}{'app s':>10}{'SQL s':>10}{'ratio':>10}{'aim':>8}")
    for r in results:
        ratio = r["app"] / r["sql"] if r["sql"] else math.inf
        verdict = "ok" if ratio <= APP_AIM else "MISSED"
        print(
            f"{r['backend']:<12}{r['app']:>10.2f}{r['sql']:>10.2f}{ratio:>9.2f}x"
            f"{'≤' + str(APP_AIM) + 'x':>8} {verdict}"
        )
    exports = [(r["backend"], e) for r in results for e in r["exports"]]
    if exports:
        print("\nExporting every victim, each in a process of its own; peak resident memory")
        print(
            f"{'backend':<12}{'format':<8}{'rows':>11}{'seconds':>9}{'MB out':>8}"
            f"{'start MB':>10}{'peak MB':>9}{'aim':>9}"
        )
        for backend, e in exports:
            verdict = "ok" if e["peak_mb"] < MEMORY_AIM_MB else "MISSED"
            print(
                f"{backend:<12}{e['format']:<8}{e['rows']:>11,}{e['seconds']:>9.1f}"
                f"{e['bytes'] / 2**20:>8.0f}{e['baseline_mb']:>10.0f}{e['peak_mb']:>9.0f}"
                f"{'<' + str(MEMORY_AIM_MB):>9} {verdict}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the full sizes (0.01 for a quick run)"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--skip-export", action="store_true", help="time the indicators only")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = []
    with tempfile.TemporaryDirectory(prefix="constancia-bench-") as workdir:
        for backend in backends:
            results.append(run_backend(backend, args.scale, args.skip_export, workdir))
    report(results)
    missed = [r["backend"] for r in results if r["app"] > APP_AIM * r["sql"]]
    missed += [
        f"{r['backend']} {e['format']}"
        for r in results
        for e in r["exports"]
        if e["peak_mb"] >= MEMORY_AIM_MB
    ]
    if missed:
        print(f"\naims missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()
