"""bench/indicators.py at a tiny size: its archive fills, and the app's figures equal its query's.

The benchmark times the app against a hand-written SQL statement only when both give the same
figures; these tests keep that comparison (and the statement's reading of DOMAIN.md section 4)
from rotting while the benchmark itself stays out of the suite.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from archive.extensions import db
from archive.models import CasualtyCount, Event, User, Victim

PATH = Path(__file__).parent.parent / "bench" / "indicators.py"
_spec = importlib.util.spec_from_file_location("bench_indicators", PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

TINY = {"operations": 12, "events": 400, "victims": 2000, "casualty_counts": 400}


def test_app_figures_equal_the_hand_written_query(app):
    with app.app_context():
        made = bench.fill(db.session, sizes=TINY)
        user = bench.admin(db.session)
        app_figures = bench.app_figures(bench.app_result(db.session, user))
        sql_figures = bench.sql_figures(db.session)
        counts = bench.counts_figures(db.session)
        stored = {
            "events": db.session.scalar(select(func.count()).select_from(Event)),
            "victims": db.session.scalar(select(func.count()).select_from(Victim)),
            "casualty_counts": db.session.scalar(select(func.count()).select_from(CasualtyCount)),
        }
    assert made == TINY
    assert stored == {k: TINY[k] for k in stored}
    # Every operation, and the events in no operation, with every indicator the app gives.
    assert len(sql_figures) == TINY["operations"] + 1 and "None" in sql_figures
    assert all(set(f) == set(app_figures["None"]) for f in sql_figures.values())
    assert bench.mismatches(app_figures, sql_figures) == []
    assert bench.counts_mismatches(app_figures, counts) == []
    # Every figure is exercised: each indicator has a number somewhere, sources widen the
    # ranges, and both the rate and its absence (a state-year without population) occur.
    groups = list(sql_figures.values())
    for key in bench._KEYS:
        assert any(g[key]["best"] for g in groups), key
        assert any(g[key]["sources"] for g in groups), key
    assert any(
        g["civilians_killed_by_state"]["low"] < g["civilians_killed_by_state"]["high"]
        for g in groups
    )
    rates = [g["rate_per_100k"]["best"] for g in groups]
    assert None in rates and any(r is not None for r in rates)


def test_the_query_counts_by_the_domain_rule(app, factory):
    """One operation's figures by hand: disagreeing sources, drafts, deletions, off duty."""
    operation = factory.operation(name="Operación Mano de Hierro")
    event = factory.event(operation_id=operation)
    factory.citation(factory.source(), "event", event)
    factory.update("events", event, status="verified")
    draft = factory.event(operation_id=operation, status="draft")

    def victims(event_id, n, **fields):
        return [factory.victim(event_id=event_id, **fields) for _ in range(n)]

    civilians = dict(affiliation="civilian", outcome="killed", caused_by="state")
    victims(event, 2, **civilians)
    victims(event, 1, identity_restricted=True, **civilians)
    gone = victims(event, 1, **civilians)[0]
    factory.delete("victims", gone)
    victims(draft, 4, **civilians)
    agents = dict(affiliation="state_agent", outcome="killed", caused_by="non_state")
    victims(event, 1, on_duty="true", **agents)
    victims(event, 1, on_duty="false", **agents)
    victims(event, 1, affiliation="civilian", outcome="detained", caused_by="state")

    def count(event_id, figure, cell=("civilian", "killed", "state")):
        affiliation, outcome, caused_by = cell
        return factory.casualty_count(
            event_id=event_id,
            source_id=factory.source(),
            affiliation=affiliation,
            outcome=outcome,
            caused_by=caused_by,
            count=figure,
        )

    # Civilians killed: n = 3 live records; sources 2, 7, 5, 9 (lower median 5) and a
    # deleted count of 100, which does not count.
    for figure in (2, 7, 5, 9):
        count(event, figure)
    factory.delete("casualty-counts", count(event, 100))
    count(draft, 40)
    # Agents killed: n = 2 (one off duty); sources say 4 and 3.
    count(event, 4, ("state_agent", "killed", "non_state"))
    count(event, 3, ("state_agent", "killed", "non_state"))

    with app.app_context():
        figures = bench.sql_figures(db.session)[str(operation)]
        counts = bench.counts_figures(db.session)[str(operation)]
        user = User(email="hand@example.org", role="admin", active=True)
        app_figures = bench.app_figures(bench.app_result(db.session, user))

    def ranged(key):
        return tuple(figures[key][b] for b in ("low", "best", "high"))

    assert ranged("civilians_killed_by_state") == (3, 5, 9)
    # max(2, 3), max(2, 3: the lower median of 3 and 4), max(2, 4), less the one off duty.
    assert ranged("agents_killed") == (2, 2, 3)
    assert ranged("agents_killed_off_duty") == (1, 1, 1)
    assert ranged("detained") == (1, 1, 1)
    assert ranged("civilians_injured_by_state") == (0, 0, 0)
    assert {key: tuple(counts[key].values()) for key in counts} == {
        key: ranged(key) for key in bench.COUNTED
    }
    # 5 ÷ 2; 3 ÷ 3; 9 ÷ 2.
    assert ranged("civilian_agent_death_ratio") == (1.0, 2.5, 4.5)
    assert figures["lethality_index"]["best"] is None  # no civilians injured
    assert ranged("one_sided_event_share") == (0.0, 0.0, 0.0)  # agents died there too
    # One verified event; the four live counts' sources and the event's citation back the
    # civilians killed; only the event's citation backs the agent killed off duty.
    assert figures["civilians_killed_by_state"]["events"] == 1
    assert figures["civilians_killed_by_state"]["sources"] == 5
    assert figures["agents_killed_off_duty"]["sources"] == 1
    assert figures["rate_per_100k"] == {
        "best": None,
        "low": None,
        "high": None,
        "events": 0,
        "sources": 0,
    }
    assert (
        bench.mismatches({str(operation): app_figures[str(operation)]}, {str(operation): figures})
        == []
    )


