"""The records of DOMAIN.md section 2, with their constraints in the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import vocab
from .extensions import db

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back as an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times must carry a time zone")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def one_of(column: str, values: tuple, nullable: bool = False) -> CheckConstraint:
    """A check constraint that keeps `column` inside a controlled list."""
    listed = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)
    condition = f"{column} IN ({listed})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return CheckConstraint(condition, name=f"{column}_allowed")


def not_negative(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IS NULL OR {column} >= 0", name=f"{column}_not_negative")


# How far past its stored first day an end date given to the month or year reaches, in each
# database's own date arithmetic (neither understands the other's).
_END_PERIOD = {
    "postgresql": "end_date + CASE end_date_precision WHEN 'year' THEN interval '1 year'"
    " WHEN 'month' THEN interval '1 month' ELSE interval '1 day' END > start_date",
    "sqlite": "date(end_date, CASE end_date_precision WHEN 'year' THEN '+1 year'"
    " WHEN 'month' THEN '+1 month' ELSE '+1 day' END) > start_date",
}


def ends_after_start() -> list[CheckConstraint]:
    """The end's period may not finish before the start: an end of 2015-07 (stored as
    2015-07-01, month precision) after a start of 2015-07-13 is fine; 2015-07-12 is not."""
    return [
        CheckConstraint(
            f"end_date IS NULL OR start_date IS NULL OR {condition}", name="ends_after_start"
        ).ddl_if(dialect=dialect)
        for dialect, condition in _END_PERIOD.items()
    ]


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Recoverable(Timestamped):
    """A record that is marked deleted, never destroyed (DOMAIN.md section 5).

    `version` counts its revisions (1 when created, one more for each change, delete and
    restore), so a client can say which revision it edited and an edit made against an older
    one is refused instead of silently undoing someone else's (records.StaleRecord).
    """

    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class User(Timestamped, db.Model):
    __tablename__ = "users"
    __table_args__ = (one_of("role", vocab.ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    # Flask-Login's protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class ApiToken(Timestamped, db.Model):
    """An API token; only its SHA-256 is kept, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


class Actor(Recoverable, db.Model):
    __tablename__ = "actors"
    __table_args__ = (
        one_of("kind", vocab.ACTOR_KINDS),
        one_of("jurisdiction", vocab.JURISDICTIONS, nullable=True),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    acronym: Mapped[str | None] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(30))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"), index=True)
    jurisdiction: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)

    @property
    def is_state(self) -> bool:
        return self.kind.startswith("state_")


