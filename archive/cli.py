"""Command-line tools: they call the same services as the views."""

from __future__ import annotations

import json
import os
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import func, select

from . import (
    access,
    context_figures,
    database,
    demo,
    imports,
    provenance,
    search,
    sourcefiles,
    users,
)
from .extensions import db
from .models import SourceFile, StoredFile, User

# Commands are run by whoever operates the server; the audit log names them "cli".
OPERATOR = access.SystemActor("cli")

users_cli = AppGroup("users", help="Manage accounts and API tokens.")
audit_cli = AppGroup("audit", help="Check the audit log.")
demo_cli = AppGroup("demo", help="Demo data built from publicly reported cases.")
files_cli = AppGroup("files", help="Check the archived source files.")
search_cli = AppGroup("search", help="The full-text search index.")
context_cli = AppGroup(
    "context", help="Official population and homicide figures per region and year."
)
import_cli = AppGroup("import", help="Import spreadsheets and other organisations' datasets.")


def _fail(exc: ValidationError) -> None:
    messages = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.normalized_messages().items())
    raise click.ClickException(messages)


@users_cli.command("create")
@click.option("--email", required=True)
@click.option(
    "--role", required=True, type=click.Choice(["viewer", "researcher", "editor", "admin"])
)
@click.option("--password", help="At least 12 characters; generated and printed when omitted.")
def create_user(email: str, role: str, password: str | None) -> None:
    """Create an account."""
    with database.writing():
        try:
            user, password_used = users.create_user(db.session, OPERATOR, email, role, password)
        except ValidationError as exc:
            db.session.rollback()
            _fail(exc)
        db.session.commit()
    click.echo(f"Created {role} {user.email} (id {user.id}).")
    if not password:
        click.echo(f"Password: {password_used}")


@users_cli.command("token")
@click.argument("email")
def make_token(email: str) -> None:
    """Print a new API token for the user; it is shown this once only."""
    with database.writing():
        user = users.find_user(db.session, email)
        if user is None:
            raise click.ClickException(f"No user with email {email}.")
        token = users.issue_token(db.session, OPERATOR, user)
        db.session.commit()
    click.echo(token)


@users_cli.command("ensure-admin")
def ensure_admin() -> None:
    """Create an admin account when there is none, printing its credentials once."""
    with database.writing():
        if db.session.scalar(select(func.count(User.id)).where(User.role == "admin")):
            click.echo("An admin account exists already.")
            return
        user, password = users.create_user(db.session, OPERATOR, "admin@localhost", "admin", None)
        token = users.issue_token(db.session, OPERATOR, user)
        db.session.commit()
    click.echo("Created the admin account; these credentials are shown once only:")
    click.echo(f"  email:     {user.email}")
    click.echo(f"  password:  {password}")
    click.echo(f"  API token: {token}")


@users_cli.command("list")
def list_users() -> None:
    """List accounts and their roles."""
    for user in db.session.scalars(select(User).order_by(User.id)):
        state = "" if user.active else " (inactive)"
        click.echo(f"{user.id}\t{user.email}\t{user.role}{state}")


@audit_cli.command("verify")
@click.option(
    "--expect",
    metavar="SEQ:HASH",
    help="A head printed earlier by `audit head` and kept elsewhere: the log must still hold it.",
)
def verify_audit(expect: str | None) -> None:
    """Check the audit log's hash chain; exit 1 naming the first bad entry."""
    kept = None
    if expect:
        seq, _, digest = expect.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise click.BadParameter(
                "give it as SEQ:HASH, as `audit head` prints it.", param_hint="--expect"
            )
        kept = (int(seq), digest)
    report = provenance.verify_chain(db.session, kept)
    if not report.ok:
        click.echo(f"Audit log broken at entry {report.bad_seq}: {report.problem}.", err=True)
        raise SystemExit(1)
    click.echo(f"Audit log intact: {report.checked} entries.")


@audit_cli.command("head")
def audit_head() -> None:
    """Print the log's last entry as SEQ:HASH, to keep outside the database."""
    last = provenance.last_link(db.session)
    if last is None:
        raise click.ClickException("The audit log is empty.")
    click.echo(f"{last.seq}:{last.hash}")


@files_cli.command("verify")
def verify_files() -> None:
    """Check every stored file against its SHA-256; exit 1 listing the bad ones."""
    store = provenance.FileStore(current_app.config["FILES_DIR"])
    bad, checked = [], 0
    for stored in db.session.scalars(select(StoredFile).order_by(StoredFile.sha256)):
        checked += 1
        try:
            store.check(stored.sha256, stored.size)
        except provenance.FileTampered as exc:
            sources = db.session.scalars(
                select(SourceFile.source_id).where(SourceFile.sha256 == stored.sha256)
            ).all()
            bad.append(f"{exc} (sources {', '.join(map(str, sources))})")
    for line in bad:
        click.echo(line, err=True)
    if bad:
        raise SystemExit(1)
    click.echo(f"All {checked} stored files match their hashes.")


