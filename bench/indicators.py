"""Indicators through the app against one hand-written SQL query, and the memory of exports.

Fills a fresh archive (SQLite in a temporary file; PostgreSQL in a database made for the run
and dropped after) with 500 operations, 200,000 events, 1,000,000 victims and 200,000 casualty
counts (and citations of a third of the events and a twentieth of the victims, and population
and homicide figures per state and year), then prints, for each backend:

- the time to compute every operation's indicators through the app's code
  (`indicators.grouped(..., group_by=operation)`) beside one hand-written SQL statement that
  computes the same per-operation figures over the same tables: every indicator's best, low
  and high, and the events and sources behind it, for each operation and for the events in no
  operation. Their ratio is the aim (within 1.5x). The two must give the same figures, or the
  run stops with an error: the timing compares equal work. An earlier, smaller baseline, the
  six counts' low, best and high alone, is checked and timed too, and its ratio printed
  beside. Each is timed as the best of three runs after a warm-up. On PostgreSQL the app runs
  its statement without JIT compilation, so each hand-written statement is timed both with
  the server's JIT setting and without, and the faster of the two is its baseline;
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
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import flask_migrate  # noqa: E402
import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from sqlalchemy import JSON, event, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from archive import create_app  # noqa: E402
from archive.extensions import db  # noqa: E402
from archive.models import (  # noqa: E402
    Actor,
    CasualtyCount,
    Citation,
    ContextFigure,
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

    # Population and homicides per state and year (one figure per state and year, as the
    # app keeps them), from two official sources of their own: one state-year lacks its
    # population and another its homicides, so that operations touching it get no rate (or
    # no share) and the others get one. Some names are written in capitals and padded, as
    # figures loaded from a spreadsheet are, and match their places all the same.
    official = [n_sources + 1, n_sources + 2]
    writer.write(
        Source,
        [
            {
                "id": source_id,
                "kind": "official_statement",
                "title": title,
                "language": "es",
                "restricted": False,
                "deleted_at": None,
                **stamp,
            }
            for source_id, title in zip(official, ("Censo", "Anuario estadístico"), strict=True)
        ],
    )
    figures = []
    for state in range(1, 25):
        for year in range(2015, 2023):
            figures.append(
                {
                    "id": len(figures) + 1,
                    "country": "VE",
                    "admin1": f"Estado {state}" if state % 5 else f" ESTADO {state} ",
                    "admin2": None,
                    "year": year,
                    "population": None
                    if (state, year) == (1, 2015)
                    else rng.randrange(300_000, 5_000_000),
                    "homicides": None if (state, year) == (2, 2022) else rng.randrange(50, 2_500),
                    "source_id": official[state % 2],
                    "deleted_at": None,
                    **stamp,
                }
            )
    writer.write(ContextFigure, figures)

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
    victim_id = count_id = citation_id = 0

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
        # Citations: a third of the events and a twentieth of the victims cite a source,
        # a few of them deleted since.
        citations = []
        for target, rows, share in (("event_id", events, 0.33), ("victim_id", victims, 0.05)):
            for row in rows:
                if rng.random() < share:
                    citation_id += 1
                    citations.append(
                        {
                            "id": citation_id,
                            "event_id": None,
                            "victim_id": None,
                            target: row["id"],
                            "source_id": 1 + rng.randrange(n_sources),
                            "deleted_at": gone if rng.random() < 0.02 else None,
                            **stamp,
                        }
                    )
        writer.write(Event, events)
        writer.write(EventActor, event_actors)
        writer.write(Victim, victims)
        writer.write(CasualtyCount, counts)
        writer.write(Citation, citations)
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
            # Settle the freshly copied tables before anything is timed: VACUUM sets their
            # visibility map and hint bits, which autovacuum would otherwise do in the middle
            # of whichever timing came first (it runs outside a transaction).
            engine = session.get_bind()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            return
        session.execute(text("ANALYZE"))
        session.commit()


# --------------------------------------------------------------------------------------------
# The hand-written query
#
# One statement, written from DOMAIN.md section 4 and the app's stated definitions (of the
# events and sources behind a figure, below), not from its code, that computes for each
# operation (and for the events in no operation, as group 0) every figure the app answers
# for it: each indicator's best, low and high, and the events and sources behind it. Only
# the words around the figures (thresholds, flags, reasons) are left to the
# app. The run stops if the two disagree on any figure, so that the timing compares equal work.
#
# The rule, per event and (affiliation, outcome, caused_by) cell: n live victim records, and
# the live casualty counts of live sources; low/best/high = max(n, min/lower median/max of
# the counts), n without counts; the lower median is the count ranked (m + 1) / 2 of m, from
# the smallest. Agents recorded off duty leave the agents' cells and are counted apart. Cells
# make up the quantities below; an operation adds up its verified, live events' quantities,
# and its ratios divide them (a low over the other's high, a high over its low).
#
# The events behind a figure are those with a cell in any of its quantities; its sources, the
# live sources of the counts in those cells, of the citations of victims in them, and of the
# citations of events that have such a cell (for agents killed off duty: of events with some).

# The quantities, numbered (a cell's code is its quantity × 16 + its affiliation × 4 + its
# cause, so that cells group and compare as integers), each with the cells it adds up: a
# condition on a victim's or count's fields.
_CIVILIANS = "IN ('civilian', 'non_state_armed', 'unknown')"
QUANTITIES = {
    "ck_civilian": (1, "outcome = 'killed' AND caused_by = 'state' AND affiliation = 'civilian'"),
    "ck_nsa": (
        2,
        "outcome = 'killed' AND caused_by = 'state' AND affiliation = 'non_state_armed'",
    ),
    "ck_unknown": (3, "outcome = 'killed' AND caused_by = 'state' AND affiliation = 'unknown'"),
    "ci": (4, f"outcome = 'injured' AND caused_by = 'state' AND affiliation {_CIVILIANS}"),
    "ak": (5, "outcome = 'killed' AND affiliation = 'state_agent'"),
    "ai": (6, "outcome = 'injured' AND affiliation = 'state_agent'"),
    "det": (7, f"outcome = 'detained' AND caused_by = 'state' AND affiliation {_CIVILIANS}"),
}
KILLED = ("ck_civilian", "ck_nsa", "ck_unknown")
AGENTS = ("ak", "ai")
# Sets of quantities an indicator rests on (its events and sources).
SETS = {
    "ck": KILLED,
    "ci": ("ci",),
    "ak": ("ak",),
    "ai": ("ai",),
    "det": ("det",),
    "ck_ak": (*KILLED, "ak"),
    "ck_ci": (*KILLED, "ci"),
    "ak_ai": AGENTS,
    "ck_ak_ai": (*KILLED, *AGENTS),
    "all": (*KILLED, "ci", *AGENTS),
    "ck_det": (*KILLED, "det"),
    "dwi": ("ck_civilian", "ck_nsa"),
}
BOUNDS = ("low", "best", "high")

# Cells are made per event, then each event keeps only what its flags need (which quantities
# it has figures for, as bits 1 << quantity; its civilians killed; its agents killed or
# injured); the quantities are added up per operation, quantity and subset of events before
# they become columns. What an event is in (its operation, subsets) comes along from `scope`
# in every branch that joins it, so that nothing joins back to the events.
SQL = """
WITH scope AS (
    SELECT e.id AS event_id, coalesce(e.operation_id, 0) AS op,
           CASE WHEN e.agents_deployed > 0 THEN e.agents_deployed ELSE 0 END AS deployed,
           CASE WHEN e.agents_deployed > 0 THEN 1 ELSE 0 END AS dep,
           CASE WHEN p.admin1 IS NOT NULL AND e.start_date IS NOT NULL THEN 1 ELSE 0 END
               AS placed,
           upper(coalesce(p.country, '')) AS country, lower(trim(p.admin1)) AS admin1,
           {year} AS year
    FROM events e LEFT JOIN places p ON p.id = e.place_id
    WHERE e.deleted_at IS NULL AND e.status = 'verified'
),
named AS (
    SELECT v.event_id, {cell_v} AS cell, count(*) AS n,
           sum(CASE WHEN v.affiliation = 'state_agent' AND v.on_duty = 'false'
                    THEN 1 ELSE 0 END) AS off
    FROM victims v JOIN scope s ON s.event_id = v.event_id
    WHERE v.deleted_at IS NULL
    GROUP BY v.event_id, {cell_v}
),
counted AS (
    SELECT c.event_id, s.op, s.dep, s.placed, {cell_c} AS cell, c.count, c.source_id
    FROM casualty_counts c
    JOIN scope s ON s.event_id = c.event_id
    JOIN sources src ON src.id = c.source_id AND src.deleted_at IS NULL
    WHERE c.deleted_at IS NULL
),
reported AS (
    SELECT event_id, cell, min(count) AS lo,
           max(CASE WHEN k = (m + 1) / 2 THEN count END) AS med, max(count) AS hi
    FROM (
        SELECT event_id, cell, count,
               row_number() OVER (PARTITION BY event_id, cell ORDER BY count) AS k,
               count(*) OVER (PARTITION BY event_id, cell) AS m
        FROM counted
        WHERE cell IS NOT NULL
    ) AS ranked
    GROUP BY event_id, cell
),
cells AS (
    SELECT event_id, cell / 16 AS q,
           CAST(CASE WHEN max(lo) > max(n) THEN max(lo) ELSE max(n) END
                - CASE WHEN cell / 16 IN (5, 6) THEN max(off) ELSE 0 END AS INTEGER) AS low,
           CAST(CASE WHEN max(med) > max(n) THEN max(med) ELSE max(n) END
                - CASE WHEN cell / 16 IN (5, 6) THEN max(off) ELSE 0 END AS INTEGER) AS best,
           CAST(CASE WHEN max(hi) > max(n) THEN max(hi) ELSE max(n) END
                - CASE WHEN cell / 16 IN (5, 6) THEN max(off) ELSE 0 END AS INTEGER) AS high,
           CAST(CASE WHEN cell / 16 = 5 THEN max(off) ELSE 0 END AS INTEGER) AS akoff
    FROM (
        SELECT event_id, cell, n, off, NULL AS lo, NULL AS med, NULL AS hi
        FROM named WHERE cell IS NOT NULL
        UNION ALL
        SELECT event_id, cell, 0, 0, lo, med, hi FROM reported
    ) AS both_kinds
    GROUP BY event_id, cell
),
per_event AS (
    SELECT event_id, sum(DISTINCT 1 << q) AS mask,
{per_event},
           sum(akoff) AS akoff
    FROM cells
    GROUP BY event_id
),
summed AS (
    SELECT s.op, c.q, s.dep, s.placed,
           sum(c.low) AS low, sum(c.best) AS best, sum(c.high) AS high, sum(c.akoff) AS akoff
    FROM cells c JOIN scope s ON s.event_id = c.event_id
    GROUP BY s.op, c.q, s.dep, s.placed
),
quantities AS (
    SELECT op,
{quantities}
    FROM summed
    GROUP BY op
),
events_of AS (
    SELECT s.op, count(*) AS n_events, sum(s.deployed) AS deployed, sum(s.dep) AS n_deployed,
           sum(s.placed) AS n_placed,
{events_of}
    FROM scope s LEFT JOIN per_event pe ON pe.event_id = s.event_id
    GROUP BY s.op
),
per_op AS (
    SELECT e.*,
{per_op}
    FROM events_of e LEFT JOIN quantities qn ON qn.op = e.op
),
backing AS (
    SELECT op, dep, placed, source_id, 1 << (cell / 16) AS bits, 0 AS offs
    FROM counted
    UNION ALL
    SELECT s.op, s.dep, s.placed, ct.source_id, 1 << ({quantity_v}), 0
    FROM citations ct
    JOIN victims v ON v.id = ct.victim_id AND v.deleted_at IS NULL
    JOIN scope s ON s.event_id = v.event_id
    JOIN sources src ON src.id = ct.source_id AND src.deleted_at IS NULL
    WHERE ct.deleted_at IS NULL
    UNION ALL
    SELECT s.op, s.dep, s.placed, ct.source_id, pe.mask,
           CASE WHEN pe.akoff > 0 THEN 1 ELSE 0 END
    FROM citations ct
    JOIN per_event pe ON pe.event_id = ct.event_id
    JOIN scope s ON s.event_id = ct.event_id
    JOIN sources src ON src.id = ct.source_id AND src.deleted_at IS NULL
    WHERE ct.deleted_at IS NULL
),
per_source AS (
    SELECT op, source_id,
{per_source}
    FROM backing
    GROUP BY op, source_id
),
sources_of AS (
    SELECT op,
{sources_of}
    FROM per_source
    GROUP BY op
),
context AS (
    SELECT upper(f.country) AS country, lower(trim(f.admin1)) AS admin1, f.year,
           f.population, f.homicides, f.source_id
    FROM context_figures f
    JOIN sources src ON src.id = f.source_id AND src.deleted_at IS NULL
    WHERE f.deleted_at IS NULL AND coalesce(trim(f.admin2), '') = ''
),
regions AS (
    SELECT DISTINCT op, country, admin1, year FROM scope WHERE placed = 1
),
regional AS (
    SELECT r.op, count(*) AS regions,
           count(c.population) AS with_population, sum(c.population) AS population,
           count(c.homicides) AS with_homicides, sum(c.homicides) AS homicides
    FROM regions r
    LEFT JOIN context c ON c.country = r.country AND c.admin1 = r.admin1 AND c.year = r.year
    GROUP BY r.op
),
context_sources AS (
    SELECT op, count(DISTINCT CASE WHEN population = 1 THEN source_id END)
               AS population_sources,
           count(DISTINCT CASE WHEN homicides = 1 THEN source_id END) AS homicides_sources
    FROM (
        SELECT op, source_id, 1 AS population, 1 AS homicides
        FROM per_source WHERE s_placed = 1
        UNION ALL
        SELECT r.op, c.source_id,
               CASE WHEN c.population IS NOT NULL THEN 1 ELSE 0 END,
               CASE WHEN c.homicides IS NOT NULL THEN 1 ELSE 0 END
        FROM regions r JOIN context c
             ON c.country = r.country AND c.admin1 = r.admin1 AND c.year = r.year
    ) AS either
    GROUP BY op
)
SELECT o.op,
{figures}
FROM per_op o
LEFT JOIN sources_of so ON so.op = o.op
LEFT JOIN regional rg ON rg.op = o.op
LEFT JOIN context_sources cs ON cs.op = o.op
ORDER BY o.op
"""

YEAR = {
    "sqlite": "CAST(strftime('%Y', e.start_date) AS INTEGER)",
    "postgresql": "CAST(extract(year FROM e.start_date) AS INTEGER)",
}
AFFILIATION_NUMBERS = {"civilian": 0, "non_state_armed": 1, "unknown": 2, "state_agent": 3}
CAUSE_NUMBERS = {"state": 0, "non_state": 1, "unknown": 2}


def _qualified(alias: str, condition: str) -> str:
    return re.sub(r"\b(outcome|caused_by|affiliation)\b", alias + r".\1", condition)


def _quantity(alias: str) -> str:
    """The number of the quantity a victim's or count's row (`alias`) is in (NULL: none)."""
    whens = " ".join(
        f"WHEN {_qualified(alias, condition)} THEN {number}"
        for number, condition in QUANTITIES.values()
    )
    return f"CASE {whens} END"


def _cell(alias: str) -> str:
    """A row's cell as an integer: its quantity × 16 + affiliation × 4 + cause (NULL: none)."""

    def numbered(column: str, numbers: dict[str, int]) -> str:
        whens = " ".join(f"WHEN '{k}' THEN {v}" for k, v in numbers.items())
        return f"CASE {alias}.{column} {whens} END"

    return (
        f"({_quantity(alias)}) * 16 + {numbered('affiliation', AFFILIATION_NUMBERS)} * 4"
        f" + {numbered('caused_by', CAUSE_NUMBERS)}"
    )


