"""The mapping: a JSON document saying how a spreadsheet's columns become records.

    {
      "rows": "event" | "victim",
      "columns": {header: "event.title" | "place.admin1" | "victim.age" | ... | null},
      "date_formats": {header: strptime format},
      "values": {field or header: {cell value: value, ...}},
      "constants": {field: value, "event.title": "Enfrentamiento en {municipio}"},
      "counts": [{"columns": [header, ...], "affiliation": ..., "outcome": ..., "caused_by": ...}],
      "skip": [{"column": header, "pattern": regex}],
      "event_key": [field or header, ...],      (victim rows)
      "external_id": header
    }

A field is any the API accepts for events, places, victims and operations, written
`<record>.<field>`. `values` may also be keyed by a header, to read a code of that column
whatever field it feeds (a count column's "9999" meaning "no data": {"9999": null}).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError, fields, validate

from schemas.common import PartialDate
from schemas.events import EventSchema
from schemas.operations import OperationSchema
from schemas.places import PlaceSchema
from schemas.victims import VictimSchema

from .. import vocab
from .cells import check_format, fold

KEYS = (
    "rows",
    "columns",
    "date_formats",
    "values",
    "constants",
    "counts",
    "skip",
    "event_key",
    "external_id",
)
ROW_KINDS = ("event", "victim")
BRACES = re.compile(r"\{([^{}]+)\}")

# Fields an import may not set: imported events arrive as unpublished drafts; lists of
# actors, and the record an imported victim belongs to, are not one cell's business.
LEFT_OUT = {
    "event": {"status", "published", "actors"},
    "victim": {"event_id"},
    "operation": {"actors", "aliases"},
    "place": set(),
}
SCHEMAS = {
    "event": EventSchema,
    "place": PlaceSchema,
    "victim": VictimSchema,
    "operation": OperationSchema,
}


class MappingError(ValidationError):
    """A mapping that cannot be used; its messages are keyed by the mapping's own keys."""


@dataclass(frozen=True)
class Target:
    record: str
    name: str
    kind: str  # text, integer, float, boolean, date, choice
    choices: tuple = ()

    @property
    def key(self) -> str:
        return f"{self.record}.{self.name}"


def _kind(schema_field: fields.Field) -> tuple[str, tuple]:
    for validator in getattr(schema_field, "validators", ()):
        if isinstance(validator, validate.OneOf):
            return "choice", tuple(validator.choices)
    if isinstance(schema_field, (PartialDate, fields.Date)):
        return "date", ()
    if isinstance(schema_field, fields.Integer):
        return "integer", ()
    if isinstance(schema_field, fields.Float):
        return "float", ()
    if isinstance(schema_field, fields.Boolean):
        return "boolean", ()
    if type(schema_field).__name__ == "OnDuty":
        return "choice", vocab.ON_DUTY
    return "text", ()


def _targets() -> dict[str, Target]:
    found = {}
    for record, schema in SCHEMAS.items():
        for name, schema_field in schema().fields.items():
            if schema_field.dump_only or name in LEFT_OUT[record]:
                continue
            kind, choices = _kind(schema_field)
            found[f"{record}.{name}"] = Target(record, name, kind, choices)
    return found


TARGETS = _targets()


@dataclass
class CountSpec:
    columns: list[str]
    affiliation: str
    outcome: str
    caused_by: str = "unknown"


@dataclass
class SkipRule:
    column: str
    pattern: re.Pattern


@dataclass
class ImportMapping:
    """A checked mapping, and the document it came from (kept as given, for the audit)."""

    document: dict[str, Any]
    rows: str = "event"
    columns: dict[str, str | None] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    counts: list[CountSpec] = field(default_factory=list)
    skip: list[SkipRule] = field(default_factory=list)
    event_key: list[str] = field(default_factory=list)
    external_id: str | None = None

    def headers_named(self) -> dict[str, str]:
        """Every header the mapping names, and where (for errors about missing columns)."""
        named: dict[str, str] = {}
        for header in self.columns:
            named.setdefault(header, f"columns.{header}")
        for header in self.date_formats:
            named.setdefault(header, f"date_formats.{header}")
        for target, value in self.constants.items():
            for header in braces(value):
                named.setdefault(header, f"constants.{target}")
        for index, spec in enumerate(self.counts):
            for header in spec.columns:
                named.setdefault(header, f"counts.{index}.columns")
        for index, rule in enumerate(self.skip):
            named.setdefault(rule.column, f"skip.{index}.column")
        for item in self.event_key:
            if item not in TARGETS:
                named.setdefault(item, "event_key")
        if self.external_id:
            named.setdefault(self.external_id, "external_id")
        for key in self.values:
            if key not in TARGETS:
                named.setdefault(key, f"values.{key}")
        return named

    def sources(self) -> dict[str, str]:
        """target field -> the header feeding it, or "constants.<field>"."""
        fed = {target: header for header, target in self.columns.items() if target}
        for target in self.constants:
            fed[target] = f"constants.{target}"
        return fed


