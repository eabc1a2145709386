"""Small factories: make_<record>(**overrides) through the same services the API uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archive import access, database, records, users
from archive.extensions import db
from archive.models import User
from archive.resources import RESOURCES

ADMIN = access.SystemActor("tests")
PASSWORD = "correct horse battery staple"

# A valid new record of each resource with only what it needs, its references made fresh.
MINIMAL: dict[str, Callable[[Factory], dict[str, Any]]] = {
    "actors": lambda f: {
        "name": "Policía Municipal de Sucre",
        "kind": "state_police",
        "jurisdiction": "municipal",
    },
    "places": lambda f: {"country": "VE", "admin1": "Miranda", "admin2": "Sucre"},
    "operations": lambda f: {"name": "OLP Petare", "agents_deployed": 200},
    "events": lambda f: {"title": "Allanamiento", "event_type": "raid"},
    "victims": lambda f: {"event_id": f.event(), "outcome": "killed", "affiliation": "civilian"},
    "casualty-counts": lambda f: {
        "event_id": f.event(),
        "source_id": f.source(),
        "affiliation": "civilian",
        "outcome": "killed",
        "caused_by": "state",
        "count": 15,
    },
    "sources": lambda f: {"kind": "news_article", "title": "Quince muertos en la Cota 905"},
    "citations": lambda f: {
        "source_id": f.source(),
        "target_type": "event",
        "target_id": f.event(),
    },
    "context-figures": lambda f: {
        "admin1": "Miranda",
        "year": 2016,
        "population": 3_166_000,
        "source_id": f.source(),
    },
}


class Factory:
    def __init__(self, app):
        self.app = app
        self._seq = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def create(self, resource: str, **data: Any) -> int:
        """Create a record as an admin would and answer its id."""
        with self.app.app_context(), database.writing():
            record = records.create_record(db.session, ADMIN, RESOURCES[resource], data)
            db.session.commit()
            return record.id

    def update(self, resource: str, record_id: int, **data: Any) -> None:
        with self.app.app_context(), database.writing():
            records.update_record(db.session, ADMIN, RESOURCES[resource], record_id, data)
            db.session.commit()

    def delete(self, resource: str, record_id: int) -> None:
        with self.app.app_context(), database.writing():
            records.delete_record(db.session, ADMIN, RESOURCES[resource], record_id)
            db.session.commit()

    def payload(self, resource: str) -> dict[str, Any]:
        """A valid new record of `resource`, as the API and `create` both take it."""
        return MINIMAL[resource](self)

    def user_token(self, role: str, email: str | None = None) -> str:
        """An account without a password (hashing is slow) and a fresh API token for it."""
        with self.app.app_context(), database.writing():
            user = User(email=email or f"{role}-{self._next()}@example.org", role=role)
            db.session.add(user)
            db.session.flush()
            token = users.issue_token(db.session, ADMIN, user)
            db.session.commit()
            return token

    def actor(self, **overrides) -> int:
        data = {"name": f"Fuerza {self._next()}", "kind": "state_police", **overrides}
        return self.create("actors", **data)

    def place(self, **overrides) -> int:
        data = {
            "country": "VE",
            "admin1": "Distrito Capital",
            "admin2": "Libertador",
            "locality": "Cota 905",
            **overrides,
        }
        return self.create("places", **data)

    def operation(self, **overrides) -> int:
        return self.create("operations", **{"name": f"Operación {self._next()}", **overrides})

    def source(self, **overrides) -> int:
        data = {"kind": "news_article", "title": f"Fuente {self._next()}", **overrides}
        return self.create("sources", **data)

    def event(self, **overrides) -> int:
        data = {"title": f"Evento {self._next()}", "event_type": "raid", **overrides}
        return self.create("events", **data)

    def victim(self, event_id: int, **overrides) -> int:
        data = {"event_id": event_id, "outcome": "killed", **overrides}
        return self.create("victims", **data)

    def casualty_count(self, event_id: int, source_id: int, **overrides) -> int:
        data = {
            "event_id": event_id,
            "source_id": source_id,
            "affiliation": "civilian",
            "outcome": "killed",
            "caused_by": "state",
            "count": 3,
            **overrides,
        }
        return self.create("casualty-counts", **data)

    def citation(self, source_id: int, target_type: str, target_id: int, **overrides) -> int:
        data = {
            "source_id": source_id,
            "target_type": target_type,
            "target_id": target_id,
            **overrides,
        }
        return self.create("citations", **data)

    def published_event(self, source_id: int | None = None, **overrides) -> int:
        """A verified, published event with one citation of an unrestricted source."""
        event_id = self.event(**overrides)
        self.citation(source_id or self.source(), "event", event_id)
        self.update("events", event_id, status="verified", published=True)
        return event_id

    def account(self, role: str, password: str = PASSWORD, email: str | None = None) -> str:
        """An account that signs in on the pages with `password`; answers its email."""
        with self.app.app_context(), database.writing():
            user = User(
                email=email or f"{role}-{self._next()}@example.org",
                role=role,
                password_hash=users.hash_password(password),
            )
            db.session.add(user)
            db.session.commit()
            return user.email