def _bits(names: Sequence[str]) -> int:
    """The bits (1 << quantity) of the quantities `names`."""
    return sum(1 << QUANTITIES[name][0] for name in names)


def _div(num: str, den: str, factor: str = "") -> str:
    """num ÷ den as a float, NULL where den is 0 (or either is NULL)."""
    return f"CASE WHEN {den} = 0 THEN NULL ELSE CAST({num} AS DOUBLE PRECISION) / {den} END" + (
        f" * {factor}" if factor else ""
    )


def _ratio(num: str, den: str, factor: str = "") -> dict[str, str]:
    """A ratio of two ranged sums: best ÷ best, low ÷ the other's high, high ÷ its low."""
    return {
        "best": _div(f"o.{num}_best", f"o.{den}_best", factor),
        "low": _div(f"o.{num}_low", f"o.{den}_high", factor),
        "high": _div(f"o.{num}_high", f"o.{den}_low", factor),
    }


def _figures() -> dict[str, dict[str, str]]:
    """Each indicator's best, low, high, events and sources as expressions over an
    operation's sums (o), sources (so), regions (rg) and context sources (cs)."""
    out: dict[str, dict[str, str]] = {}

    def count(key, quantity, behind):
        out[key] = {b: f"o.{quantity}_{b}" for b in BOUNDS}
        out[key] |= {"events": f"o.ev_{behind}", "sources": f"so.s_{behind}"}

    def ratio(key, num, den, behind):
        out[key] = _ratio(num, den) | {"events": f"o.ev_{behind}", "sources": f"so.s_{behind}"}

    count("civilians_killed_by_state", "ck", "ck")
    count("civilians_injured_by_state", "ci", "ci")
    count("agents_killed", "ak", "ak")
    count("agents_injured", "ai", "ai")
    count("detained", "det", "det")
    ratio("civilian_agent_death_ratio", "ck", "ak", "ck_ak")
    ratio("lethality_index", "ck", "ci", "ck_ci")
    ratio("agent_lethality", "ak", "ai", "ak_ai")
    index, agents = out["lethality_index"], out["agent_lethality"]
    out["lethality_differential"] = {
        "best": _div(f"({index['best']})", f"({agents['best']})"),
        "low": _div(f"({index['low']})", f"({agents['high']})"),
        "high": _div(f"({index['high']})", f"({agents['low']})"),
        "events": "o.ev_all",
        "sources": "so.s_all",
    }
    out["civilians_killed_per_event"] = {b: _div(f"o.ck_{b}", "o.n_events") for b in BOUNDS} | {
        "events": "o.n_events",
        "sources": "so.s_ck",
    }
    share = _ratio("one_sided", "kills", "100")
    share["high"] = f"CASE WHEN ({share['high']}) > 100 THEN 100.0 ELSE ({share['high']}) END"
    out["one_sided_event_share"] = share | {"events": "o.ev_ck", "sources": "so.s_ck_ak_ai"}
    out["deaths_per_1000_agents_deployed"] = {
        b: _div(f"o.ck_deployed_{b}", "o.deployed", "1000") for b in BOUNDS
    } | {"events": "o.n_deployed", "sources": "so.s_deployed"}
    ratio("killed_per_detained", "ck", "det", "ck_det")
    for key, figure, factor in (
        ("rate_per_100k", "population", "100000"),
        ("share_of_homicides", "homicides", "100"),
    ):
        # Only where every region-year of the operation's placed events has the figure.
        known = f"coalesce(rg.with_{figure}, 0) = coalesce(rg.regions, 0) AND o.n_placed > 0"
        out[key] = {
            b: f"CASE WHEN {known} THEN {_div(f'o.ck_placed_{b}', f'rg.{figure}', factor)} END"
            for b in BOUNDS
        } | {
            "events": "o.n_placed",
            "sources": f"CASE WHEN {known} THEN coalesce(cs.{figure}_sources, 0) ELSE 0 END",
        }
    civilians, armed = "ck_civilian", "ck_nsa"
    out["dirty_war_index"] = {
        "best": _div(f"o.{civilians}_best", f"(o.{civilians}_best + o.{armed}_best)", "100"),
        "low": _div(f"o.{civilians}_low", f"(o.{civilians}_low + o.{armed}_high)", "100"),
        "high": _div(f"o.{civilians}_high", f"(o.{civilians}_high + o.{armed}_low)", "100"),
        "events": "o.ev_dwi",
        "sources": "so.s_dwi",
    }
    out["agents_killed_off_duty"] = {b: "o.akoff" for b in BOUNDS} | {
        "events": "o.ev_akoff",
        "sources": "so.s_akoff",
    }
    return out


