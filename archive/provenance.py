"""The trail that makes each figure trustworthy: the audit chain and the file store.

Audit: every entry carries the hash of the one before it, so an entry altered or removed
breaks the chain at that point and `verify_chain` names it; the head row, rewritten with each
append, records where the chain ends, so entries cut from its end are missed too.

Files: stored once under their SHA-256 and never altered; every read checks the hash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import Text, bindparam, insert, select, text
from sqlalchemy.orm import Session

from . import database
from .models import AuditEntry, AuditHead, User, utcnow

GENESIS = "0" * 64
CHUNK = 1024 * 1024
# Any constant works: it names the lock that serialises appends to the chain on PostgreSQL.
AUDIT_LOCK_KEY = 0x436F6E73


# --- Audit chain -----------------------------------------------------------------------------


def _canonical(entry: AuditEntry) -> bytes:
    return _canonical_values({name: getattr(entry, name) for name in _HASHED})


def _canonical_values(values: dict[str, Any]) -> bytes:
    payload = {name: values[name] for name in _HASHED}
    payload["at"] = payload["at"].isoformat()
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# The canonical form's encoder: _canonical_values's json.dumps, without its call overhead.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canonical_text(entry: dict[str, Any], at: str | None = None) -> bytes:
    """_canonical_values(entry), for an entry whose changes are already encoded (as
    `changes_json`, by _encode): the same bytes, put together from its encoded parts (JSON
    with sorted keys is each key's encoded value, in the keys' order). `at`: the entry's
    time as isoformat() writes it, when the caller has it already."""
    # The time: digits, dashes, colons, a dot and a plus; the hash: hex digits. No escapes.
    return (
        f'{{"action":{_encoded(entry["action"])},"at":"{at or entry["at"].isoformat()}",'
        f'"changes":{entry["changes_json"]},"prev_hash":"{entry["prev_hash"]}",'
        f'"record_id":{_number(entry["record_id"])},"resource":{_encoded(entry["resource"])},'
        f'"seq":{_number(entry["seq"])},"user_email":{_encoded(entry["user_email"])},'
        f'"user_id":{_number(entry["user_id"])}}}'
    ).encode()


def _number(value: int | None) -> str:
    if type(value) is int:
        return str(value)
    return "null" if value is None else _encode(value)


@functools.lru_cache(maxsize=1024)
def _encoded(value: str | int | None) -> str:
    """A name or id as JSON; an import repeats the same few over and over."""
    return _encode(value)


@functools.cache
def _insert_entries():
    """An insert of audit entries whose changes come as JSON text (`changes_json`), stored
    as they are (SQLite's JSON column holds text; PostgreSQL takes them by COPY)."""
    return insert(AuditEntry.__table__).values(changes=bindparam("changes_json", type_=Text()))


_HASHED = (
    "seq",
    "at",
    "user_id",
    "user_email",
    "action",
    "resource",
    "record_id",
    "changes",
    "prev_hash",
)


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


def _lock_chain(session: Session) -> None:
    """Serialise appends so two writers never fork the chain.

    On SQLite the write transaction (BEGIN IMMEDIATE) already holds the database lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})


def record(
    session: Session,
    user: User | None,
    action: str,
    resource: str | None = None,
    record_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log, in the caller's transaction."""
    _lock_chain(session)
    last = last_link(session)
    entry = AuditEntry(
        seq=(last.seq + 1) if last else 1,
        at=utcnow(),
        user_id=user.id if user else None,
        user_email=user.email if user else None,
        action=action,
        resource=resource,
        record_id=record_id,
        changes=json.loads(json.dumps(changes or {}, default=str)),
        prev_hash=last.hash if last else GENESIS,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    head = session.get(AuditHead, 1) or AuditHead(id=1)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(head)
    session.flush()
    return entry


class Appender:
    """Appends many entries in one transaction, reading the chain's end once instead of once
    per entry (a bulk import writes thousands), and inserting them in batches: flush() writes
    the entries appended since the last, resync() and close() flush first. Anything else that
    appends meanwhile (record()) must come after a flush() and be followed by resync(); the
    head is written by close()."""

    BATCH = 5000

    def __init__(self, session: Session):
        self.session = session
        self.pending: list[dict[str, Any]] = []
        self._at: dt.datetime | None = None  # the last entry's time, and as its hash reads it
        self._at_text = ""
        _lock_chain(session)
        self.resync()

    def resync(self) -> None:
        self.flush()
        # The query sends the entries still pending first (autoflush), so it sees them.
        last = last_link(self.session)
        self.seq, self.hash = (last.seq, last.hash) if last else (0, GENESIS)

    def record(
        self,
        user: User | None,
        action: str,
        resource: str | None = None,
        record_id: int | None = None,
        changes: dict[str, Any] | None = None,
        *,
        plain: bool = False,
        at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """The next entry (its columns, `changes` as JSON text), as record() would write it;
        inserted by the next flush(). `plain` says `changes` holds only what JSON holds (str,
        int, float, bool, None, lists and dicts of them, as a schema dumps a record), so it
        need not pass through JSON to become what the log reads back. `at`: the entry's time
        (an aware datetime, not before the entry it follows), when not now: a bulk import
        gives the records it inserts together, and their entries, the time they go in."""
        if not plain:
            changes = json.loads(json.dumps(changes or {}, default=str))
        if at is None:
            at = utcnow()
        if at is not self._at:
            self._at, self._at_text = at, at.isoformat()
        entry = {
            "seq": self.seq + 1,
            "at": at,
            "user_id": user.id if user else None,
            "user_email": user.email if user else None,
            "action": action,
            "resource": resource,
            "record_id": record_id,
            "changes_json": _encode(changes or {}),
            "prev_hash": self.hash,
        }
        entry["hash"] = hashlib.sha256(_canonical_text(entry, self._at_text)).hexdigest()
        self.pending.append(entry)
        self.seq, self.hash = entry["seq"], entry["hash"]
        if len(self.pending) >= self.BATCH:
            self.flush()
        return entry

    def flush(self) -> None:
        if self.pending:
            database.bulk_insert(
                self.session,
                AuditEntry.__table__,
                self.pending,
                statement=_insert_entries(),
                renamed={"changes_json": "changes"},
            )
            self.pending = []

    def close(self) -> None:
        """Point the head at the chain's last entry, as record() does after each append."""
        self.resync()
        if self.seq == 0:
            return
        head = self.session.get(AuditHead, 1) or AuditHead(id=1)
        head.seq, head.hash = self.seq, self.hash
        self.session.add(head)
        self.session.flush()


def last_link(session: Session):
    """The (seq, hash) of the log's last entry as it stands, or None for an empty log."""
    return session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()


@dataclass
class ChainReport:
    checked: int
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


def verify_chain(session: Session, kept: tuple[int, str] | None = None) -> ChainReport:
    """Walk the log in order and report the first entry that breaks the chain.

    `kept` is a (seq, hash) printed earlier and kept outside the database: the log must still
    hold that entry, which catches a log cut short by someone who rewrote its head too.
    """
    report = _walk_chain(session)
    if report.ok and kept is not None:
        seq, digest = kept
        found = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq))
        if found != digest:
            problem = "it is missing" if found is None else "its hash differs from the one kept"
            return ChainReport(report.checked, seq, problem)
    return report


def _walk_chain(session: Session) -> ChainReport:
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    rows = session.execute(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000)
    ).scalars()
    try:
        for entry in rows:
            if entry.seq != expected_seq:
                return ChainReport(
                    checked, expected_seq, f"entry {expected_seq} is missing (next is {entry.seq})"
                )
            if entry.prev_hash != expected_prev:
                return ChainReport(
                    checked, entry.seq, "its prev_hash does not match the entry before it"
                )
            if entry_hash(entry) != entry.hash:
                return ChainReport(checked, entry.seq, "its content does not match its hash")
            expected_prev, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    finally:
        # Stopping early leaves the server-side cursor (yield_per) open: close it.
        rows.close()
    return _check_head(session.get(AuditHead, 1), checked, expected_prev)