def braces(value: Any) -> list[str]:
    return BRACES.findall(value) if isinstance(value, str) else []


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


class _Errors:
    def __init__(self) -> None:
        self.messages: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.messages.setdefault(key, []).append(message)


def check_mapping(document: Any, headers: Iterable[str] | None = None) -> ImportMapping:
    """The mapping, checked; MappingError naming each key that is wrong and why.

    With `headers` (the file's), every header the mapping names must be one of them.
    """
    errors = _Errors()
    if not isinstance(document, Mapping):
        raise MappingError({"mapping": ["The mapping must be a JSON object."]})
    for key in document:
        if key not in KEYS:
            errors.add(key, f"Unknown key; a mapping has: {', '.join(KEYS)}.")
    mapping = ImportMapping(copy.deepcopy(dict(document)))
    rows = document.get("rows", "event")
    if rows not in ROW_KINDS:
        errors.add("rows", 'Must be "event" (one row per event) or "victim" (one per person).')
    else:
        mapping.rows = rows
    _check_columns(document.get("columns", {}), mapping, errors)
    _check_date_formats(document.get("date_formats", {}), mapping, errors)
    _check_values(document.get("values", {}), mapping, errors)
    _check_constants(document.get("constants", {}), mapping, errors)
    _check_counts(document.get("counts", []), mapping, errors)
    _check_skip(document.get("skip", []), mapping, errors)
    _check_event_key(document.get("event_key"), mapping, errors)
    external_id = document.get("external_id")
    if external_id is not None and (not isinstance(external_id, str) or not external_id):
        errors.add("external_id", "Must be the header of the column holding the dataset's ids.")
    else:
        mapping.external_id = external_id
    if not errors.messages:
        _check_whole(mapping, errors)
    if headers is not None and not errors.messages:
        known = list(headers)
        for header, where in mapping.headers_named().items():
            if header not in known:
                errors.add(
                    where, f"The file has no column {header!r}; its columns: {', '.join(known)}."
                )
    if errors.messages:
        raise MappingError(errors.messages)
    return mapping


def _object(value: Any, key: str, errors: _Errors) -> dict:
    if not isinstance(value, Mapping):
        errors.add(key, "Must be a JSON object.")
        return {}
    return dict(value)


def _target(name: Any, key: str, errors: _Errors) -> Target | None:
    target = TARGETS.get(name) if isinstance(name, str) else None
    if target is None:
        errors.add(
            key,
            f"{name!r} is not a field an import can fill; use <record>.<field> with record "
            "event, place, victim or operation (such as event.start_date or victim.age).",
        )
    return target


def _check_columns(value: Any, mapping: ImportMapping, errors: _Errors) -> None:
    fed_by: dict[str, str] = {}
    for header, name in _object(value, "columns", errors).items():
        key = f"columns.{header}"
        if name is None:
            mapping.columns[header] = None
            continue
        if _target(name, key, errors) is None:
            continue
        if name in fed_by:
            errors.add(key, f"{name} is fed by column {fed_by[name]!r} already.")
            continue
        fed_by[name] = header
        mapping.columns[header] = name


def _check_date_formats(value: Any, mapping: ImportMapping, errors: _Errors) -> None:
    for header, fmt in _object(value, "date_formats", errors).items():
        key = f"date_formats.{header}"
        if not isinstance(fmt, str) or not fmt:
            errors.add(key, "Must be a strptime format such as %d/%m/%Y.")
            continue
        problem = check_format(fmt)
        if problem:
            errors.add(key, problem)
            continue
        mapping.date_formats[header] = fmt


def _check_values(value: Any, mapping: ImportMapping, errors: _Errors) -> None:
    for name, table in _object(value, "values", errors).items():
        key = f"values.{name}"
        if not isinstance(table, Mapping):
            errors.add(key, "Must be a JSON object of cell value -> value.")
            continue
        target = TARGETS.get(name)
        for cell, meant in table.items():
            if not _is_scalar(meant):
                errors.add(f"{key}.{cell}", "Must be a single value (or null).")
            elif (
                target is not None
                and target.kind == "choice"
                and meant is not None
                and meant not in target.choices
            ):
                errors.add(
                    f"{key}.{cell}",
                    f"{meant!r} is not in the list for {name}: "
                    f"{', '.join(map(str, target.choices))}.",
                )
        mapping.values[name] = {str(cell): meant for cell, meant in table.items()}