FIELDS = ("best", "low", "high", "events", "sources")


def _sql(dialect: str) -> str:
    killed = "q <= 3"  # the numbers of KILLED
    agents = "q IN (5, 6)"  # of AGENTS
    per_event = [
        f"           sum(CASE WHEN {condition} THEN {b} ELSE 0 END) AS {name}_{b}"
        for name, condition in (("ck", killed), ("agents", agents))
        for b in BOUNDS
    ]
    quantities = [
        f"           sum(CASE WHEN q = {number} THEN {b} ELSE 0 END) AS {name}_{b}"
        for name, (number, _) in QUANTITIES.items()
        for b in BOUNDS
    ]
    quantities += [
        f"           sum(CASE WHEN {killed} THEN {b} ELSE 0 END) AS ck_{b}" for b in BOUNDS
    ]
    quantities.append("           sum(akoff) AS akoff")
    quantities += [
        f"           sum(CASE WHEN {killed} AND {subset} = 1 THEN {b} ELSE 0 END) AS ck_{name}_{b}"
        for name, subset in (("deployed", "dep"), ("placed", "placed"))
        for b in BOUNDS
    ]
    summed = [line.rsplit(" AS ", 1)[1] for line in quantities]
    per_op = [f"           coalesce(qn.{c}, 0) AS {c}" for c in summed]
    events_of = [
        f"           sum(CASE WHEN (pe.mask & {_bits(names)}) <> 0 THEN 1 ELSE 0 END) AS ev_{name}"
        for name, names in SETS.items()
    ]
    events_of.append("           sum(CASE WHEN pe.akoff > 0 THEN 1 ELSE 0 END) AS ev_akoff")
    events_of += [
        f"           sum(CASE WHEN pe.ck_{b} > 0 THEN 1 ELSE 0 END) AS kills_{b}" for b in BOUNDS
    ]
    # One-sided: civilians killed and no agent killed or injured; at the low end by the
    # most agents any source reports, at the high end by the fewest.
    events_of += [
        f"           sum(CASE WHEN pe.ck_{b} > 0 AND pe.agents_{other} = 0 THEN 1 ELSE 0 END)"
        f" AS one_sided_{b}"
        for b, other in (("low", "high"), ("best", "best"), ("high", "low"))
    ]
    # A backing row speaks to a set when its bits (its count's or victim's quantity, or all
    # the quantities its cited event has figures for) meet the set's.
    backs = {name: f"(bits & {_bits(names)}) <> 0" for name, names in SETS.items()}
    backs["akoff"] = "offs = 1"
    backs["deployed"] = f"dep = 1 AND {backs['ck']}"
    backs["placed"] = f"placed = 1 AND {backs['ck']}"
    per_source = [
        f"           max(CASE WHEN {condition} THEN 1 ELSE 0 END) AS s_{name}"
        for name, condition in backs.items()
    ]
    sources_of = [f"           sum(s_{name}) AS s_{name}" for name in backs]
    figures = [
        f"       {expression} AS {key}__{field}"
        for key, values in _figures().items()
        for field, expression in values.items()
    ]
    return SQL.format(
        year=YEAR[dialect],
        cell_v=_cell("v"),
        cell_c=_cell("c"),
        quantity_v=_quantity("v"),
        per_event=",\n".join(per_event),
        quantities=",\n".join(quantities),
        events_of=",\n".join(events_of),
        per_op=",\n".join(per_op),
        per_source=",\n".join(per_source),
        sources_of=",\n".join(sources_of),
        figures=",\n".join(figures),
    )


