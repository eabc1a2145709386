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
        stored = {
            "events": db.session.scalar(select(func.count()).select_from(Event)),
            "victims": db.session.scalar(select(func.count()).select_from(Victim)),
            "casualty_counts": db.session.scalar(select(func.count()).select_from(CasualtyCount)),
        }
    assert made == TINY
    assert stored == {k: TINY[k] for k in stored}
    assert len(sql_figures) == TINY["operations"]
    # Every checked figure is exercised: sources widen the ranges, agents are off duty.
    totals = {
        key: tuple(sum(f[key][i] for f in sql_figures.values()) for i in range(3))
        for key in bench.CHECKED
    }
    assert all(low > 0 for low, _, _ in totals.values())
    low, best, high = totals["civilians_killed_by_state"]
    assert low < best < high
    assert bench.mismatches(app_figures, sql_figures) == []


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
        user = User(email="hand@example.org", role="admin", active=True)
        app_figures = bench.app_figures(bench.app_result(db.session, user))
    assert figures["civilians_killed_by_state"] == (3, 5, 9)
    # max(2, 3), max(2, 3: the lower median of 3 and 4), max(2, 4), less the one off duty.
    assert figures["agents_killed"] == (2, 2, 3)
    assert figures["agents_killed_off_duty"] == (1, 1, 1)
    assert figures["detained"] == (1, 1, 1)
    assert figures["civilians_injured_by_state"] == (0, 0, 0)
    assert app_figures[str(operation)] == figures


def test_the_benchmark_runs_and_prints_its_table(capsys):
    bench.main(["--scale", "0.001", "--backend", "sqlite", "--skip-export"])
    out = capsys.readouterr().out
    assert "sqlite: filled 1 operations, 200 events, 1,000 victims, 200 casualty counts" in out
    header, row = out.split("Every operation's indicators")[1].splitlines()[1:3]
    assert header.split() == ["backend", "app", "s", "SQL", "s", "ratio", "aim"]
    assert row.split()[0] == "sqlite" and row.split()[4] == "≤1.5x"


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
    ours = {"7": {key: (1, 2, 3) for key in bench.CHECKED}}
    theirs = {"7": {**ours["7"], "agents_killed": (1, 2, 4)}, "8": ours["7"]}
    problems = bench.mismatches(ours, theirs)
    assert problems[0] == (
        "operation 7 agents_killed: app (low, best, high) = (1, 2, 3), SQL = (1, 2, 4)"
    )
    assert len(problems) == 1 + len(bench.CHECKED)  # operation 8 missing from the app: zeros


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
        assert len(with_jit) == TINY["operations"]
        if postgresql:
            assert db.session.execute(text("SELECT current_setting('jit')")).scalar() == "on"