class Operation(Recoverable, db.Model):
    __tablename__ = "operations"
    __table_args__ = (
        one_of("date_precision", vocab.DATE_PRECISIONS, nullable=True),
        one_of("end_date_precision", vocab.DATE_PRECISIONS, nullable=True),
        *ends_after_start(),
        not_negative("agents_deployed"),
        not_negative("arrests_claimed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    aliases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    date_precision: Mapped[str | None] = mapped_column(String(10))
    end_date_precision: Mapped[str | None] = mapped_column(String(10))
    announced_by: Mapped[str | None] = mapped_column(String(300))
    # Official figures: each is a claim, backed by a citation whose `field` names it.
    agents_deployed: Mapped[int | None] = mapped_column(Integer)
    arrests_claimed: Mapped[int | None] = mapped_column(Integer)

    actors: Mapped[list[OperationActor]] = relationship(
        cascade="all, delete-orphan", order_by="OperationActor.actor_id"
    )


class OperationActor(db.Model):
    __tablename__ = "operation_actors"
    __table_args__ = (one_of("role", vocab.OPERATION_ACTOR_ROLES),)

    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class Place(Recoverable, db.Model):
    __tablename__ = "places"
    __table_args__ = (
        one_of("precision", vocab.PLACE_PRECISIONS),
        CheckConstraint("latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name="latitude_range"),
        CheckConstraint(
            "longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name="longitude_range"
        ),
        CheckConstraint("length(country) = 2", name="country_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2), default="VE")
    admin1: Mapped[str | None] = mapped_column(String(200), index=True)
    admin2: Mapped[str | None] = mapped_column(String(200), index=True)
    admin3: Mapped[str | None] = mapped_column(String(200))
    locality: Mapped[str | None] = mapped_column(String(200))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[str] = mapped_column(String(10))


class Event(Recoverable, db.Model):
    __tablename__ = "events"
    __table_args__ = (
        one_of("event_type", vocab.EVENT_TYPES),
        one_of("date_precision", vocab.DATE_PRECISIONS, nullable=True),
        one_of("end_date_precision", vocab.DATE_PRECISIONS, nullable=True),
        one_of("status", vocab.EVENT_STATUSES),
        *ends_after_start(),
        CheckConstraint("NOT published OR status = 'verified'", name="published_is_verified"),
        not_negative("agents_deployed"),
        # Covers what anonymous lists filter on, so counting them reads the index alone.
        Index("ix_events_public", "published", "status", "deleted_at", "start_date"),
        Index("ix_events_external", "external_dataset", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(40))
    start_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    date_precision: Mapped[str | None] = mapped_column(String(10))
    end_date_precision: Mapped[str | None] = mapped_column(String(10))
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"), index=True)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), index=True)
    agents_deployed: Mapped[int | None] = mapped_column(Integer)
    official_account: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    internal_notes: Mapped[str | None] = mapped_column(Text)
    # The id another organisation's dataset gives this event, and which dataset (see
    # archive/imports.py): how a later import of that dataset recognises the event.
    external_dataset: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))

    place: Mapped[Place | None] = relationship()
    operation: Mapped[Operation | None] = relationship()
    actors: Mapped[list[EventActor]] = relationship(
        cascade="all, delete-orphan", order_by="EventActor.actor_id"
    )


class EventActor(db.Model):
    __tablename__ = "event_actors"
    __table_args__ = (one_of("role", vocab.EVENT_ACTOR_ROLES),)

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class Victim(Recoverable, db.Model):
    __tablename__ = "victims"
    __table_args__ = (
        one_of("sex", vocab.SEXES, nullable=True),
        one_of("affiliation", vocab.AFFILIATIONS),
        one_of("outcome", vocab.OUTCOMES),
        one_of("caused_by", vocab.CAUSED_BY),
        one_of("on_duty", vocab.ON_DUTY, nullable=True),
        CheckConstraint("age IS NULL OR (age BETWEEN 0 AND 130)", name="age_range"),
        Index("ix_victims_external", "external_dataset", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(300))
    alias: Mapped[str | None] = mapped_column(String(200))
    age: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(10))
    affiliation: Mapped[str] = mapped_column(String(20), default="unknown")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    caused_by: Mapped[str] = mapped_column(String(20), default="unknown")
    responsible_actor_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"), index=True)
    circumstances: Mapped[str | None] = mapped_column(Text)
    on_duty: Mapped[str | None] = mapped_column(String(10))
    identity_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    external_dataset: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))


class CasualtyCount(Recoverable, db.Model):
    """One source's figure for one cell of one event; figures that disagree are all kept."""

    __tablename__ = "casualty_counts"
    __table_args__ = (
        one_of("affiliation", vocab.AFFILIATIONS),
        one_of("outcome", vocab.OUTCOMES),
        one_of("caused_by", vocab.CAUSED_BY),
        CheckConstraint("count >= 0", name="count_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    affiliation: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    caused_by: Mapped[str] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)


class Source(Recoverable, db.Model):
    __tablename__ = "sources"
    __table_args__ = (
        one_of("kind", vocab.SOURCE_KINDS),
        one_of("reliability", vocab.RELIABILITY, nullable=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(500))
    publisher: Mapped[str | None] = mapped_column(String(300))
    author: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[dt.date | None] = mapped_column(Date)
    accessed_at: Mapped[dt.date | None] = mapped_column(Date)
    language: Mapped[str | None] = mapped_column(String(20))
    reliability: Mapped[str | None] = mapped_column(String(1))
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)

    files: Mapped[list[SourceFile]] = relationship(
        primaryjoin="and_(SourceFile.source_id == Source.id, SourceFile.deleted_at.is_(None))",
        order_by="SourceFile.id",
        viewonly=True,
    )


class StoredFile(db.Model):
    """A file's bytes, kept once in the content-addressed store under their SHA-256."""

    __tablename__ = "stored_files"
    __table_args__ = (
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
        CheckConstraint("size >= 0", name="size_not_negative"),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SourceFile(Recoverable, db.Model):
    """An archived copy of a source: which stored file, under what name, from whom."""

    __tablename__ = "source_files"
    __table_args__ = (
        UniqueConstraint("source_id", "sha256", name="uq_source_files_source_sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"), index=True)
    original_filename: Mapped[str | None] = mapped_column(String(500))
    media_type: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    extracted_text: Mapped[str | None] = mapped_column(Text)

    stored: Mapped[StoredFile] = relationship(lazy="joined")

    @property
    def size(self) -> int:
        return self.stored.size

    @property
    def uploaded_at(self) -> dt.datetime:
        return self.created_at


class Citation(Recoverable, db.Model):
    """The provenance link from a source to the record (and field) it supports.

    The target is one of four foreign keys, exactly one of them set, so that the
    database itself guarantees that every citation points at a real record.
    """

    __tablename__ = "citations"
    __table_args__ = (
        CheckConstraint(
            "(CASE WHEN operation_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN event_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN victim_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN casualty_count_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="one_target",
        ),
        one_of("credibility", vocab.CREDIBILITY, nullable=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)
    victim_id: Mapped[int | None] = mapped_column(ForeignKey("victims.id"), index=True)
    casualty_count_id: Mapped[int | None] = mapped_column(
        ForeignKey("casualty_counts.id"), index=True
    )
    field: Mapped[str | None] = mapped_column(String(100))
    excerpt: Mapped[str | None] = mapped_column(Text)
    locator: Mapped[str | None] = mapped_column(String(300))
    credibility: Mapped[int | None] = mapped_column(Integer)

    TARGET_COLUMNS = {
        "operation": "operation_id",
        "event": "event_id",
        "victim": "victim_id",
        "casualty_count": "casualty_count_id",
    }

    @property
    def target_type(self) -> str | None:
        for target_type, column in self.TARGET_COLUMNS.items():
            if getattr(self, column) is not None:
                return target_type
        return None

    @property
    def target_id(self) -> int | None:
        target_type = self.target_type
        return getattr(self, self.TARGET_COLUMNS[target_type]) if target_type else None

    def point_at(self, target_type: str, target_id: int) -> None:
        for kind, column in self.TARGET_COLUMNS.items():
            setattr(self, column, target_id if kind == target_type else None)


class AuditEntry(db.Model):
    """One link of the append-only, hash-chained audit log (DOMAIN.md section 5)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_record", "resource", "record_id"),
        CheckConstraint("seq >= 1", name="seq_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    user_email: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(40))
    resource: Mapped[str | None] = mapped_column(String(40))
    record_id: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(db.Model):
    """The chain's last link, written with every append: a log cut short no longer matches it.

    Removing entries from the end leaves a chain that verifies on its own; the head, kept in
    its own row (and printable with `flask audit head` for safekeeping elsewhere), catches it.
    """

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ContextFigure(Recoverable, db.Model):
    """An official population or homicide figure for a region and year, from a cited source:
    the denominators of the rate per 100,000 and of the share of homicides (DOMAIN.md section 4).

    `admin2` empty means the whole of `admin1`. At most one live figure per country, admin1
    (whatever its case), admin2 and year: resources.check_context_figure keeps it so.
    """

    __tablename__ = "context_figures"
    __table_args__ = (
        CheckConstraint("length(country) = 2", name="country_iso"),
        CheckConstraint("year BETWEEN 1900 AND 2200", name="year_range"),
        not_negative("population"),
        not_negative("homicides"),
        CheckConstraint(
            "population IS NOT NULL OR homicides IS NOT NULL", name="population_or_homicides"
        ),
        Index("ix_context_figures_region_year", "country", "admin1", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2), default="VE")
    admin1: Mapped[str] = mapped_column(String(200))
    admin2: Mapped[str | None] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    population: Mapped[int | None] = mapped_column(BigInteger)
    homicides: Mapped[int | None] = mapped_column(Integer)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    notes: Mapped[str | None] = mapped_column(Text)


class SearchOutbox(db.Model):
    """A record whose search entry needs refreshing, written in the transaction that changed
    it: the search index (archive/search.py) applies these after commit, so it follows every
    committed change, never a rolled-back one, and none is lost when another process holds
    the index's single writer lock (it is then applied by the next one that gets it).

    `kind` names what to refresh: a document ("event", "operation", "actor", "source"), or
    the events that show a renamed record ("operation_events", "actor_events",
    "place_events").
    """

    __tablename__ = "search_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportPreset(Timestamped, db.Model):
    """A named mapping of a spreadsheet's columns onto records (archive/imports.py), kept to
    import the next file of the same layout without writing the mapping again."""

    __tablename__ = "import_presets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType)