# The earlier baseline, kept to show what the counts alone cost: the low, best and high of the
# six counts, per operation, by the same rule.
COUNTS_SQL = """
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

# The counts it computes: the condition on a ranged cell and what it adds.
COUNTED = {
    "civilians_killed_by_state": ("civilian_outcome = 'killed'", "{x}"),
    "civilians_injured_by_state": ("civilian_outcome = 'injured'", "{x}"),
    "agents_killed": ("agent_outcome = 'killed'", "{x} - off_duty"),
    "agents_injured": ("agent_outcome = 'injured'", "{x} - off_duty"),
    "detained": ("detained = 1", "{x}"),
    "agents_killed_off_duty": ("agent_outcome = 'killed'", "off_duty"),
}


def _counts_sql() -> str:
    columns = [
        f"    sum(CASE WHEN {condition} THEN {added.format(x=b)} ELSE 0 END) AS {key}_{b}"
        for key, (condition, added) in COUNTED.items()
        for b in BOUNDS
    ]
    return COUNTS_SQL.format(columns=",\n".join(columns))


# {group: {indicator: {"best", "low", "high", "events", "sources": value}}}; the group is the
# operation's id as text, "None" for the events in no operation.
Figures = dict[str, dict[str, dict[str, Any]]]


@contextlib.contextmanager
def _jit(session, on: bool):
    """With `on` False, PostgreSQL runs statements without compiling them to machine code
    first, as the app runs its own (the setting is put back after); SQLite has no such thing."""
    if on or session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = session.execute(text("SELECT current_setting('jit')")).scalar()
    session.execute(text("SELECT set_config('jit', 'off', true)"))
    yield
    session.execute(text("SELECT set_config('jit', :previous, true)"), {"previous": previous})


def sql_figures(session, jit: bool = True) -> Figures:
    """Every operation's figures from the one hand-written statement."""
    statement = text(_sql(session.get_bind().dialect.name))
    with _jit(session, jit):
        rows = session.execute(statement).mappings().all()
    return {
        str(row["op"] or None): {
            key: {field: _number(row[f"{key}__{field}"]) for field in FIELDS} for key in _KEYS
        }
        for row in rows
    }