def _check_head(head: AuditHead | None, last_seq: int, last_hash: str) -> ChainReport:
    """Compare the end of an intact chain with the head that every append wrote."""
    if head is None:
        if last_seq == 0:
            return ChainReport(0)
        return ChainReport(last_seq, last_seq, "the chain's head record is missing")
    if head.seq > last_seq:
        return ChainReport(
            last_seq,
            last_seq + 1,
            f"entry {last_seq + 1} is missing: the log ends at entry {last_seq} "
            f"but its head says {head.seq}",
        )
    if head.seq < last_seq:
        return ChainReport(
            last_seq, head.seq + 1, f"it was added after the head (entry {head.seq})"
        )
    if head.hash != last_hash:
        return ChainReport(last_seq, last_seq, "its hash does not match the chain's head")
    return ChainReport(last_seq)


# --- File store ------------------------------------------------------------------------------


class FileTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"The file is larger than the limit of {limit} bytes.")
        self.limit = limit


class FileTampered(Exception):
    def __init__(self, sha256: str, problem: str):
        super().__init__(f"Stored file {sha256} failed its integrity check: {problem}.")
        self.sha256 = sha256


class FileStore:
    """Files kept under root/ab/cd/<sha256>, written once, read back only after a hash check.

    A file saved for a transaction is *held* until it ends (`save(..., hold=True)`): a marker
    under root/.holds says that an uncommitted transaction may come to reference it. A
    transaction that does not commit lets go with `release(hold, unreferenced)`, which deletes
    the file only when no other transaction holds it and `unreferenced()` (the database has
    no row for it) says so. Saving and letting go take a lock on the store's folder, so a
    file another transaction has just found in the store is never deleted under it; a
    process that dies mid-transaction leaves the file and its marker, never a row without
    its file.
    """

    def __init__(self, root: str):
        self.root = root

    def path(self, sha256: str) -> str:
        return os.path.join(self.root, sha256[:2], sha256[2:4], sha256)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the folder lets go of its lock

    def _holds(self) -> str:
        return os.path.join(self.root, ".holds")

    def held(self, sha256: str) -> bool:
        """Whether some transaction still holds the file."""
        folder = self._holds()
        return os.path.isdir(folder) and any(
            name.startswith(sha256 + ".") for name in os.listdir(folder)
        )

    def release(self, hold: str, unreferenced: Callable[[], bool] | None = None) -> None:
        """Let go of a hold; with `unreferenced`, delete the file if nothing else needs it."""
        sha256 = os.path.basename(hold).split(".", 1)[0]
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(hold)
            if unreferenced is None or self.held(sha256) or not unreferenced():
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(sha256))

    def save(self, stream: IO[bytes], max_bytes: int, hold: bool = False) -> tuple:
        """Copy `stream` into the store; answer its SHA-256 and size, and with `hold` the
        marker to `release` when the transaction ends."""
        os.makedirs(self.root, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FileTooLarge(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            final = self.path(sha256)
            with self._locked():
                if hold:
                    os.makedirs(self._holds(), exist_ok=True)
                    marker = os.path.join(self._holds(), f"{sha256}.{uuid.uuid4().hex}")
                    open(marker, "x").close()
                if os.path.exists(final):
                    os.unlink(tmp)
                else:
                    os.makedirs(os.path.dirname(final), exist_ok=True)
                    os.chmod(tmp, 0o444)
                    os.replace(tmp, final)
            return (sha256, size, marker) if hold else (sha256, size)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def check(self, sha256: str, size: int | None = None) -> str:
        """Answer the file's path once its bytes are proven to match `sha256`."""
        path = self.path(sha256)
        if not os.path.exists(path):
            raise FileTampered(sha256, "the file is missing from the store")
        digest = hashlib.sha256()
        for chunk in self._chunks(path):
            digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise FileTampered(sha256, "its bytes no longer match their hash")
        if size is not None and os.path.getsize(path) != size:
            raise FileTampered(sha256, "its size differs from the recorded size")
        return path

    @staticmethod
    def _chunks(path: str) -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
