"""Archived copies of sources: upload into the content-addressed store, and read back."""

from __future__ import annotations

import mimetypes
import re
from typing import IO

from marshmallow import ValidationError
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from . import access, extract, provenance
from .models import Source, SourceFile, StoredFile, User
from .records import NotFound, get_record
from .resources import RESOURCES

# Leading bytes of formats worth recognising whatever the client claims.
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
)


# Files stored during a session's transaction, let go of when it ends (see FileStore).
HOLDS = "constancia_file_holds"


@event.listens_for(Session, "after_commit")
def _keep_files(session: Session) -> None:
    for store, hold, _sha256 in session.info.pop(HOLDS, ()):
        store.release(hold)


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted_files(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ended without committing (rolled back, or closed) deletes the files
    it stored unless a committed row or another transaction still needs them."""
    if transaction.parent is not None or not session.info.get(HOLDS):
        return
    engine = session.get_bind()
    for store, hold, sha256 in session.info.pop(HOLDS):

        def unreferenced(sha256: str = sha256) -> bool:
            with engine.connect() as connection:
                query = select(StoredFile.sha256).where(StoredFile.sha256 == sha256)
                return connection.scalar(query) is None

        store.release(hold, unreferenced)


MEDIA_TYPE = re.compile(r"^[\w.+-]{1,90}/[\w.+-]{1,90}$")
MAX_FILENAME = 500


def media_type(head: bytes, filename: str | None, claimed: str | None) -> str:
    """Sniff the format from its first bytes, then the file name, then what the client said."""
    if claimed and not MEDIA_TYPE.match(claimed):
        claimed = None
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            if kind == "application/zip" and filename:
                return mimetypes.guess_type(filename)[0] or kind
            return kind
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    return guessed or claimed or "application/octet-stream"


def attach_file(
    session: Session,
    user: User | None,
    store: provenance.FileStore,
    source_id: int,
    stream: IO[bytes],
    filename: str | None,
    claimed_type: str | None,
    max_bytes: int,
    max_text_chars: int = extract.DEFAULT_MAX_CHARS,
) -> tuple[SourceFile, bool]:
    """Store the file and attach it to the source; answer it and whether it is new there.

    Its text (plain, HTML, PDF) is extracted into `extracted_text`, at most `max_text_chars`
    long; a file whose text cannot be read is attached all the same, with none.
    """
    access.require(user, "upload", "files")
    if filename and (len(filename) > MAX_FILENAME or "\x00" in filename):
        raise ValidationError(
            f"The file name must be at most {MAX_FILENAME} characters, without NUL.", "file"
        )
    source = get_record(session, user, RESOURCES["sources"], source_id)
    sha256, size, hold = store.save(stream, max_bytes, hold=True)
    session.info.setdefault(HOLDS, []).append((store, hold, sha256))
    with open(store.path(sha256), "rb") as f:
        kind = media_type(f.read(16), filename, claimed_type)
    if session.get(StoredFile, sha256) is None:
        session.add(StoredFile(sha256=sha256, size=size))
    attached = session.scalars(
        select(SourceFile).where(SourceFile.source_id == source.id, SourceFile.sha256 == sha256)
    ).first()
    if attached is not None and not attached.is_deleted:
        return attached, False
    if attached is None:
        attached = SourceFile(source_id=source.id, sha256=sha256)
        session.add(attached)
    else:
        attached.version += 1  # attached again after a delete: a restore
    attached.deleted_at = None
    attached.original_filename = filename
    attached.media_type = kind
    attached.uploaded_by_id = user.id if user else None
    attached.extracted_text = file_text(session, store, sha256, kind, filename, max_text_chars)
    session.flush()
    provenance.record(
        session,
        user,
        "attach_file",
        "source",
        source.id,
        {
            "files": {
                "before": None,
                "after": {"sha256": sha256, "size": size, "media_type": kind, "filename": filename},
            }
        },
    )
    return attached, True


def file_for_download(
    session: Session,
    user: User | None,
    store: provenance.FileStore,
    source_id: int,
    sha256: str,
) -> tuple[SourceFile, str]:
    """The attached file and its verified path; FileTampered if its bytes changed."""
    source: Source = get_record(session, user, RESOURCES["sources"], source_id)
    attached = session.scalars(
        select(SourceFile).where(
            SourceFile.source_id == source.id,
            SourceFile.sha256 == sha256.lower(),
            SourceFile.deleted_at.is_(None),
        )
    ).first()
    if attached is None:
        raise NotFound(f"Source {source_id} has no file {sha256}.")
    return attached, store.check(attached.sha256, attached.size)


def file_text(
    session: Session,
    store: provenance.FileStore,
    sha256: str,
    kind: str | None,
    filename: str | None,
    max_chars: int,
) -> str | None:
    """The stored file's text: as extracted for another source already, else extracted now."""
    if extract.kind_of(kind, filename) is None:
        return None
    known = session.scalars(
        select(SourceFile.extracted_text)
        .where(SourceFile.sha256 == sha256, SourceFile.extracted_text.is_not(None))
        .limit(1)
    ).first()
    if known is not None and len(known) <= max_chars:
        return known
    with open(store.path(sha256), "rb") as f:
        data = f.read()
    return extract.extract_text(data, kind, filename, max_chars)


def files_to_extract(session: Session, redo: bool = False) -> list[int]:
    """Ids of attached files of a readable kind without text (all of them when `redo`)."""
    query = select(SourceFile.id, SourceFile.media_type, SourceFile.original_filename)
    if not redo:
        query = query.where(SourceFile.extracted_text.is_(None))
    return [
        file_id
        for file_id, kind, filename in session.execute(query.order_by(SourceFile.id))
        if extract.kind_of(kind, filename) is not None
    ]


def extract_again(
    session: Session, store: provenance.FileStore, file_id: int, max_chars: int
) -> SourceFile:
    """Extract one attached file's text from its verified bytes; FileTampered if they changed."""
    attached = session.get(SourceFile, file_id)
    path = store.check(attached.sha256, attached.size)
    with open(path, "rb") as f:
        data = f.read()
    attached.extracted_text = extract.extract_text(
        data, attached.media_type, attached.original_filename, max_chars
    )
    session.flush()
    return attached
