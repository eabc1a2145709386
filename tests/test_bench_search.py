"""bench/search.py at a tiny size: it prints its tables, and the API answers as the raw Whoosh
searcher does over the same index, so its timings compare equal work.

The benchmark itself (100,000 events) stays out of the suite; these tests keep its corpus, its
query mix and its comparison from rotting.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest

from archive import search as engine

PATH = Path(__file__).parent.parent / "bench" / "search.py"
_spec = importlib.util.spec_from_file_location("bench_search", PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclasses look their module up by name
_spec.loader.exec_module(bench)

EVENTS, QUERIES = 300, 20


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One run of 300 events and 20 queries: its results and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = bench.run(EVENTS, QUERIES, str(tmp_path_factory.mktemp("bench")))
        missed = bench.report(results)
    return results, out.getvalue(), missed


def test_it_prints_indexing_latency_and_ratio_tables(tiny):
    results, out, _ = tiny
    assert f"filled {EVENTS:,} events" in out
    indexing = out.split(f"Indexing {EVENTS:,} events")[1].splitlines()
    assert indexing[1].split() == ["engine", "seconds", "s/100k", "MB", "aim", "s/100k"]
    assert indexing[2].startswith("Whoosh (app)") and indexing[3].startswith("SQLite FTS5")
    latency = out.split(f"Query latency, {QUERIES} queries per reader")[1].splitlines()
    rows = [line.split()[:2] for line in latency[2:8]]
    assert rows == [
        ["anonymous", "API"],
        ["anonymous", "raw"],
        ["anonymous", "SQLite"],
        ["staff", "API"],
        ["staff", "raw"],
        ["staff", "SQLite"],
    ]
    assert "<50" in latency[2] and "<50" in latency[5]
    ratios = out.split("ratios")[1].splitlines()
    assert "anony API ÷ raw Whoosh" in ratios[1] and "≤1.5x" in ratios[1]
    assert "staff API ÷ SQLite FTS5" in ratios[4]
    assert "load average (1, 5, 15 min) at the start:" in out
    for path in ("api", "raw", "fts"):
        for audience in ("anonymous", "staff"):
            assert len(results.timings.get(path, audience)) == QUERIES


def test_the_api_answers_anonymous_readers_as_the_raw_searcher_does(tiny):
    results, out, _ = tiny
    anonymous = [m for m in results.mismatches if m[0] == "anonymous"]
    assert anonymous == []
    assert results.compared == 2 * QUERIES
    # Real answers were compared: most queries find something, and pages are not empty.
    totals = [answer["total"] for answer in results.api_answers]
    assert len(totals) == QUERIES
    assert sum(total > 0 for total in totals) >= QUERIES * 3 // 4
    assert sum(bool(answer["items"]) for answer in results.api_answers) >= QUERIES // 2


def test_the_corpus_holds_what_search_must_withhold(tiny):
    results, _, _ = tiny
    made = results.made
    assert made["events"] == EVENTS
    assert made["victims"] > EVENTS and made["source_files"] > 0 and made["citations"] >= EVENTS
    # Every live record is one document; a few events and victims are deleted.
    most = 0.95 * (made["events"] + made["sources"])
    every = made["events"] + made["sources"] + made["operations"] + made["actors"]
    assert most < results.documents < every


def test_a_difference_in_total_page_or_facet_is_reported():
    answer = {
        "total": 2,
        "items": [{"type": "event", "id": 1}, {"type": "source", "id": 4}],
        "facets": {name: {} for name in bench.FACET_FIELDS} | {"year": {"2020": 1}},
    }
    assert bench.differences(answer, answer) == []
    other = {**answer, "items": answer["items"][::-1], "total": 3}
    other["facets"] = {**answer["facets"], "year": {"2020": 2}}
    problems = bench.differences(answer, other)
    assert [p.split(":")[0] for p in problems] == ["total", "page", "facet year"]


def test_the_mix_has_every_kind_and_the_app_parses_each_query():
    queries = bench.make_queries(200, operations=400)
    assert len(queries) == 200
    kinds = Counter(q.kind for q in queries)
    assert kinds == dict(bench.MIX)
    for q in queries:
        if "q" in q.params:
            for staff in (False, True):
                engine.parse_query(q.params["q"], staff)  # a ValidationError would fail here
    assert len(bench.make_queries(20, operations=4)) == 20


def test_fts5_finds_accentless_words_and_keeps_staff_columns_from_anonymous_readers():
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE docs USING fts5(t_all, t_notes, t_rvictim,"
        " tokenize = 'unicode61 remove_diacritics 2')"
    )
    conn.execute("INSERT INTO docs VALUES ('Allanamiento en Las Tejerías', 'testigo', '')")

    def hits(expression: str, staff: bool) -> int:
        match = bench.fts_match(expression, staff)
        return conn.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", [match]).fetchone()[0]

    assert hits(bench._f("tejerias"), staff=False) == 1
    assert hits(bench._f("testigo"), staff=False) == 0
    assert hits(bench._f("testigo"), staff=True) == 1
    conn.close()


def test_too_small_a_run_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--events", "10"])
    assert exit_.value.code == 2
    assert "--events must be at least 50" in capsys.readouterr().err