def _check_constants(value: Any, mapping: ImportMapping, errors: _Errors) -> None:
    for name, constant in _object(value, "constants", errors).items():
        key = f"constants.{name}"
        target = _target(name, key, errors)
        if target is None:
            continue
        if not _is_scalar(constant):
            errors.add(key, "Must be a single value: text, a number, true/false or null.")
            continue
        if name in mapping.columns.values():
            header = next(h for h, t in mapping.columns.items() if t == name)
            errors.add(key, f"{name} is fed by column {header!r} already.")
            continue
        if target.kind == "choice" and not braces(constant) and constant is not None:
            listed = mapping.values.get(name, {})
            if constant not in target.choices and str(constant) not in listed:
                errors.add(
                    key,
                    f"{constant!r} is not in the list for {name}: "
                    f"{', '.join(map(str, target.choices))}.",
                )
                continue
        mapping.constants[name] = constant


def _choice(spec: Mapping, name: str, choices: tuple, key: str, errors: _Errors, default=None):
    value = spec.get(name, default)
    if value not in choices:
        errors.add(f"{key}.{name}", f"Must be one of: {', '.join(choices)}.")
    return value


def _check_counts(value: Any, mapping: ImportMapping, errors: _Errors) -> None:
    if not isinstance(value, list):
        errors.add("counts", "Must be a list of {columns, affiliation, outcome, caused_by}.")
        return
    for index, spec in enumerate(value):
        key = f"counts.{index}"
        if not isinstance(spec, Mapping):
            errors.add(key, "Must be an object with columns, affiliation, outcome, caused_by.")
            continue
        for name in spec:
            if name not in ("columns", "affiliation", "outcome", "caused_by"):
                errors.add(
                    f"{key}.{name}", "Unknown key; use columns, affiliation, outcome, caused_by."
                )
        columns = spec.get("columns")
        if isinstance(columns, str):
            columns = [columns]
        if not columns or not all(isinstance(c, str) and c for c in columns):
            errors.add(f"{key}.columns", "Must list the header(s) whose numbers are added.")
            columns = []
        affiliation = _choice(spec, "affiliation", vocab.AFFILIATIONS, key, errors)
        outcome = _choice(spec, "outcome", vocab.OUTCOMES, key, errors)
        caused_by = _choice(spec, "caused_by", vocab.CAUSED_BY, key, errors, "unknown")
        mapping.counts.append(CountSpec(list(columns), affiliation, outcome, caused_by))


def _check_skip(value: Any, mapping: ImportMapping, errors: _Errors) -> None:
    if not isinstance(value, list):
        errors.add("skip", "Must be a list of {column, pattern}.")
        return
    for index, rule in enumerate(value):
        key = f"skip.{index}"
        if not isinstance(rule, Mapping) or set(rule) != {"column", "pattern"}:
            errors.add(key, 'Must be {"column": header, "pattern": regular expression}.')
            continue
        if not isinstance(rule["column"], str) or not isinstance(rule["pattern"], str):
            errors.add(key, "column and pattern must be text.")
            continue
        try:
            pattern = re.compile(rule["pattern"])
        except re.error as exc:
            errors.add(f"{key}.pattern", f"Not a valid regular expression: {exc}.")
            continue
        mapping.skip.append(SkipRule(rule["column"], pattern))


def _check_event_key(value: Any, mapping: ImportMapping, errors: _Errors) -> None:
    if value is None:
        return
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        errors.add(
            "event_key", "Must list the fields or headers whose equal values make one event."
        )
        return
    mapping.event_key = list(value)


def _check_whole(mapping: ImportMapping, errors: _Errors) -> None:
    fed = mapping.sources()
    if mapping.rows == "event":
        if any(t.startswith("victim.") for t in fed):
            errors.add("rows", 'Victim fields need "rows": "victim" (one row per person).')
        if mapping.event_key:
            errors.add("event_key", 'Only victim rows are grouped into events; rows is "event".')
    needed = ["event.title", "event.event_type"]
    if mapping.rows == "victim":
        needed.append("victim.outcome")
    for name in needed:
        if name not in fed:
            errors.add(
                "columns",
                f"Nothing gives {name}: map a column to it, or give it in constants.",
            )
    for header in mapping.date_formats:
        target = mapping.columns.get(header)
        if target is not None and TARGETS[target].kind != "date":
            errors.add(f"date_formats.{header}", f"Column {header!r} feeds {target}, not a date.")


