"""Bulk import of spreadsheets and other organisations' datasets (CSV and XLSX).

Services for the command line and the pages, taking the session, the acting user, the file's
bytes and the mapping (see mapping.py), and answering a Report that serialises to JSON:

    inspect(data, filename)                      -> Inspection (mapping guessed, remarks)
    run_import(session, user, store, data, filename, mapping, dry_run=..., on_duplicate=...)
                                                 -> Report
    save_preset / get_preset / list_presets      named mappings kept in the archive

run_import never commits: with report.written the caller commits, otherwise it rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import access, provenance
from ..models import ImportPreset
from .cells import OrderEvidence, as_text
from .engine import (
    ON_DUPLICATE,
    Job,
    Problem,
    Progress,
    Report,
    dataset_key,
    execute,
    read_choice,
)
from .mapping import TARGETS, MappingError, check_mapping, detect
from .reading import FileProblem, is_blank, open_table

__all__ = [
    "FileProblem",
    "Inspection",
    "MappingError",
    "Problem",
    "Report",
    "check_mapping",
    "get_preset",
    "inspect",
    "list_presets",
    "run_import",
    "save_preset",
]

MAX_PRESET_NAME = 100


@dataclass
class Inspection:
    mapping: dict[str, Any]
    remarks: list[str]
    table: dict[str, Any]
    headers: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping,
            "remarks": self.remarks,
            "file": self.table,
            "headers": self.headers,
        }


def inspect(data: bytes, filename: str | None = None) -> Inspection:
    """Guess the mapping from the headers (Spanish and English) and the dates' order."""
    table = open_table(data, filename)
    mapping, remarks = detect(table.headers)
    checked = check_mapping(mapping, table.headers)
    report = Report(
        filename, "", len(data), table.describe(), dataset_key(table.headers), True, "skip"
    )
    job = Job(None, None, table, checked, report)
    job.detect_dates()
    formats = {}
    for source, order in job.orders.items():
        if source.startswith("constants."):
            continue
        evidence_format = _format_for(job, source, order)
        if evidence_format:
            formats[source] = evidence_format
    if formats:
        mapping["date_formats"] = formats
    remarks.extend(_unlisted_values(job, checked))
    remarks.extend(str(p) for p in report.errors + report.notes)
    remarks.insert(0, f"{len(table.headers)} columns, {job.total_rows} rows under the header.")
    return Inspection(mapping, remarks, table.describe(), table.headers)


def _unlisted_values(job, checked, limit: int = 20) -> list[str]:
    """Remarks on the cells of controlled-list columns that need a line in `values`."""
    listed = {
        header: TARGETS[target]
        for header, target in checked.columns.items()
        if target and TARGETS[target].kind == "choice"
    }
    unlisted: dict[str, list[str]] = {header: [] for header in listed}
    for _number, cells in job.table.rows():
        row = dict(zip(job.headers, cells, strict=False))
        for header, target in listed.items():
            value = row.get(header)
            text = as_text(value)
            seen = unlisted[header]
            if is_blank(value) or read_choice(value, target) is not None or text in seen:
                continue
            if len(seen) < limit:
                seen.append(text)
    return [
        f"Column {header!r} feeds {listed[header].key}, but "
        f"{', '.join(repr(v) for v in values)} are not in its list "
        f"({', '.join(map(str, listed[header].choices))}): say what each means in "
        f"values.{listed[header].key}."
        for header, values in unlisted.items()
        if values
    ]


def _format_for(job, source: str, order: str) -> str | None:
    """The strptime format of a column of numeric dates, now that their order is known."""
    seen = OrderEvidence()
    for number, cells in job.table.rows():
        row = dict(zip(job.headers, cells, strict=False))
        seen.add(number, row.get(source))
        if seen.example is not None:
            break
    if seen.example is None:
        return None
    fmt = seen.format()
    if fmt and order != "day-first":
        fmt = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    return fmt


def run_import(
    session: Session,
    user,
    store: provenance.FileStore,
    data: bytes,
    filename: str | None,
    mapping: dict[str, Any],
    *,
    dry_run: bool = False,
    on_duplicate: str = "skip",
    max_bytes: int = 100 * 1024 * 1024,
    progress: Progress | None = None,
) -> Report:
    """Check every row, then (unless a dry run, and only with no error) import them all.

    Raises FileProblem for a file that is no table, MappingError for a mapping that cannot be
    used; everything about the rows is in the report.
    """
    access.require(user, "create", "imports")
    if on_duplicate not in ON_DUPLICATE:
        raise MappingError({"on_duplicate": [f"Must be one of: {', '.join(ON_DUPLICATE)}."]})
    if len(data) > max_bytes:
        raise FileProblem(f"The file is larger than the limit of {max_bytes} bytes.")
    table = open_table(data, filename)
    checked = check_mapping(mapping, table.headers)
    return execute(
        session,
        user,
        store,
        data,
        filename,
        table,
        checked,
        dry_run=dry_run,
        on_duplicate=on_duplicate,
        max_bytes=max_bytes,
        progress=progress,
    )


def get_preset(session: Session, name: str) -> dict[str, Any] | None:
    preset = session.scalar(select(ImportPreset).where(ImportPreset.name == name))
    return None if preset is None else dict(preset.mapping)


def list_presets(session: Session) -> list[ImportPreset]:
    return list(session.scalars(select(ImportPreset).order_by(ImportPreset.name)))


def save_preset(session: Session, user, name: str, mapping: dict[str, Any]) -> ImportPreset:
    """Keep the mapping under `name` (replacing the one of that name), audited."""
    access.require(user, "create", "import presets")
    name = (name or "").strip()
    if not name or len(name) > MAX_PRESET_NAME:
        raise MappingError(
            {"name": [f"Give the preset a name of 1 to {MAX_PRESET_NAME} characters."]}
        )
    check_mapping(mapping)
    preset = session.scalar(select(ImportPreset).where(ImportPreset.name == name))
    before = None if preset is None else dict(preset.mapping)
    if preset is None:
        preset = ImportPreset(name=name, mapping=mapping)
        session.add(preset)
    else:
        preset.mapping = mapping
    session.flush()
    if before != mapping:
        provenance.record(
            session,
            user,
            "save_import_preset",
            "import_preset",
            preset.id,
            {"name": name, "mapping": {"before": before, "after": mapping}},
        )
    return preset
