"""API latency against the bare queries it runs, on a filled archive.

Fills a fresh SQLite archive (or the database given with --database-url) with --events events,
their victims, casualty counts, sources and citations, then times list and detail requests
through the whole app (routing, token check, queries, schema dump, JSON) and the same queries
(the token lookup included, for a signed-in reader) run bare through SQLAlchemy, in the same
run. Prints p50/p95 for each and the ratio app ÷ bare
(the aim: within 2x).

    python bench/api.py                 # 100,000 events
    python bench/api.py --events 5000   # a quick run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import flask_migrate  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from archive import access, create_app, database, users  # noqa: E402
from archive.extensions import db  # noqa: E402
from archive.models import (  # noqa: E402
    Actor,
    CasualtyCount,
    Citation,
    Event,
    EventActor,
    Place,
    Source,
    User,
    Victim,
    utcnow,
)
from archive.resources import RESOURCES  # noqa: E402

CHUNK = 5000


def fill(events: int, seed: int = 7) -> None:
    """Bulk-insert a realistic archive; most events published, some drafts and restricted."""
    rng = random.Random(seed)
    now = utcnow()
    stamp = {"created_at": now, "updated_at": now}
    session = db.session
    kinds = ["state_police", "state_military", "state_intelligence", "non_state_armed"]
    session.execute(
        insert(Actor),
        [{"id": i, "name": f"Actor {i}", "kind": kinds[i % 4], **stamp} for i in range(1, 41)],
    )
    session.execute(
        insert(Place),
        [
            {
                "id": i,
                "country": "VE",
                "admin1": f"Estado {i % 24}",
                "admin2": f"Municipio {i}",
                "precision": "admin2",
                **stamp,
            }
            for i in range(1, 1001)
        ],
    )
    n_sources = max(events // 10, 1)
    session.execute(
        insert(Source),
        [
            {
                "id": i,
                "kind": "news_article",
                "title": f"Fuente {i}",
                "language": "es",
                "restricted": i % 20 == 0,
                **stamp,
            }
            for i in range(1, n_sources + 1)
        ],
    )
    victim_id = count_id = citation_id = 0
    for start in range(1, events + 1, CHUNK):
        ids = range(start, min(start + CHUNK, events + 1))
        rows, actors, victims, counts, citations = [], [], [], [], []
        for i in ids:
            published = rng.random() < 0.9
            day = 1 + rng.randrange(3650)
            rows.append(
                {
                    "id": i,
                    "title": f"Evento {i}",
                    "event_type": "raid",
                    "start_date": _date(day),
                    "date_precision": "day",
                    "place_id": 1 + rng.randrange(1000),
                    "status": "verified" if published else "draft",
                    "published": published,
                    "description": "<p>Operativo policial con víctimas.</p>",
                    "internal_notes": "nota interna",
                    **stamp,
                }
            )
            first = 1 + rng.randrange(40)
            actors += [
                {"event_id": i, "actor_id": first, "role": "perpetrator"},
                {"event_id": i, "actor_id": 1 + (first % 40), "role": "target"},
            ]
            for _ in range(1 + rng.randrange(2)):
                victim_id += 1
                victims.append(
                    {
                        "id": victim_id,
                        "event_id": i,
                        "name": f"Persona {victim_id}",
                        "age": 15 + rng.randrange(50),
                        "affiliation": "civilian",
                        "outcome": "killed",
                        "caused_by": "state",
                        "identity_restricted": rng.random() < 0.2,
                        **stamp,
                    }
                )
            source = 1 + rng.randrange(n_sources)
            count_id += 1
            counts.append(
                {
                    "id": count_id,
                    "event_id": i,
                    "source_id": source,
                    "affiliation": "civilian",
                    "outcome": "killed",
                    "caused_by": "state",
                    "count": 1 + rng.randrange(5),
                    **stamp,
                }
            )
            citation_id += 1
            citations.append({"id": citation_id, "source_id": source, "event_id": i, **stamp})
        session.execute(insert(Event), rows)
        session.execute(insert(EventActor), actors)
        session.execute(insert(Victim), victims)
        session.execute(insert(CasualtyCount), counts)
        session.execute(insert(Citation), citations)
    session.commit()
    if db.engine.dialect.name == "postgresql":
        for table in (
            "actors",
            "places",
            "sources",
            "events",
            "victims",
            "casualty_counts",
            "citations",
        ):
            session.execute(
                db.text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
            )
        session.commit()
    session.execute(db.text("ANALYZE"))
    session.commit()


def _date(day: int):
    import datetime as dt

    return dt.date(2013, 1, 1) + dt.timedelta(days=day)


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", help="an empty database to fill (default: SQLite)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="constancia-bench-")
    url = args.database_url or f"sqlite:///{workdir}/bench.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": url,
            "FILES_DIR": os.path.join(workdir, "files"),
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        started = time.perf_counter()
        fill(args.events)
        print(f"filled {args.events:,} events in {time.perf_counter() - started:.1f} s ({url})")
        with database.writing():
            viewer = User(email="bench@example.org", role="viewer")
            db.session.add(viewer)
            db.session.flush()
            token = users.issue_token(db.session, viewer, viewer)
            db.session.commit()
            viewer_id = viewer.id
        published = db.session.scalars(
            select(Event.id).where(Event.published.is_(True)).limit(5000)
        ).all()

    client = app.test_client()
    rng = random.Random(11)
    pages = max(args.events // 50 // 10, 1)
    headers = {"Authorization": f"Bearer {token}"}
    resource = RESOURCES["events"]

    # Each bare query runs in an app context of its own, as each request does: a request
    # inside a pushed context would share its `g` (and so its signed-in user).
    # The app's queries include the token lookup for a signed-in reader; so do these.
    def bare_list(user):
        with app.app_context():
            if user is not None:
                access.user_for_token(token)
            return _bare_list(user)

    def bare_detail(user):
        with app.app_context():
            if user is not None:
                access.user_for_token(token)
            return _bare_detail(user)

    def _bare_list(user):
        page = 1 + rng.randrange(pages)
        conditions = [access.visible(Event, user)]
        db.session.scalar(select(func.count(Event.id)).where(*conditions))
        rows = db.session.scalars(
            select(Event)
            .where(*conditions)
            .order_by(Event.start_date.desc().nulls_first(), Event.id)
            .limit(50)
            .offset((page - 1) * 50)
            .options(*resource.load_options)
        ).all()
        return rows

    def _bare_detail(user):
        event_id = rng.choice(published)
        row = db.session.scalars(
            select(Event)
            .where(Event.id == event_id, access.visible(Event, user))
            .options(*resource.load_options)
        ).one()
        return row

    def app_list(h):
        page = 1 + rng.randrange(pages)
        response = client.get(f"/api/v1/events?page={page}&per_page=50", headers=h)
        assert response.status_code == 200

    def app_detail(h):
        response = client.get(f"/api/v1/events/{rng.choice(published)}", headers=h)
        assert response.status_code == 200

    rows = []
    with app.app_context():
        user = db.session.get(User, viewer_id)
        db.session.expunge(user)
    cases = [
        ("list, anonymous", lambda: app_list({}), lambda: bare_list(None)),
        ("list, viewer", lambda: app_list(headers), lambda: bare_list(user)),
        ("detail, anonymous", lambda: app_detail({}), lambda: bare_detail(None)),
        ("detail, viewer", lambda: app_detail(headers), lambda: bare_detail(user)),
    ]
    for name, through_app, bare in cases:
        timed(through_app, 10), timed(bare, 10)  # warm caches and pools
        app_times = timed(through_app, args.requests)
        bare_times = timed(bare, args.requests)
        rows.append(
            (
                name,
                statistics.median(app_times),
                p95(app_times),
                statistics.median(bare_times),
                p95(bare_times),
            )
        )

    print(f"\n{args.requests} requests each; times in ms")
    headings = ("app p50", "app p95", "bare p50", "bare p95", "p95 ratio")
    print(f"{'case':<20}" + "".join(f"{h:>10}" for h in headings))
    for name, a50, a95, b50, b95 in rows:
        print(f"{name:<20}{a50:>10.2f}{a95:>10.2f}{b50:>10.2f}{b95:>10.2f}{a95 / b95:>9.2f}x")


if __name__ == "__main__":
    main()