# --- Detecting a mapping from the headers ----------------------------------------------------

# Folded header -> field; Spanish and English words of the datasets met so far.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "event.start_date": (
        "fecha",
        "date",
        "fecha del hecho",
        "fecha de los hechos",
        "fecha del evento",
        "fecha evento",
        "fecha inicio",
        "start date",
        "event date",
        "date of incident",
        "incident date",
        "fecha del enfrentamiento",
        "dia",
    ),
    "event.end_date": ("fecha fin", "fecha final", "end date", "fecha de fin"),
    "event.title": ("titulo", "title", "evento", "event", "hecho", "nombre del evento"),
    "event.description": (
        "descripcion",
        "description",
        "resumen",
        "summary",
        "narrativa",
        "narrative",
        "relato",
        "detalle",
        "details",
        "notes",
        "notas",
        "observaciones",
    ),
    "event.event_type": ("tipo", "tipo de evento", "event type", "type", "tipo de hecho"),
    "event.agents_deployed": (
        "agentes",
        "efectivos",
        "agents deployed",
        "agentes desplegados",
        "officers deployed",
    ),
    "event.official_account": ("version oficial", "official account", "version official"),
    "place.country": ("pais", "country"),
    "place.admin1": (
        "estado",
        "entidad",
        "entidad federativa",
        "state",
        "province",
        "provincia",
        "departamento",
        "region",
        "admin1",
    ),
    "place.admin2": (
        "municipio",
        "county",
        "municipality",
        "alcaldia",
        "distrito",
        "district",
        "admin2",
        "delegacion",
        "partido",
        "canton",
    ),
    "place.admin3": ("parroquia", "admin3", "parish"),
    "place.locality": (
        "localidad",
        "ciudad",
        "city",
        "town",
        "locality",
        "poblacion",
        "lugar",
        "place",
        "barrio",
        "sector",
        "colonia",
    ),
    "place.latitude": ("latitud", "latitude", "lat"),
    "place.longitude": ("longitud", "longitude", "lon", "lng", "long"),
    "victim.name": (
        "nombre",
        "name",
        "victima",
        "nombre de la victima",
        "full name",
        "nombre completo",
        "victim",
        "victim name",
        "nombre y apellido",
    ),
    "victim.alias": ("alias", "apodo"),
    "victim.age": ("edad", "age", "victim age"),
    "victim.sex": ("sexo", "sex", "gender", "genero", "victim gender"),
    "victim.affiliation": ("afiliacion", "affiliation", "condicion"),
    "victim.outcome": (
        "resultado",
        "outcome",
        "situacion",
        "manner of death",
        "estatus",
        "status",
    ),
    "victim.caused_by": ("causado por", "caused by", "responsable", "perpetrador"),
    "victim.circumstances": ("circunstancias", "circumstances"),
    "operation.name": ("operacion", "operativo", "operation", "nombre del operativo"),
}
HEADER_FIELDS = {fold(word): target for target, words in SYNONYMS.items() for word in words}
EXTERNAL_IDS = {
    fold(w)
    for w in (
        "id",
        "folio",
        "id caso",
        "case id",
        "record id",
        "identificador",
        "uid",
        "clave",
        "codigo",
        "code",
        "no",
        "numero",
        "n",
    )
}
OUTCOME_WORDS = {
    "killed": (
        "muertos",
        "muertas",
        "muerto",
        "fallecidos",
        "fallecidas",
        "killed",
        "dead",
        "deaths",
        "death",
        "asesinados",
        "abatidos",
        "homicidios",
        "fatalities",
    ),
    "injured": (
        "heridos",
        "heridas",
        "herido",
        "lesionados",
        "lesionadas",
        "injured",
        "wounded",
        "injuries",
    ),
    "detained": (
        "detenidos",
        "detenidas",
        "detenido",
        "arrested",
        "detained",
        "arrests",
        "capturados",
        "aprehendidos",
    ),
    "disappeared": ("desaparecidos", "desaparecidas", "disappeared", "missing"),
}
AFFILIATION_WORDS = {
    "state_agent": (
        "soldados",
        "soldado",
        "militares",
        "militar",
        "policias",
        "policia",
        "agentes",
        "agente",
        "marinos",
        "marinas",
        "soldiers",
        "police",
        "officers",
        "troops",
        "funcionarios",
        "guardias",
        "elementos",
        "federales",
    ),
    "non_state_armed": (
        "agresores",
        "agresor",
        "delincuentes",
        "criminales",
        "sicarios",
        "aggressors",
        "gunmen",
        "attackers",
        "presuntos",
        "civiles armados",
        "armed civilians",
        "abatidos",
    ),
    "civilian": ("civiles", "civil", "civilians", "civilian", "transeuntes", "bystanders"),
}
# Who harms whom, as the domain counts it: agents are harmed by non-state actors, the others
# by the state; civilians in a clash may be harmed by either, so "unknown".
CAUSED_BY = {"state_agent": "non_state", "non_state_armed": "state", "civilian": "unknown"}