def counts_figures(session, jit: bool = True) -> Figures:
    """The six counts' low, best and high per operation, from the earlier baseline."""
    with _jit(session, jit):
        rows = session.execute(text(_counts_sql())).mappings().all()
    return {
        str(row["operation_id"]): {
            key: {b: int(row[f"{key}_{b}"]) for b in BOUNDS} for key in COUNTED
        }
        for row in rows
    }


_KEYS = tuple(_figures())


def _number(value):
    """A figure from the database as Python compares it: whole numbers as int (PostgreSQL
    gives its sums as decimals), fractions as float, NULL as None."""
    if value is None:
        return None
    if isinstance(value, float):
        return value
    return int(value) if value == int(value) else float(value)


def app_result(session, user) -> dict:
    from archive import indicators

    return indicators.grouped(session, user, indicators.parse_query({"group_by": "operation"}))


def app_statements(session, user) -> list[tuple[str, Any]]:
    """The SQL the app sends the database for every operation's indicators, with its
    parameters, in order: to time the app's own statements without the app around them."""
    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        app_result(session, user)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def run_bare(session, statements: Sequence[tuple[str, Any]]) -> int:
    """Send `statements` straight to the driver, reading every row; the rows read."""
    cursor = session.connection().connection.driver_connection.cursor()
    rows = 0
    try:
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            if cursor.description is not None:
                rows += len(cursor.fetchall())
    finally:
        cursor.close()
    return rows