@files_cli.command("extract")
@click.option(
    "--all",
    "redo",
    is_flag=True,
    help="Extract every readable file again, not only those without text.",
)
def extract_files(redo: bool) -> None:
    """Extract the text of archived files (plain text, HTML, PDF) that have none yet."""
    store = provenance.FileStore(current_app.config["FILES_DIR"])
    max_chars = current_app.config["EXTRACTED_TEXT_MAX_CHARS"]
    file_ids = sourcefiles.files_to_extract(db.session, redo)
    db.session.rollback()  # end the read; each file is written in its own short transaction
    with_text, bad = 0, []
    with click.progressbar(file_ids, label="Extracting text", file=sys.stderr) as bar:
        for file_id in bar:
            with database.writing():
                try:
                    attached = sourcefiles.extract_again(db.session, store, file_id, max_chars)
                except provenance.FileTampered as exc:
                    source_id = db.session.get(SourceFile, file_id).source_id
                    db.session.rollback()
                    bad.append(f"{exc} (source {source_id})")
                    continue
                with_text += attached.extracted_text is not None
                db.session.commit()
    for line in bad:
        click.echo(line, err=True)
    click.echo(f"Text extracted from {with_text} of {len(file_ids)} readable files.")
    if bad:
        raise SystemExit(1)


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Load only into an archive with no events.")
def load_demo(if_empty: bool) -> None:
    """Load the real cases of DOMAIN.md section 6; running it again changes nothing."""
    with database.writing():
        if if_empty and not demo.archive_is_empty(db.session):
            click.echo("The archive has records already; demo data not loaded.")
            return
        created = demo.load(db.session, access.SystemActor("demo-loader"))
        db.session.commit()
    if created:
        click.echo(f"Demo data loaded: {created} records created.")
    else:
        click.echo("Demo data already present; nothing changed.")


@context_cli.command("load")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--source-id",
    type=click.IntRange(min=1),
    help="The source of every row that gives no source_id of its own.",
)
@click.option("--dry-run", is_flag=True, help="Check every row and count; write nothing.")
def load_context(file, source_id: int | None, dry_run: bool) -> None:
    """Load context figures from a CSV file (UTF-8, a header row naming the columns).

    Columns, in any order and case: country (default VE), admin1, admin2 (empty: the whole
    admin1), year, population, homicides, source_id, notes. A row for a region and year that
    already has a figure updates it; an empty cell leaves the stored value as it is. Any
    error in any row writes nothing: every error is listed by row and column.
    """
    try:
        text = context_figures.decode(file.read())
        with database.writing():
            rows = context_figures.read_rows(text, source_id)
            outcome = context_figures.write_rows(db.session, OPERATOR, rows)
            if dry_run:
                db.session.rollback()
            else:
                db.session.commit()
    except context_figures.LoadFailed as exc:
        db.session.rollback()
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException(
            f"{len(exc.problems)} problem(s) in {file.name}; nothing was written."
        ) from None
    counts = f"{outcome.created} created, {outcome.updated} updated, {outcome.unchanged} unchanged"
    if dry_run:
        click.echo(f"Dry run: {len(rows)} rows checked ({counts}); nothing was written.")
    else:
        click.echo(f"Context figures loaded from {len(rows)} rows: {counts}.")


@search_cli.command("reindex")
def search_reindex() -> None:
    """Rebuild the search index from the database (searches go on meanwhile)."""
    index = search.index_for(current_app)
    total = search.live_count(db.session)
    with click.progressbar(length=total, label="Indexing") as bar:
        indexed = index.reindex(db.engine, progress=bar.update)
    click.echo(f"Search index rebuilt: {indexed} records in {index.path}.")


@search_cli.command("check")
def search_check() -> None:
    """Compare the search index with the database; exit 1 listing the drift."""
    report = search.index_for(current_app).drift(db.engine)
    if report.ok:
        click.echo(f"Search index in step with the database: {report.checked} records.")
        return
    if report.problem:
        click.echo(report.problem, err=True)
    for label, keys in (
        ("missing from the index", report.missing),
        ("in the index but not live in the database", report.extra),
        ("indexed as they were before a change", report.stale),
    ):
        if keys:
            shown = ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
            click.echo(f"{len(keys)} {label}: {shown}", err=True)
    click.echo("Run `flask search reindex` to rebuild the index.", err=True)
    raise SystemExit(1)


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise click.ClickException(f"Cannot read {path}: {exc.strerror}.") from None


def _mapping_failed(exc: ValidationError) -> None:
    for key, messages in _flat_messages(exc.normalized_messages()).items():
        click.echo(f"mapping: {key}: {' '.join(messages)}", err=True)
    raise click.ClickException("The mapping cannot be used; nothing was read or written.")