def test_the_benchmark_runs_and_prints_its_table(capsys):
    bench.main(["--scale", "0.001", "--backend", "sqlite", "--skip-export"])
    out = capsys.readouterr().out
    assert "sqlite: filled 1 operations, 200 events, 1,000 victims, 200 casualty counts" in out
    header, row = out.split("Every operation's indicators")[1].splitlines()[1:3]
    assert header.split() == [
        "backend",
        "app",
        "s",
        "SQL",
        "s",
        "ratio",
        "aim",
        "counts-only",
        "SQL",
        "s",
        "ratio",
    ]
    assert row.split()[0] == "sqlite" and row.split()[4] == "≤1.5x"
    assert len(row.split()) == 8
    header, row = out.split("The app's own SQL sent straight")[1].splitlines()[1:3]
    assert header.split() == ["backend", "app", "s", "its", "SQL", "s", "ratio"]
    assert row.split()[0] == "sqlite" and row.split()[3].endswith("x")


def test_the_apps_own_statements_are_timed_as_the_app_sends_them(app):
    """What the app sends for the indicators, replayed straight to the driver, reads the
    same rows again: its main statement among them, with its parameters."""
    with app.app_context():
        bench.fill(db.session, sizes=TINY)
        user = bench.admin(db.session)
        statements = bench.app_statements(db.session, user)
        assert any(s.lstrip().startswith("WITH") for s, _ in statements)
        # The main statement alone gives a row per operation, and one for the total.
        rows = bench.run_bare(db.session, statements)
        assert rows > TINY["operations"]
        assert bench.run_bare(db.session, statements) == rows
        assert bench.app_statements(db.session, user) == statements


def test_the_export_it_measures_holds_every_live_victim(app, tmp_path):
    with app.app_context():
        bench.fill(db.session, sizes=TINY)
        live = db.session.scalar(
            select(func.count())
            .select_from(Victim)
            .join(Event, Event.id == Victim.event_id)
            .where(Victim.deleted_at.is_(None), Event.deleted_at.is_(None))
        )
        url = app.config["SQLALCHEMY_DATABASE_URI"]
    result = bench.export_once(url, str(tmp_path), "victims", "csv", str(tmp_path / "v.csv"))
    assert result["rows"] == live > 0.9 * TINY["victims"]
    assert result["peak_mb"] >= result["baseline_mb"] > 0


def test_a_disagreement_is_reported_with_the_operation_and_figure():
    figure = {"best": 2.5, "low": 1.0, "high": 4.5, "events": 3, "sources": 2}
    ours = {"7": {"lethality_index": figure, "agents_killed": figure}}
    theirs = {
        "7": {
            # The same ratio reached by another order of operations: equal.
            "lethality_index": {**figure, "best": 0.5 * 5.0},
            "agents_killed": {**figure, "high": 5.0, "sources": 1},
        },
        "8": ours["7"],
    }
    assert bench.mismatches(ours, theirs) == [
        "operation 7 agents_killed: app vs SQL: high 4.5 vs 5.0, sources 2 vs 1",
        "operation 8: missing from the app",
    ]
    assert bench.mismatches({"7": {"x": {**figure, "best": None}}}, {"7": {"x": figure}}) == [
        "operation 7 x: app vs SQL: best None vs 2.5"
    ]


@pytest.mark.parametrize("scale, events", [(0.001, 200), (1, 200_000)])
def test_sizes_scale(scale, events):
    assert bench.sizes_for(scale)["events"] == events
    assert dt.date(2015, 1, 1) <= bench._day(2921) <= dt.date(2022, 12, 31)


def test_the_query_without_jit_gives_the_same_figures_and_puts_the_setting_back(app):
    with app.app_context():
        bench.fill(db.session, sizes=TINY)
        postgresql = db.engine.dialect.name == "postgresql"
        if postgresql:
            db.session.execute(text("SELECT set_config('jit', 'on', true)"))
        with_jit = bench.sql_figures(db.session)
        assert bench.sql_figures(db.session, jit=False) == with_jit
        assert len(with_jit) == TINY["operations"] + 1
        counts = bench.counts_figures(db.session)
        assert bench.counts_figures(db.session, jit=False) == counts
        if postgresql:
            assert db.session.execute(text("SELECT current_setting('jit')")).scalar() == "on"