def _words_in(header: str, words: Iterable[str]) -> bool:
    padded = f" {header} "
    return any(f" {fold(word)} " in padded for word in words)


def _count_of(header: str) -> tuple[str, str, str] | None:
    """(affiliation, outcome, caused_by) a header such as "civiles heridos" names."""
    plain = re.sub(r"[^a-z0-9 ]", " ", header)
    plain = " ".join(plain.split())
    outcome = next((o for o, words in OUTCOME_WORDS.items() if _words_in(plain, words)), None)
    if outcome is None:
        return None
    affiliation = next(
        (a for a, words in AFFILIATION_WORDS.items() if _words_in(plain, words)), None
    )
    if affiliation is None:
        if outcome == "detained":
            return "unknown", "detained", "state"
        return None
    if affiliation == "non_state_armed" and _words_in(plain, ("abatidos",)):
        return affiliation, "killed", "state"
    caused_by = "state" if outcome == "detained" else CAUSED_BY[affiliation]
    return affiliation, outcome, caused_by


def detect(headers: list[str]) -> tuple[dict[str, Any], list[str]]:
    """A mapping guessed from the headers, and remarks on what it could not guess."""
    columns: dict[str, str | None] = {}
    counts: dict[tuple[str, str, str], list[str]] = {}
    remarks: list[str] = []
    taken: set[str] = set()
    external_id = None
    for header in headers:
        folded = fold(header)
        plain = " ".join(re.sub(r"[^a-z0-9 ]", " ", folded.replace("_", " ")).split())
        target = HEADER_FIELDS.get(plain) or HEADER_FIELDS.get(folded)
        count = _count_of(plain) if target is None else None
        if target and target not in taken:
            columns[header] = target
            taken.add(target)
        elif count:
            counts.setdefault(count, []).append(header)
            columns[header] = None
        elif external_id is None and plain in EXTERNAL_IDS:
            external_id = header
            columns[header] = None
        else:
            columns[header] = None
            remarks.append(f"Column {header!r}: no field recognised; it is left out (null).")
    rows = "victim" if taken & {"victim.name", "victim.age", "victim.sex"} else "event"
    document: dict[str, Any] = {"rows": rows, "columns": columns}
    constants: dict[str, Any] = {}
    if "event.title" not in taken:
        constants["event.title"] = _title(columns)
        remarks.append(
            f"No title column: every event is titled {constants['event.title']!r}; edit "
            "constants.event.title (braces name columns)."
        )
    if "event.event_type" not in taken:
        constants["event.event_type"] = "other"
        remarks.append(
            'No event type column: every event gets "other"; set constants.event.event_type '
            f"to one of: {', '.join(vocab.EVENT_TYPES)}."
        )
    if rows == "victim" and "victim.outcome" not in taken:
        constants["victim.outcome"] = "killed"
        remarks.append('No outcome column: every person is recorded as "killed"; check it.')
    if constants:
        document["constants"] = constants
    if counts:
        document["counts"] = [
            {"columns": headers_, "affiliation": a, "outcome": o, "caused_by": c}
            for (a, o, c), headers_ in counts.items()
        ]
    if external_id:
        document["external_id"] = external_id
    if rows == "victim":
        places = ("event.start_date", "place.admin1", "place.admin2", "place.locality")
        key = [t for t in places if t in taken]
        if key:
            document["event_key"] = key
        remarks.append(
            "One row per person: rows with equal "
            f"{', '.join(key) or 'values (set event_key)'} form one event; check event_key."
        )
    return document, remarks


def _title(columns: dict[str, str | None]) -> str:
    by_target = {t: h for h, t in columns.items() if t}
    where = [
        by_target[t] for t in ("place.locality", "place.admin2", "place.admin1") if t in by_target
    ]
    if where:
        return "Evento en " + ", ".join("{" + h + "}" for h in where[:2])
    if "event.start_date" in by_target:
        return "Evento del {" + by_target["event.start_date"] + "}"
    return "Evento importado"