def _flat_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(messages, list):
        return {prefix or "mapping": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(_flat_messages(value, name))
    return flat


@import_cli.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_inspect(file: str) -> None:
    """Print the mapping guessed for FILE as JSON; remarks go to standard error.

    Save the JSON, edit what it could not guess, and give it to `import run --mapping`.
    """
    try:
        inspection = imports.inspect(_read_file(file), os.path.basename(file))
    except imports.FileProblem as exc:
        raise click.ClickException(exc.message) from None
    except ValidationError as exc:
        _mapping_failed(exc)
    for remark in inspection.remarks:
        click.echo(remark, err=True)
    click.echo(json.dumps(inspection.mapping, ensure_ascii=False, indent=2))


def _show_report(report: imports.Report) -> None:
    """The report, for people: what was read, what happens to it, every error and note."""
    described = report.table
    how = ", ".join(
        str(described[k]) for k in ("format", "encoding", "delimiter") if described.get(k)
    )
    click.echo(f"File: {report.filename} ({how}; SHA-256 {report.sha256})")
    click.echo(
        f"Rows: {report.rows_read} read, {report.blank_rows} blank, {report.skipped_rows} "
        f"skipped by the mapping, {report.rows_with_errors} with errors"
    )

    def tally(counts: dict[str, int]) -> str:
        shown = [f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n]
        return ", ".join(shown) or "nothing"

    verb = "Would create" if not report.written else "Created"
    click.echo(f"{verb}: {tally(report.created)}")
    click.echo(f"{'Would update' if not report.written else 'Updated'}: {tally(report.updated)}")
    click.echo(f"Already as the file says: {tally(report.unchanged)}")
    click.echo(f"Skipped as already in the archive: {tally(report.skipped)}")
    if report.duplicates:
        click.echo(f"Already in the archive ({len(report.duplicates)}):")
        for found in report.duplicates:
            click.echo(f"  row {found['row']}: {found['record']} {found['id']} ({found['reason']})")
    if report.errors:
        click.echo(f"Errors ({len(report.errors)}):")
        for problem in report.errors:
            click.echo(f"  {problem}")
    if report.notes:
        click.echo(f"Notes ({len(report.notes)}):")
        for problem in report.notes:
            click.echo(f"  {problem}")


class _ProgressBars:
    """One progress bar per stage (checking, then importing), drawn on standard error."""

    def __init__(self) -> None:
        self.bar = None
        self.stage = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            label = {"checking": "Checking rows", "importing": "Importing rows"}[stage]
            self.bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            self.bar.__enter__()
            self.stage, self.done = stage, 0
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@import_cli.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(exists=True, dir_okay=False),
    help="The mapping, as JSON (`import inspect` prints one to start from).",
)
@click.option("--preset", help="The mapping saved under this name.")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option("--save-preset", metavar="NAME", help="Keep the mapping under this name.")
@click.option(
    "--on-duplicate",
    type=click.Choice(["skip", "update"]),
    default="skip",
    show_default=True,
    help="What to do with rows already in the archive.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_run(
    file: str,
    mapping_file: str | None,
    preset: str | None,
    dry_run: bool,
    save_preset: str | None,
    on_duplicate: str,
    as_json: bool,
) -> None:
    """Check FILE against the mapping and import it: every row or none.

    Exits 1, printing the report, when any row has an error; a dry run without errors
    exits 0.
    """
    if bool(mapping_file) == bool(preset):
        raise click.UsageError("Give the mapping with either --mapping FILE or --preset NAME.")
    if preset:
        mapping = imports.get_preset(db.session, preset)
        if mapping is None:
            known = ", ".join(p.name for p in imports.list_presets(db.session)) or "none"
            raise click.ClickException(f"No preset named {preset!r}; presets: {known}.")
    else:
        try:
            mapping = json.loads(_read_file(mapping_file).decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise click.ClickException(f"{mapping_file} is not JSON: {exc}.") from None
    data = _read_file(file)
    if save_preset:
        with database.writing():
            try:
                imports.save_preset(db.session, OPERATOR, save_preset, mapping)
            except ValidationError as exc:
                db.session.rollback()
                _mapping_failed(exc)
            db.session.commit()
        click.echo(f"Mapping saved as preset {save_preset!r}.", err=True)
    store = provenance.FileStore(current_app.config["FILES_DIR"])
    progress = _ProgressBars()
    with database.writing():
        try:
            report = imports.run_import(
                db.session,
                OPERATOR,
                store,
                data,
                os.path.basename(file),
                mapping,
                dry_run=dry_run,
                on_duplicate=on_duplicate,
                max_bytes=current_app.config["FILES_MAX_BYTES"],
                progress=progress,
            )
        except imports.FileProblem as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from None
        except ValidationError as exc:
            db.session.rollback()
            _mapping_failed(exc)
        finally:
            progress.close()
        if report.written:
            db.session.commit()
        else:
            db.session.rollback()
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _show_report(report)
    if not report.ok:
        click.echo("Nothing was written: correct the file or the mapping and run again.", err=True)
        raise SystemExit(1)
    if report.written:
        click.echo(f"Imported: every record cites source {report.source_id}.", err=as_json)
    else:
        click.echo("Dry run: nothing was written.", err=as_json)


def init_app(app: Flask) -> None:
    for group in (users_cli, audit_cli, demo_cli, files_cli, context_cli, search_cli, import_cli):
        app.cli.add_command(group)