def app_figures(result: dict) -> Figures:
    """The figures out of indicators.grouped's answer, by operation id ("None": no operation)."""
    return {
        str(group["key"]): {
            key: {field: figures[field] for field in FIELDS}
            for key, figures in group["indicators"].items()
        }
        for group in result["groups"]
    }


def mismatches(app: Figures, sql: Figures) -> list[str]:
    """Where the app and the query disagree, figure by figure (fractions to 1 part in 10^9);
    an operation or figure missing on one side is a disagreement too."""
    problems = []
    for group in sorted(set(app) | set(sql), key=lambda k: (len(k), k)):
        ours, theirs = app.get(group), sql.get(group)
        if ours is None or theirs is None:
            side = "the app" if ours is None else "the SQL"
            problems.append(f"operation {group}: missing from {side}")
            continue
        for key in sorted(set(ours) | set(theirs)):
            a, b = ours.get(key, {}), theirs.get(key, {})
            if not all(_same(a.get(field), b.get(field)) for field in FIELDS):
                shown = [
                    f"{field} {a.get(field)!r} vs {b.get(field)!r}"
                    for field in FIELDS
                    if not _same(a.get(field), b.get(field))
                ]
                problems.append(f"operation {group} {key}: app vs SQL: {', '.join(shown)}")
    return problems


def counts_mismatches(app: Figures, counts: Figures) -> list[str]:
    """Where the earlier baseline's counts differ from the app's (operations without counted
    events give zeros on its side)."""
    zeros = {b: 0 for b in BOUNDS}
    problems = []
    for group in sorted(set(app) - {"None"} | set(counts), key=lambda k: (len(k), k)):
        for key in COUNTED:
            ours = {b: app.get(group, {}).get(key, zeros)[b] for b in BOUNDS}
            theirs = counts.get(group, {}).get(key, zeros)
            if ours != theirs:
                problems.append(f"operation {group} {key}: app {ours}, counts query {theirs}")
    return problems


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


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
            statements = app_statements(db.session, user)
            bare_seconds = best_time(lambda: run_bare(db.session, statements))
            sql_seconds = _baseline(db.session, backend, "SQL", sql_figures)
            counts_seconds = _baseline(db.session, backend, "counts-only SQL", counts_figures)
        out: dict[str, Any] = {
            "backend": backend,
            "made": made,
            "app": app_seconds,
            "sql": sql_seconds,
            "counts_sql": counts_seconds,
            "bare": bare_seconds,
            "exports": [],
        }
        print(
            f"{backend}: app {app_seconds:.2f} s, SQL {sql_seconds:.2f} s,"
            f" counts-only SQL {counts_seconds:.2f} s,"
            f" the app's own SQL alone {bare_seconds:.2f} s",
            flush=True,
        )
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


def _baseline(session, backend: str, name: str, figures: Callable[..., Figures]) -> float:
    """The best time of a hand-written statement. The app turns PostgreSQL's JIT off for its
    statement; a baseline gets whichever is faster for it, with JIT as the server has it or
    without."""
    seconds = best_time(lambda: figures(session))
    if backend == "postgresql":
        without_jit = best_time(lambda: figures(session, jit=False))
        print(
            f"{backend}: {name} {seconds:.2f} s with the server's JIT setting,"
            f" {without_jit:.2f} s without; the faster is the baseline",
            flush=True,
        )
        seconds = min(seconds, without_jit)
    return seconds


@contextlib.contextmanager
def _closing():
    """Inside an app context: end the session and close the engine's connections after."""
    try:
        yield
    finally:
        db.session.remove()
        db.engine.dispose()


def check(session, user, backend: str) -> None:
    """Stop the run, loudly, if the app's figures differ from either hand-written query's."""
    app = app_figures(app_result(session, user))
    for name, problems in (
        ("the SQL query", mismatches(app, sql_figures(session))),
        ("the counts-only SQL query", counts_mismatches(app, counts_figures(session))),
    ):
        if not problems:
            continue
        print(f"\n*** MISMATCH on {backend}: the app and {name} disagree ***", file=sys.stderr)
        for line in problems[:20]:
            print("  " + line, file=sys.stderr)
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more", file=sys.stderr)
        raise SystemExit(1)


def report(results: Iterable[dict[str, Any]]) -> None:
    results = list(results)
    print(f"\nEvery operation's indicators (best of {REPEAT}, after a warm-up run); seconds")
    print(
        f"{'backend':<12}{'app s':>10}{'SQL s':>10}{'ratio':>10}{'aim':>8}"
        f"{'':<8}{'counts-only SQL s':>18}{'ratio':>8}"
    )
    for r in results:
        ratio = r["app"] / r["sql"] if r["sql"] else math.inf
        counts_ratio = r["app"] / r["counts_sql"] if r["counts_sql"] else math.inf
        verdict = "ok" if ratio <= APP_AIM else "MISSED"
        print(
            f"{r['backend']:<12}{r['app']:>10.2f}{r['sql']:>10.2f}{ratio:>9.2f}x"
            f"{'≤' + str(APP_AIM) + 'x':>8} {verdict:<7}"
            f"{r['counts_sql']:>18.2f}{counts_ratio:>7.2f}x"
        )
    print(
        "(SQL: one statement computing every figure the app gives each operation; counts-only"
        " SQL: the six counts' low, best and high alone, the earlier baseline.)"
    )
    print("\nThe app's own SQL sent straight to the driver, without the app around it; seconds")
    print(f"{'backend':<12}{'app s':>10}{'its SQL s':>11}{'ratio':>9}")
    for r in results:
        print(
            f"{r['backend']:<12}{r['app']:>10.2f}{r['bare']:>11.2f}"
            f"{r['app'] / r['bare'] if r['bare'] else math.inf:>8.2f}x"
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
