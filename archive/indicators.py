"""The asymmetry indicators of DOMAIN.md section 4, per operation, force, region and period.

How a figure is made, in three steps, each over all the events in scope at once:

1. Cells. For each event and each (affiliation, outcome, caused_by) cell: n, the live victim
   records, and r1…rk, the live casualty counts sources report. low = max(n, min r),
   high = max(n, max r), best = max(n, lower median r); without counts all three are n.
2. Quantities, by adding cells: civilians killed by the state (civilian, non-state armed and
   unknown affiliations, caused_by = state), civilians injured, agents killed and injured
   (any cause; agents recorded as off duty are taken out and reported apart), people
   detained by the state.
3. Groups add their events' low, best and high; ratios divide them, a ratio's low being the
   numerator's low over the denominator's high and its high the reverse. A zero denominator
   gives no number but a reason.

Steps 1-3 up to the sums run in one SQL statement (_group_totals): the database adds up each
group's cells, events and flags and counts the distinct sources behind each figure, and
Python receives one row per group, then divides.

Only verified events count unless drafts are asked for (and the reader may see them); what a
reader may see is decided by `access.visible`, so anonymous readers get published events
only. Restricted victims and sources count, as numbers, without being identified: the
`sources` behind a figure only counts sources that reader may see.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from flask import current_app, has_app_context
from marshmallow import ValidationError
from sqlalchemy import (
    Integer,
    and_,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from . import access, records, vocab
from .models import (
    Actor,
    CasualtyCount,
    Citation,
    Event,
    EventActor,
    Operation,
    OperationActor,
    Place,
    Source,
    User,
    Victim,
)
from .resources import RESOURCES, _boolean

METHOD_VERSION = "1.0"

INDICATOR_KEYS = (
    "civilians_killed_by_state",
    "civilians_injured_by_state",
    "agents_killed",
    "agents_injured",
    "detained",
    "civilian_agent_death_ratio",
    "lethality_index",
    "agent_lethality",
    "lethality_differential",
    "civilians_killed_per_event",
    "one_sided_event_share",
    "deaths_per_1000_agents_deployed",
    "killed_per_detained",
    "rate_per_100k",
    "share_of_homicides",
    "dirty_war_index",
    "agents_killed_off_duty",
)

GROUPINGS = ("operation", "actor", "admin1", "admin2", "year", "month")

# "Civilians" for these indicators: everyone the state killed or injured who is not an agent.
CIVILIAN_AFFILIATIONS = ("civilian", "non_state_armed", "unknown")
# An event counts for the forces named on it in these roles (a target is not the force).
FORCE_ROLES = ("perpetrator", "present")


@dataclass(frozen=True)
class Definition:
    formula: str
    unit: str
    kind: str  # count, ratio, share (0-100) or rate


DEFINITIONS: dict[str, Definition] = {
    "civilians_killed_by_state": Definition(
        "People killed by the state (caused_by = state) who are not state agents: "
        "affiliation civilian, non-state armed or unknown.",
        "people",
        "count",
    ),
    "civilians_injured_by_state": Definition(
        "People injured by the state who are not state agents.", "people", "count"
    ),
    "agents_killed": Definition(
        "State agents killed, by anyone, on duty or with duty unknown; agents recorded as off "
        "duty are left out and reported apart.",
        "people",
        "count",
    ),
    "agents_injured": Definition(
        "State agents injured, by anyone, on duty or with duty unknown.", "people", "count"
    ),
    "detained": Definition(
        "People detained by the state who are not state agents.", "people", "count"
    ),
    "civilian_agent_death_ratio": Definition(
        "civilians killed by the state ÷ agents killed", "civilians per agent", "ratio"
    ),
    "lethality_index": Definition(
        "civilians killed by the state ÷ civilians injured by the state",
        "killed per injured",
        "ratio",
    ),
    "agent_lethality": Definition("agents killed ÷ agents injured", "killed per injured", "ratio"),
    "lethality_differential": Definition("lethality index ÷ agent lethality", "times", "ratio"),
    "civilians_killed_per_event": Definition(
        "civilians killed by the state ÷ all events in the group, those without deaths included",
        "people per event",
        "ratio",
    ),
    "one_sided_event_share": Definition(
        "events in which the state killed civilians and no agent was killed or injured ÷ "
        "events in which the state killed civilians × 100",
        "%",
        "share",
    ),
    "deaths_per_1000_agents_deployed": Definition(
        "civilians killed by the state × 1000 ÷ agents deployed, over the events that give "
        "the number of agents deployed",
        "per 1,000 agents",
        "rate",
    ),
    "killed_per_detained": Definition(
        "civilians killed by the state ÷ people detained by the state",
        "killed per detained",
        "ratio",
    ),
    "rate_per_100k": Definition(
        "civilians killed by the state × 100000 ÷ population of the places and years of the "
        "events (context figures; several years add up as person-years)",
        "per 100,000 inhabitants",
        "rate",
    ),
    "share_of_homicides": Definition(
        "civilians killed by the state ÷ all homicides in the same places and years × 100 "
        "(context figures)",
        "%",
        "share",
    ),
    "dirty_war_index": Definition(
        "civilians (affiliation civilian) killed by the state ÷ (civilians + non-state armed "
        "killed by the state) × 100",
        "%",
        "share",
    ),
    "agents_killed_off_duty": Definition(
        "State agents killed while off duty (victim records with on_duty = false): a loss "
        "suffered outside any operation, reported apart from agents killed.",
        "people",
        "count",
    ),
}


@dataclass(frozen=True)
class Threshold:
    value: float
    reference: str


# Conventions of the literature, not laws; INDICATOR_THRESHOLDS in the settings overrides the
# values ({"lethality_index": 1.5}). A figure is flagged when it is above its threshold.
THRESHOLDS: dict[str, Threshold] = {
    "civilian_agent_death_ratio": Threshold(
        10,
        "Chevigny, P. (1991). Police deadly force as social control: Jamaica, Argentina and "
        "Brazil. Criminal Law Forum 1(3).",
    ),
    "lethality_index": Threshold(
        1,
        "Cano, I. (1997). The use of lethal force by police in Rio de Janeiro. ISER; Monitor "
        "of the Use of Lethal Force in Latin America (2019).",
    ),
    "share_of_homicides": Threshold(
        10,
        "Monitor of the Use of Lethal Force in Latin America (2019): a share of 10% of all "
        "homicides is the figure often quoted.",
    ),
}


def thresholds() -> dict[str, Threshold]:
    overrides = current_app.config.get("INDICATOR_THRESHOLDS") or {} if has_app_context() else {}
    return {
        key: Threshold(float(overrides.get(key, t.value)), t.reference)
        for key, t in THRESHOLDS.items()
    }


# --- The question asked ----------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    filters: Mapping[str, str] = field(default_factory=dict)
    include_drafts: bool = False
    group_by: str | None = None


def parse_query(args: Mapping[str, str], grouped: bool = True, ignore: Iterable[str] = ()) -> Query:
    """`group_by`, `include_drafts` and any filter of the events list; errors name the
    parameter (marshmallow.ValidationError, answered 422)."""
    args = {k: v for k, v in args.items() if k not in set(ignore)}
    errors: dict[str, list[str]] = {}
    group_by = args.pop("group_by", "operation" if grouped else None)
    if group_by is not None and (not grouped or group_by not in GROUPINGS):
        errors["group_by"] = (
            [f"Must be one of: {', '.join(GROUPINGS)}."]
            if grouped
            else ["Not accepted here: these are one operation's figures."]
        )
    include_drafts = False
    if "include_drafts" in args:
        try:
            include_drafts = _boolean(args.pop("include_drafts"))
        except ValueError as exc:
            errors["include_drafts"] = [str(exc)]
    try:
        records.parse_filters(RESOURCES["events"], args)
    except ValidationError as exc:
        errors.update(exc.normalized_messages())
    if errors:
        raise ValidationError(errors)
    return Query(args, include_drafts, group_by)


def drafts_used(user: User | None, query: Query) -> bool:
    """Drafts count only when asked for and only for readers who may see them."""
    return query.include_drafts and access.is_staff(user)


def _event_conditions(user: User | None, query: Query) -> list:
    conditions = [
        access.visible(Event, user),
        *records.parse_filters(RESOURCES["events"], query.filters),
    ]
    if not drafts_used(user, query):
        conditions.append(Event.status == "verified")
    return conditions


# --- Step 1 and 2: cells, then quantities per event -----------------------------------------

# Base quantities, each a sum of cells: {name: (affiliations, outcome, caused_by or None)}.
QUANTITY_CELLS = {
    "ck_civilian": (("civilian",), "killed", "state"),
    "ck_nsa": (("non_state_armed",), "killed", "state"),
    "ck_unknown": (("unknown",), "killed", "state"),
    "ci": (CIVILIAN_AFFILIATIONS, "injured", "state"),
    "ak": (("state_agent",), "killed", None),
    "ai": (("state_agent",), "injured", None),
    "det": (CIVILIAN_AFFILIATIONS, "detained", "state"),
}
# Derived: civilians killed by the state, all three affiliations together.
CK_PARTS = ("ck_civilian", "ck_nsa", "ck_unknown")
QUANTITIES = (*QUANTITY_CELLS, "ck", "akoff")
BOUNDS = ("low", "best", "high")
# In SQL a base quantity is an integer (cheaper to compare than its name), a power of 16, so
# that the codes of an event's cells add up to what quantities it has figures for: a
# quantity has at most 12 cells (4 affiliations x 3 causes), so its hex digit never
# overflows. 0 stands for "whatever the event has figures for" (an event's own citations).
CODES = {name: 16**i for i, name in enumerate(QUANTITY_CELLS)}
ANY_QUANTITY = 0


def _has_any(mask, codes: Iterable[int]):
    """Whether a sum of cell codes holds any of the quantities `codes` (SQL, boolean)."""
    return mask.op("&")(sum(15 * code for code in codes)) != 0


def _quantity_case(affiliation, outcome, caused_by):
    """The code of the base quantity a cell belongs to, as a SQL expression (NULL: none)."""
    whens = []
    for name, (affiliations, out, cause) in QUANTITY_CELLS.items():
        condition = and_(affiliation.in_(affiliations), outcome == out)
        if cause is not None:
            condition = and_(condition, caused_by == cause)
        whens.append((condition, literal_column(str(CODES[name]), Integer)))
    return case(*whens, else_=None)


def _greater(a, b):
    """The larger of two integers, in SQL both databases speak (GREATEST is PostgreSQL's)."""
    return case((a > b, a), else_=b)


# A cell as one integer: its quantity's code × CELL_SPAN + which of the quantity's cells it
# is (affiliations × causes, at most 3 of them), so that a cell is grouped and compared as a
# number rather than as three strings, and its quantity is the code // CELL_SPAN.
CELL_SPAN = 4


def _cell_case(affiliation, outcome, caused_by):
    """A cell's code (CELL_SPAN), as a SQL expression (NULL: in no base quantity); by
    outcome first, so that most records are told apart by one comparison or two."""
    by_outcome: dict[str, list] = {}
    for name, (affiliations, out, cause) in QUANTITY_CELLS.items():
        causes = vocab.CAUSED_BY if cause is None else (cause,)
        cells = [(a, c) for a in affiliations for c in causes]
        assert len(cells) <= CELL_SPAN - 1 or len(cells) == CELL_SPAN
        for i, (a, c) in enumerate(cells):
            code = literal_column(str(CODES[name] * CELL_SPAN + i), Integer)
            by_outcome.setdefault(out, []).append((and_(affiliation == a, caused_by == c), code))
    return case(
        *((outcome == out, case(*whens, else_=None)) for out, whens in by_outcome.items()),
        else_=None,
    )


def _cells(scope, carried: Iterable[str] = (), reports=None):
    """Per event of `scope` (a subquery or CTE with `event_id` and the `carried` columns, one
    row per event in scope) and (affiliation, outcome, caused_by) cell that makes up a base
    quantity: the event's `carried` columns, its quantity's code and its low, best and high by
    the cell rule of DOMAIN.md section 4, and the agents killed off duty in it (event_id,
    *carried, quantity, low, best, high, akoff), as a SELECT both databases run. `reports`:
    the counts of the events in scope (_reports), when made already.

    A cell's figures: n victim records (`off` of them agents off duty) and the counts, ranked
    so that the lower median is the ((k + 1) / 2)th of k, in integer division (k counted over
    the same ordered window, so that the counts are sorted once). What the cells carry of
    their event comes along in the same pass, so that nothing joins them back to their
    events. Victims in no base quantity make cells without a code, left out at the end.
    """
    kept = [scope.c[c] for c in carried]
    off_duty = and_(Victim.affiliation == "state_agent", Victim.on_duty == "false")
    cell = _cell_case(Victim.affiliation, Victim.outcome, Victim.caused_by).label("cell")
    v_cell = [Victim.event_id, cell]
    victims = (
        select(
            *v_cell,
            *kept,
            func.count().label("n"),
            func.sum(case((off_duty, 1), else_=0)).label("off"),
            cast(null(), Integer).label("r_min"),
            cast(null(), Integer).label("r_median"),
            cast(null(), Integer).label("r_max"),
        )
        .join(scope, scope.c.event_id == Victim.event_id)
        .where(Victim.deleted_at.is_(None))
        .group_by(*v_cell, *kept)
    )
    if reports is None:
        reports = _reports(scope, carried).subquery("reports")
    partition = [reports.c.event_id, reports.c.cell]
    window = {"partition_by": partition, "order_by": reports.c["count"]}
    ranked = (
        select(
            *partition,
            *(reports.c[c] for c in carried),
            reports.c["count"],
            func.row_number().over(**window).label("position"),
            func.count().over(**window, rows=(None, None)).label("k"),
        )
    ).subquery("ranked")
    ranked_cell = [ranked.c.event_id, ranked.c.cell, *(ranked.c[c] for c in carried)]
    reported = select(
        *ranked_cell,
        literal(0, Integer).label("n"),
        literal(0, Integer).label("off"),
        func.min(ranked.c["count"]).label("r_min"),
        func.max(
            case((ranked.c.position == (ranked.c.k + 1) // 2, ranked.c["count"]), else_=None)
        ).label("r_median"),
        func.max(ranked.c["count"]).label("r_max"),
    ).group_by(*ranked_cell)
    both = victims.union_all(reported).subquery("both")
    quantity = both.c.cell // CELL_SPAN
    agent = quantity.in_([CODES["ak"], CODES["ai"]])
    # A cell has at most one row of victims (the other, of counts, says 0): max is its n,
    # and stays an integer where a sum of counts would be a decimal on PostgreSQL (slower
    # to add up, and larger to hold while grouping).
    n, off = func.max(both.c.n), func.max(both.c.off)
    # Agents recorded as off duty leave the agents' cells and are reported apart.
    less = case((agent, off), else_=0)

    def bound(reported):
        figure = case((reported.is_(None), n), else_=_greater(n, reported)) - less
        return cast(figure, Integer)

    # One row per cell, with its quantity and bounds: computed here, once per cell, as
    # expressions of the cell's group (a plain subquery over it would be merged into the
    # query above and its expressions repeated for every column that uses them). Integers,
    # which PostgreSQL adds up faster than the decimals sums of its counts would be.
    grouping = [both.c.event_id, both.c.cell, *(both.c[c] for c in carried)]
    return (
        select(
            both.c.event_id,
            *(both.c[c] for c in carried),
            quantity.label("quantity"),
            bound(func.max(both.c.r_min)).label("low"),
            bound(func.max(both.c.r_median)).label("best"),
            bound(func.max(both.c.r_max)).label("high"),
            cast(case((quantity == CODES["ak"], off), else_=0), Integer).label("akoff"),
        )
        .where(both.c.cell.is_not(None))
        .group_by(*grouping)
    )


def _reports(scope, carried: Iterable[str] = (), user: User | None = None):
    """The live casualty counts from live sources of the events of `scope` that make up a
    base quantity, with the event's `carried` columns, their cell (_cell_case) and quantity,
    and `usable`: 1 where the source may be shown to `user` (so that the sources behind a
    figure are counted in the same pass over the counts as the figures)."""
    cell = _cell_case(CasualtyCount.affiliation, CasualtyCount.outcome, CasualtyCount.caused_by)
    return (
        select(
            CasualtyCount.id,
            CasualtyCount.event_id,
            *(scope.c[c] for c in carried),
            CasualtyCount.count,
            CasualtyCount.source_id,
            cell.label("cell"),
            (cell // CELL_SPAN).label("quantity"),
            case((access.source_usable(user), 1), else_=0).label("usable"),
        )
        .join(scope, scope.c.event_id == CasualtyCount.event_id)
        .join(Source, Source.id == CasualtyCount.source_id)
        .where(CasualtyCount.deleted_at.is_(None), Source.deleted_at.is_(None), cell.is_not(None))
    )


def _event_quantities(events):
    """Per event of `events` (a SELECT of `event_id`), each base quantity's low, best and
    high and the agents killed off duty."""
    cells = _cells(events.subquery("scope")).subquery("cells")

    def total(codes, column):
        return func.sum(case((cells.c.quantity.in_(codes), cells.c[column]), else_=0))

    columns = [
        total([CODES[name]], b).label(f"{name}_{b}") for name in QUANTITY_CELLS for b in BOUNDS
    ]
    # Civilians killed by the state: the three affiliations together.
    columns += [total([CODES[p] for p in CK_PARTS], b).label(f"ck_{b}") for b in BOUNDS]
    columns.append(func.sum(cells.c.akoff).label("akoff"))
    return select(cells.c.event_id, *columns).group_by(cells.c.event_id).subquery("quantities")


EVENT_COLUMNS = (
    "event_id",
    "title",
    "start_date",
    "date_precision",
    "operation_id",
    "place_id",
    "agents_deployed",
    "country",
    "admin1",
    "admin2",
    "latitude",
    "longitude",
)


PLACE_COLUMNS = ("country", "admin1", "admin2", "latitude", "longitude")


def _event_column(name: str):
    if name == "event_id":
        return Event.id
    return getattr(Place if name in PLACE_COLUMNS else Event, name)


def _frame(rows: list, columns: Iterable[str]) -> pd.DataFrame:
    """Rows as a frame, built column by column (much faster than row by row)."""
    columns = list(columns)
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame(
        {name: pd.Series(v, dtype=object) for name, v in zip(columns, values, strict=True)}
    )


def _per_event(session: Session, user: User | None, query: Query) -> pd.DataFrame:
    """One row per event in scope: its place, date and every quantity's low, best and high."""
    conditions = _event_conditions(user, query)
    quantities = _event_quantities(select(Event.id.label("event_id")).where(*conditions))
    figures = [quantities.c[f"{q}_{b}"] for q in EVENT_COLUMN_NAMES if q != "akoff" for b in BOUNDS]
    figures.append(quantities.c.akoff)
    rows = session.execute(
        select(
            *(_event_column(c) for c in EVENT_COLUMNS),
            *(func.coalesce(c, 0) for c in figures),
        )
        .outerjoin(Place, Place.id == Event.place_id)
        .outerjoin(quantities, quantities.c.event_id == Event.id)
        .where(*conditions)
        .order_by(Event.id)
    ).all()
    frame = _frame(rows, (*EVENT_COLUMNS, *(c.name for c in figures)))
    for c in figures:
        frame[c.name] = frame[c.name].astype("int64")
    for column in ("event_id", "agents_deployed", "operation_id", "place_id"):
        frame[column] = frame[column].astype("Int64")
    for column in ("latitude", "longitude"):
        frame[column] = frame[column].astype("Float64")
    for bound in BOUNDS:
        frame[f"akoff_{bound}"] = frame["akoff"]
    return frame.drop(columns=["akoff"])


# Public names of the per-event columns (what event_figures answers).
EVENT_COLUMN_NAMES = {
    "ck": "civilians_killed_by_state",
    "ci": "civilians_injured_by_state",
    "ak": "agents_killed",
    "ai": "agents_injured",
    "det": "detained",
    "akoff": "agents_killed_off_duty",
    "ck_civilian": "civilians_killed",
    "ck_nsa": "non_state_armed_killed",
    "ck_unknown": "unknown_killed",
}


def event_figures(session: Session, user: User | None, query: Query) -> pd.DataFrame:
    """Each counted event with its place and its figures under their public names
    (`civilians_killed_by_state_low`, …), for maps and timelines."""
    frame = _per_event(session, user, query)
    renamed = {f"{q}_{b}": f"{name}_{b}" for q, name in EVENT_COLUMN_NAMES.items() for b in BOUNDS}
    keep = [
        "event_id",
        "title",
        "start_date",
        "date_precision",
        "operation_id",
        "place_id",
        "latitude",
        "longitude",
        "admin1",
        "admin2",
        *renamed,
    ]
    return frame[keep].rename(columns=renamed)


# --- Step 3: groups, added up in the database ------------------------------------------------


def _backing(user: User | None, scope, carried: Iterable[str], reports, figures):
    """(event_id, *carried, source_id, mask, akoff) for every source the reader may see that
    backs an event's figures: its counts (`reports`, with the quantity each is about as its
    mask), its victims' citations (the same) and the event's own citations (behind whatever
    the event has figures for: the event's mask and agents killed off duty, from `figures`,
    one row per event with figures). A count or a victim makes a cell of its quantity, so
    the event has figures for that quantity: its row speaks to exactly the sets that hold it."""
    usable = select(Source.id).where(access.source_usable(user))
    v_quantity = _quantity_case(Victim.affiliation, Victim.outcome, Victim.caused_by)
    zero = literal_column("0", Integer)
    counted = select(
        reports.c.event_id,
        *(reports.c[c] for c in carried),
        reports.c.source_id,
        reports.c.quantity.label("mask"),
        zero.label("akoff"),
    ).where(reports.c.usable == 1)
    victims_cited = (
        select(
            Victim.event_id,
            *(scope.c[c] for c in carried),
            Citation.source_id,
            v_quantity,
            zero,
        )
        .select_from(Citation)
        .join(Victim, Victim.id == Citation.victim_id)
        .join(scope, scope.c.event_id == Victim.event_id)
        .where(
            Citation.deleted_at.is_(None),
            Victim.deleted_at.is_(None),
            Citation.source_id.in_(usable),
            v_quantity.is_not(None),
        )
    )
    events_cited = (
        select(
            Citation.event_id,
            *(figures.c[c] for c in carried),
            Citation.source_id,
            figures.c.mask,
            figures.c.akoff,
        )
        .join(figures, figures.c.event_id == Citation.event_id)
        .where(Citation.deleted_at.is_(None), Citation.source_id.in_(usable))
    )
    return union_all(counted, victims_cited, events_cited).subquery("backing")


@dataclass
class Range:
    low: float
    best: float
    high: float


def _divide(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def ratio(num: Range, den: Range, factor: float = 1) -> dict[str, float | None]:
    """best ÷ best, low ÷ the denominator's high, high ÷ its low; undefined where it is 0."""
    values = {
        "best": _divide(num.best, den.best),
        "low": _divide(num.low, den.high),
        "high": _divide(num.high, den.low),
    }
    return {k: None if v is None else v * factor for k, v in values.items()}


def share(part: Range, rest: Range, factor: float = 1) -> dict[str, float | None]:
    """part ÷ (part + rest): the denominator holds the numerator, so the extremes pair the
    part's low with the rest's high and the reverse, and the share stays within 0-100 %."""
    values = {
        "best": _divide(part.best, part.best + rest.best),
        "low": _divide(part.low, part.low + rest.high),
        "high": _divide(part.high, part.high + rest.low),
    }
    return {k: None if v is None else v * factor for k, v in values.items()}


# The quantities a figure rests on: the events behind it are those with figures for any of
# them, the sources those that report them or cite those events.
BEHIND = {
    "ck": ("ck",),
    "ci": ("ci",),
    "ak": ("ak",),
    "ai": ("ai",),
    "det": ("det",),
    "akoff": ("akoff",),
    "ck_ak": ("ck", "ak"),
    "ck_ci": ("ck", "ci"),
    "ak_ai": ("ak", "ai"),
    "ck_ak_ai": ("ck", "ak", "ai"),
    "all": ("ck", "ci", "ak", "ai"),
    "ck_det": ("ck", "det"),
    "dwi": ("ck_civilian", "ck_nsa"),
}
# Figures over part of a group's events: those giving agents deployed, those with a place
# and a year (for context figures).
SUBSETS = ("deployed", "placed")


# Every set of quantities whose events and sources a group counts: those of BEHIND, and
# civilians killed by the state over each subset of events.
SETS = {**BEHIND, **{subset: ("ck",) for subset in SUBSETS}}


def _reported_as(quantities: Iterable[str]) -> list[int]:
    """The codes of the backing rows that speak to `quantities`: civilians killed by the
    state are reported in their three parts, agents killed off duty in the agents' cells
    (only the event's citations back them), and an event's own citations back whatever the
    event has figures for."""
    names: list[str] = []
    for quantity in quantities:
        names.extend(CK_PARTS if quantity == "ck" else (quantity,))
    return [ANY_QUANTITY, *(CODES[name] for name in dict.fromkeys(names) if name in CODES)]


def _has_set(rows, name: str):
    """Whether `rows` (with a `mask` of cell codes and `akoff`, and the subsets' `in__`
    flags) have figures for the set of quantities SETS[name] (SQL, boolean)."""
    if name == "akoff":
        return rows.c.akoff > 0
    has = _has_any(rows.c.mask, [q for q in _reported_as(SETS[name]) if q != ANY_QUANTITY])
    return and_(rows.c[f"in__{name}"] == 1, has) if name in SUBSETS else has


def _event_flags(figures) -> list:
    """What each event with figures adds to its groups besides its quantities (`figures`:
    one row per such event with its cells' `mask`, `akoff`, civilians killed `ck_<bound>`
    and agents killed or injured `agents_<bound>`, and the subsets of events it is in:
    those giving the agents deployed, those with a place and a year): which sets of
    quantities it has figures for, and whether the state killed civilians there and whether
    one-sidedly (no agent killed or injured: at the low end by the most agents any source
    reports, at the high end by the fewest). An event without figures adds none of these."""
    c = figures.c

    def flag(condition):
        return case((condition, 1), else_=0)

    columns = [flag(_has_set(figures, name)).label(f"has__{name}") for name in BEHIND]
    columns += [flag(c[f"ck_{b}"] > 0).label(f"kills_{b}") for b in BOUNDS]
    for b, agents in (("low", "high"), ("best", "best"), ("high", "low")):
        one_sided = and_(c[f"ck_{b}"] > 0, c[f"agents_{agents}"] == 0)
        columns.append(flag(one_sided).label(f"one_sided_{b}"))
    columns += [flag(_has_set(figures, subset)).label(f"has__{subset}") for subset in SUBSETS]
    return columns


def _group_key(group_by: str):
    """An event's group as a SQL expression over events and places (forces: _members).
    A month is year × 100 + month, of events dated to the day or the month."""
    if group_by == "operation":
        return Event.operation_id
    if group_by == "admin1":
        return Place.admin1
    if group_by == "admin2":
        # A municipality is known by its state too (Libertador of Distrito Capital is not
        # Libertador of Mérida): the state and the name, joined (_python_key splits them).
        state = func.coalesce(Place.admin1, "")
        return case((Place.admin2.is_(None), None), else_=state + MUNICIPALITY_JOIN + Place.admin2)
    year = extract("year", Event.start_date)
    if group_by == "year":
        return year
    to_the_month = or_(Event.date_precision.in_(("day", "month")), Event.date_precision.is_(None))
    return case(
        (
            and_(Event.start_date.is_not(None), to_the_month),
            year * 100 + extract("month", Event.start_date),
        ),
        else_=None,
    )


ZERO, ONE = literal_column("0", Integer), literal_column("1", Integer)


def _member(event_id, is_total, gkey) -> tuple:
    return event_id.label("event_id"), is_total.label("is_total"), gkey.label("gkey")


def _members(group_by: str | None, conditions: list, total: bool = True):
    """(event_id, is_total, gkey): each event in scope in its group (gkey NULL: in none), by
    force in several (the forces named on it, or failing that its operation's), and with
    `total` once more in the total (is_total 1)."""
    parts = []
    if group_by == "actor":
        named = exists().where(EventActor.event_id == Event.id, EventActor.role.in_(FORCE_ROLES))
        inherited = exists().where(OperationActor.operation_id == Event.operation_id)
        parts += [
            select(*_member(EventActor.event_id, ZERO, EventActor.actor_id))
            .join(Event, Event.id == EventActor.event_id)
            .where(EventActor.role.in_(FORCE_ROLES), *conditions)
            .distinct(),
            select(*_member(Event.id, ZERO, OperationActor.actor_id))
            .join(OperationActor, OperationActor.operation_id == Event.operation_id)
            .where(~named, *conditions)
            .distinct(),
            select(*_member(Event.id, ZERO, cast(null(), Integer))).where(
                ~named, ~inherited, *conditions
            ),
        ]
    elif group_by is not None:
        keyed = select(*_member(Event.id, ZERO, _group_key(group_by)))
        if group_by in ("admin1", "admin2"):
            keyed = keyed.outerjoin(Place, Place.id == Event.place_id)
        parts.append(keyed.where(*conditions))
    if total:
        parts.append(select(*_member(Event.id, ONE, null())).where(*conditions))
    return parts[0] if len(parts) == 1 else union_all(*parts)


@dataclass
class _Totals:
    """What one group adds up to: sums of its events' per-event columns, the distinct
    sources behind each set of quantities, the region-years of its placed events, and which
    sources of context figures are among the sources of those events."""

    sums: Mapping[str, int]
    sources: Mapping[str, int]
    regions: set = field(default_factory=set)
    placed_context: set = field(default_factory=set)


def _group_totals(
    session: Session,
    user: User | None,
    conditions: list,
    group_by: str | None,
    context: _Context,
) -> dict[tuple[int, Any], _Totals]:
    """Every group's totals and the total's, keyed (0, group key) and (1, None), from one
    statement: the database adds up the events' cells and flags per group and counts the
    distinct sources behind them, so one row per group comes back.

    Each event in scope carries its group (when the event itself gives it) and the subsets
    of events it is in into its cells and counts, in the pass that makes them: the groups
    add up cells, events and sources without joining them back to their events. By force,
    an event is in several groups (_members), which are joined in."""
    by_force = group_by == "actor"
    keyed = group_by is not None and not by_force
    carried = (*(("gkey",) if keyed else ()), *(f"in__{subset}" for subset in SUBSETS))
    given = case((Event.agents_deployed > 0, Event.agents_deployed), else_=0)
    scope = (
        select(
            Event.id.label("event_id"),
            *([_group_key(group_by).label("gkey")] if keyed else []),
            case((Event.agents_deployed > 0, 1), else_=0).label("in__deployed"),
            case(
                (and_(Place.admin1.is_not(None), Event.start_date.is_not(None)), 1), else_=0
            ).label("in__placed"),
            given.label("agents_deployed"),
        )
        .outerjoin(Place, Place.id == Event.place_id)
        .where(*conditions)
        .cte("scope")
    )
    reports = _reports(scope, carried, user).cte("reports")
    cells = _cells(scope, carried, reports).cte("cells")
    killed = [CODES[p] for p in CK_PARTS]

    def total(codes, column, rows=cells):
        return func.sum(case((rows.c.quantity.in_(codes), rows.c[column]), else_=0))

    # What decides an event's flags: which quantities its cells make up, and its civilians
    # killed and agents killed or injured by the state.
    figures = (
        select(
            cells.c.event_id,
            *(cells.c[c] for c in carried),
            func.sum(cells.c.quantity).label("mask"),
            func.sum(cells.c.akoff).label("akoff"),
            *(total(killed, b).label(f"ck_{b}") for b in BOUNDS),
            *(total([CODES["ak"], CODES["ai"]], b).label(f"agents_{b}") for b in BOUNDS),
        )
        .group_by(cells.c.event_id, *(cells.c[c] for c in carried))
        .cte("figures")
    )
    members = _members(group_by, conditions, total=False).cte("members") if by_force else None

    def in_groups(rows):
        """`rows` (with an event_id) in their groups, and the group key."""
        if by_force:
            return rows.join(members, members.c.event_id == rows.c.event_id), members.c.gkey
        return rows, rows.c.gkey if keyed else null()

    def groups_and_total(columns, rows, *grouping_too):
        """`columns` (a function of `rows`) over each group's rows and over all rows
        (is_total 1): by force, an event in several groups counts once in the total; else
        the total adds up the groups (in Python) and NULLs stand for it."""
        joined, key = in_groups(rows)
        grouping = [] if group_by is None else [key]
        parts = [
            select(ZERO.label("is_total"), key.label("gkey"), *columns(rows))
            .select_from(joined)
            .group_by(*grouping, *grouping_too)
        ]
        if by_force:
            parts.append(
                select(ONE, null(), *columns(rows)).select_from(rows).group_by(*grouping_too)
            )
        elif not grouping_too:
            parts.append(select(ONE, null(), *(null() for _ in columns(rows))))
        return union_all(*parts).subquery()

    # Events, with and without figures: how many, agents deployed, subsets.
    events = groups_and_total(
        lambda rows: [
            func.count().label("n_events"),
            *(
                func.sum(rows.c[c]).label(c)
                for c in ("agents_deployed", *(f"in__{s}" for s in SUBSETS))
            ),
        ],
        scope,
    )
    # The flags of the events with figures, added up per group.
    flagged = select(
        figures.c.event_id, *([figures.c.gkey] if keyed else []), *_event_flags(figures)
    ).subquery("flagged")
    flag_names = [c.name for c in flagged.c if c.name not in ("event_id", "gkey")]
    flags = groups_and_total(
        lambda rows: [func.sum(rows.c[name]).label(name) for name in flag_names], flagged
    )
    # Quantities: the cells added up per group, quantity and subset of events; then one
    # column each.
    subsets = [f"in__{subset}" for subset in SUBSETS]
    by_quantity = groups_and_total(
        lambda rows: [
            rows.c.quantity,
            *(rows.c[s] for s in subsets),
            *(func.sum(rows.c[b]).label(b) for b in (*BOUNDS, "akoff")),
        ],
        cells,
        cells.c.quantity,
        *(cells.c[s] for s in subsets),
    )
    columns = [
        total([CODES[q]], b, by_quantity).label(f"{q}_{b}") for q in QUANTITY_CELLS for b in BOUNDS
    ]
    columns += [total(killed, b, by_quantity).label(f"ck_{b}") for b in BOUNDS]
    for subset in SUBSETS:
        inside = by_quantity.c.quantity.in_(killed) & (by_quantity.c[f"in__{subset}"] == 1)
        columns += [
            func.sum(case((inside, by_quantity.c[b]), else_=0)).label(f"ck_{subset}_{b}")
            for b in BOUNDS
        ]
    columns.append(func.sum(by_quantity.c.akoff).label("akoff"))
    quantities = (
        select(by_quantity.c.is_total, by_quantity.c.gkey, *columns)
        .group_by(by_quantity.c.is_total, by_quantity.c.gkey)
        .subquery("quantities")
    )

    # The sources behind each set of quantities: per group and source, whether it backs
    # the set (in one of the group's events that has figures for it); then counted.
    backing = _backing(user, scope, carried, reports, figures)
    joined, key = in_groups(backing)
    per_source = (
        select(
            key.label("gkey"),
            backing.c.source_id,
            *(func.max(case((_has_set(backing, name), 1), else_=0)).label(name) for name in SETS),
        )
        .select_from(joined)
        .group_by(*([] if group_by is None else [key]), backing.c.source_id)
        .cte("per_source")
    )
    context_sources = sorted(context.sources)

    def counted(rows):
        """The distinct sources backing each set, and which sources of context figures back
        the events with a place and a year."""
        return [
            *(func.sum(rows.c[name]).label(f"sources__{name}") for name in SETS),
            *(
                func.max(
                    case((and_(rows.c.placed == 1, rows.c.source_id == source), 1), else_=0)
                ).label(f"context__{i}")
                for i, source in enumerate(context_sources)
            ),
        ]

    source_key = null() if group_by is None else per_source.c.gkey
    backed = [
        select(ZERO.label("is_total"), source_key.label("gkey"), *counted(per_source)).group_by(
            *([] if group_by is None else [source_key])
        )
    ]
    if group_by is not None:  # the total: every source backing a set in any group
        by_source = (
            select(
                per_source.c.source_id,
                *(func.max(per_source.c[name]).label(name) for name in SETS),
            )
            .group_by(per_source.c.source_id)
            .subquery("by_source")
        )
        backed.append(select(ONE, null(), *counted(by_source)))
    backed_of = union_all(*backed).subquery("backed")

    def same_group(other):
        return and_(
            other.c.is_total == events.c.is_total,
            other.c.gkey.is_not_distinct_from(events.c.gkey),
        )

    parts = (flags, quantities, backed_of)
    statement = select(
        events, *(c for part in parts for c in part.c if c.name not in ("is_total", "gkey"))
    ).select_from(events)
    for part in parts:
        statement = statement.outerjoin(part, same_group(part))
    with _without_jit(session):
        rows = session.execute(statement).mappings().all()
    regions = _regions(session, conditions, group_by, context)
    out: dict[tuple[int, Any], _Totals] = {}
    names = [
        c.name for c in (*events.c, *flags.c, *quantities.c) if c.name not in ("is_total", "gkey")
    ]
    for row in sorted(rows, key=lambda row: int(row["is_total"])):  # the groups first
        is_total = int(row["is_total"])
        if group_by is None:
            if is_total:
                continue  # all events are the one group
            is_total = 1
        key = (is_total, _python_key(group_by, row["gkey"]))
        if is_total and keyed:
            added = {name: sum(t.sums[name] for t in out.values()) for name in names}
        else:
            added = {name: int(row[name] or 0) for name in names}
        if not added["n_events"]:
            continue  # no event in scope
        for b in BOUNDS:
            added[f"akoff_{b}"] = added["akoff"]
        out[key] = _Totals(
            added,
            {name: int(row[f"sources__{name}"] or 0) for name in SETS},
            regions.get(key, set()),
            {s for i, s in enumerate(context_sources) if row[f"context__{i}"]},
        )
    return out


@contextmanager
def _without_jit(session: Session):
    """PostgreSQL compiles a statement as wide as these to machine code when it expects it
    to be costly, which takes seconds, far longer than running it; not for this statement.
    (SET LOCAL lasts to the end of the transaction, so the setting is put back after.)"""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = session.execute(select(func.current_setting("jit"))).scalar()
    session.execute(select(func.set_config("jit", "off", True)))
    yield
    session.execute(select(func.set_config("jit", previous, True)))


# Joins a municipality's state and name in its group key: a character no name holds.
MUNICIPALITY_JOIN = "\x1f"


def _python_key(group_by: str | None, value: Any) -> Any:
    """A group key from the database as the answer gives it: ids and years as integers, a
    month as '2015-07', a state's name as it is, a municipality as (state or None, name)
    until grouped() names it (_municipalities)."""
    if value is None or group_by == "admin1":
        return value
    if group_by == "admin2":
        state, name = value.split(MUNICIPALITY_JOIN, 1)
        return (state or None, name)
    if group_by == "month":
        return dt.date(int(value) // 100, int(value) % 100, 1).strftime("%Y-%m")
    return int(value)


def _unary_plus(expression):
    """+expression: on SQLite the same value, of any type, which its planner does not match
    to an index."""
    return UnaryExpression(expression, operator=operators.custom_op("+"), type_=expression.type)


def _regions(
    session: Session, conditions: list, group_by: str | None, context: _Context
) -> dict[tuple[int, Any], set]:
    """The region-year keys (_Context) of each group's events with a place and a year, and of
    the total's; remembers on `context` a readable name for each key."""
    level = context.level
    places = [Place.country, Place.admin1, *([Place.admin2] if level == "admin2" else [])]
    year = extract("year", Event.start_date)
    placed = (Place.admin1.is_not(None), Event.start_date.is_not(None))
    if group_by == "actor":
        members = _members(group_by, conditions, total=False).subquery("members")
        keys = [members.c.is_total, members.c.gkey]
        statement = (
            select(*keys, *places, year, func.max(Event.id))
            .select_from(
                members.join(Event, Event.id == members.c.event_id).join(
                    Place, Place.id == Event.place_id
                )
            )
            .where(*placed)
            .group_by(*keys, *places, year)
        )
    else:  # without grouping, the total's
        keys = [] if group_by is None else [_group_key(group_by)]
        place_id = Event.place_id
        if session.get_bind().dialect.name == "sqlite":
            # SQLite would read the events in the order of an index on the group key (to
            # group them) or look them up by place, each row fetched apart; reading the
            # table through is faster. A unary + (a no-op there) keeps it off the indexes.
            keys = [_unary_plus(key).label("gkey") for key in keys]
            place_id = _unary_plus(place_id)
        statement = (
            select(ONE if group_by is None else ZERO, *(keys or [null()]), *places, year)
            .add_columns(func.max(Event.id))
            .select_from(Event)
            .join(Place, Place.id == place_id)
            .where(*placed, *conditions)
            .group_by(*keys, *places, year)
        )
    out: dict[tuple[int, Any], set] = {}
    regions: dict[tuple, str] = {}  # (country, admin1[, admin2], year) as written: its key
    latest: dict[tuple, int] = {}  # the same: the last event written so
    keys: dict[Any, tuple[int, Any]] = {}
    for is_total, gkey, *written, last_event in session.execute(statement):
        written = tuple(written)
        region = regions.get(written)
        if region is None:
            admin2 = written[2] if level == "admin2" else None
            region = regions[written] = context._key(written[0], written[1], admin2, written[-1])
        key = keys.get((is_total, gkey))
        if key is None:
            key = keys[is_total, gkey] = (int(is_total), _python_key(group_by, gkey))
        out.setdefault(key, set()).add(region)
        latest[written] = max(latest.get(written, 0), last_event)
    if group_by is not None:  # every event in scope is in some group
        out[1, None] = set(regions.values())
    # The name shown for a region: as written on its latest event.
    names: dict[str, tuple[int, str]] = {}
    for written, region in regions.items():
        admin1, year = written[1], int(written[-1])
        name = admin1 if level != "admin2" else f"{written[2] or ''}, {admin1}".lstrip(", ")
        if region not in names or names[region][0] < latest[written]:
            names[region] = (latest[written], f"{name} {year}")
    context.names = {region: name for region, (_, name) in names.items()}
    return out


class _Group:
    """One group's indicators, from what its events add up to."""

    def __init__(self, totals: _Totals | None, context: _Context):
        self.sums = totals.sums if totals is not None else None
        self.totals = totals
        self.context = context
        self.limits = thresholds()

    def value(self, column: str) -> int:
        return 0 if self.sums is None else int(self.sums.get(column, 0))

    def total(self, quantity: str) -> Range:
        return Range(*(self.value(f"{quantity}_{b}") for b in BOUNDS))

    def behind(self, name: str) -> tuple[int, int]:
        """Events with figures for the quantities of BEHIND[name], and sources behind them."""
        sources = self.totals.sources.get(name, 0) if self.totals else 0
        return self.value(f"has__{name}"), sources

    def entry(self, key: str, values: Mapping, reason: str | None, events: int, sources: int):
        threshold = self.limits.get(key)
        best = values["best"]
        exceeds = None
        if threshold is not None and best is not None:
            exceeds = bool(best > threshold.value)
        return {
            "best": best,
            "low": values["low"],
            "high": values["high"],
            "threshold": threshold.value if threshold else None,
            "exceeds": exceeds,
            "reason": reason,
            "events": events,
            "sources": sources,
        }

    def count(self, key: str, quantity: str) -> dict:
        return self.entry(key, vars(self.total(quantity)), None, *self.behind(quantity))

    def ratio(self, key: str, num: str, den: str, reason: str, behind: str) -> dict:
        values = ratio(self.total(num), self.total(den))
        reason = reason if values["best"] is None else None
        return self.entry(key, values, reason, *self.behind(behind))

    def indicators(self) -> dict[str, dict]:
        ck, n_events = self.total("ck"), self.value("n_events")
        out = {
            "civilians_killed_by_state": self.count("civilians_killed_by_state", "ck"),
            "civilians_injured_by_state": self.count("civilians_injured_by_state", "ci"),
            "agents_killed": self.count("agents_killed", "ak"),
            "agents_injured": self.count("agents_injured", "ai"),
            "detained": self.count("detained", "det"),
            "civilian_agent_death_ratio": self.ratio(
                "civilian_agent_death_ratio", "ck", "ak", "no agents killed", "ck_ak"
            ),
            "lethality_index": self.ratio(
                "lethality_index", "ck", "ci", "no civilians injured", "ck_ci"
            ),
            "agent_lethality": self.ratio(
                "agent_lethality", "ak", "ai", "no agents injured", "ak_ai"
            ),
        }
        out["lethality_differential"] = self._differential(
            out["lethality_index"], out["agent_lethality"]
        )
        per_event = ratio(ck, Range(n_events, n_events, n_events))
        out["civilians_killed_per_event"] = self.entry(
            "civilians_killed_per_event",
            per_event,
            None if n_events else "no events",
            n_events,
            self.behind("ck")[1],
        )
        out["one_sided_event_share"] = self._one_sided()
        out["deaths_per_1000_agents_deployed"] = self._per_agents_deployed()
        out["killed_per_detained"] = self.ratio(
            "killed_per_detained", "ck", "det", "no people detained", "ck_det"
        )
        out["rate_per_100k"] = self._per_context("rate_per_100k", "population", 100_000)
        out["share_of_homicides"] = self._per_context("share_of_homicides", "homicides", 100)
        dwi = share(self.total("ck_civilian"), self.total("ck_nsa"), 100)
        out["dirty_war_index"] = self.entry(
            "dirty_war_index",
            dwi,
            None
            if dwi["best"] is not None
            else "no civilians or non-state armed people killed by the state",
            *self.behind("dwi"),
        )
        out["agents_killed_off_duty"] = self.count("agents_killed_off_duty", "akoff")
        return out

    def _differential(self, index: dict, agents: dict) -> dict:
        values = {
            "best": _divide(index["best"], agents["best"]),
            "low": _divide(index["low"], agents["high"]),
            "high": _divide(index["high"], agents["low"]),
        }
        reason = None
        if values["best"] is None:
            reason = index["reason"] or agents["reason"] or "no agents killed"
        return self.entry("lethality_differential", values, reason, *self.behind("all"))

    def _one_sided(self) -> dict:
        one_sided = self.total("one_sided")
        killing = self.total("kills")
        values = ratio(one_sided, killing, 100)
        if values["high"] is not None:
            values["high"] = min(values["high"], 100.0)
        reason = None if values["best"] is not None else "no civilians killed by the state"
        return self.entry(
            "one_sided_event_share",
            values,
            reason,
            self.value("has__ck"),
            self.behind("ck_ak_ai")[1],
        )

    def _per_agents_deployed(self) -> dict:
        deployed = float(self.value("agents_deployed"))
        values = ratio(self.total("ck_deployed"), Range(deployed, deployed, deployed), 1000)
        given = self.value("in__deployed")
        reason = None if given else "no event gives the number of agents deployed"
        return self.entry(
            "deaths_per_1000_agents_deployed", values, reason, given, self.behind("deployed")[1]
        )

    def _per_context(self, key: str, figure: str, factor: float) -> dict:
        empty = {"best": None, "low": None, "high": None}
        placed = self.value("in__placed")
        if not placed:
            return self.entry(key, empty, "no event with a place and a year", 0, 0)
        total, missing, figure_sources = 0, [], set()
        for region in sorted(self.totals.regions, key=str):
            found = self.context.lookup(region, figure)
            if found is None:
                missing.append(self.context.describe(region))
            else:
                total += found[0]
                figure_sources.add(found[1])
        label = "population" if figure == "population" else "homicide"
        if missing:
            shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
            return self.entry(key, empty, f"no {label} figure for {shown}", placed, 0)
        values = ratio(self.total("ck_placed"), Range(total, total, total), factor)
        reason = None if values["best"] is not None else f"the {label} figures are zero"
        # The events' sources and the figures' sources, each counted once.
        sources = self.totals.sources["placed"] + len(figure_sources - self.totals.placed_context)
        return self.entry(key, values, reason, placed, sources)


class _Context:
    """Population and homicide figures per (country, admin1[, admin2], year)."""

    def __init__(self, session: Session, user: User | None, level: str):
        self.level = level
        self.figures: dict[str, dict[str, tuple[int, int]]] = {}
        self.names: dict[str, str] = {}
        self.sources: set[int] = set()  # of the figures
        try:
            from .models import ContextFigure
        except ImportError:  # the resource is not in this version's models
            return
        rows = session.execute(
            select(
                ContextFigure.country,
                ContextFigure.admin1,
                ContextFigure.admin2,
                ContextFigure.year,
                ContextFigure.population,
                ContextFigure.homicides,
                ContextFigure.source_id,
            ).where(access.visible(ContextFigure, user))
        ).all()
        for country, admin1, admin2, year, population, homicides, source_id in rows:
            key = self._key(country, admin1, admin2, year)
            entry = self.figures.setdefault(key, {})
            self.sources.add(source_id)
            if population is not None:
                entry["population"] = (int(population), source_id)
            if homicides is not None:
                entry["homicides"] = (int(homicides), source_id)

    @staticmethod
    def _fold(text: str | None) -> str:
        return text.strip().casefold() if text else ""

    def _key(self, country, admin1, admin2, year) -> str:
        parts = ((country or "").upper(), self._fold(admin1), self._fold(admin2), str(int(year)))
        return "|".join(parts)

    def lookup(self, key: str, figure: str) -> tuple[int, int] | None:
        return self.figures.get(key, {}).get(figure)

    def describe(self, key: str) -> str:
        return self.names.get(key, key)


def _answer(user: User | None, query: Query) -> dict[str, Any]:
    return {"method_version": METHOD_VERSION, "include_drafts": drafts_used(user, query)}


def _compute(
    session: Session, user: User | None, query: Query, group_by: str | None
) -> tuple[dict[Any, _Group], _Group]:
    """Every group's indicators and the total's, from one pass over the events in scope."""
    conditions = _event_conditions(user, query)
    context = _Context(session, user, "admin2" if group_by == "admin2" else "admin1")
    totals = _group_totals(session, user, conditions, group_by, context)
    total = _Group(totals.pop((1, None), None), context)
    return {key: _Group(group, context) for (_, key), group in totals.items()}, total


def operation_indicators(
    session: Session, user: User | None, operation_id: int, include_drafts: bool = False
) -> dict[str, Any]:
    """One operation's indicators; NotFound when the reader may not see the operation."""
    records.get_record(session, user, RESOURCES["operations"], operation_id)
    query = Query({"operation_id": str(operation_id)}, include_drafts, None)
    _, total = _compute(session, user, query, None)
    return {**_answer(user, query), "indicators": total.indicators()}


def grouped(session: Session, user: User | None, query: Query) -> dict[str, Any]:
    """The indicators of each group (`query.group_by`) and of all events in scope together."""
    group_by = query.group_by or "operation"
    groups, total = _compute(session, user, query, group_by)
    if group_by == "admin2":
        groups = _municipalities(groups)
    answer = [
        {"key": key, "label": label, "indicators": groups[key].indicators()}
        for key, label in _group_keys(session, list(groups), group_by)
    ]
    return {
        **_answer(user, query),
        "group_by": group_by,
        "groups": answer,
        "total": total.indicators(),
    }


def _municipalities(groups: dict[Any, _Group]) -> dict[Any, _Group]:
    """Groups keyed (state, municipality) keyed by the municipality's name, with its state in
    brackets where a municipality of the same name in another state is among the groups:
    "Libertador (Mérida)" beside "Libertador (Distrito Capital)", but "El Hatillo" alone."""
    names = Counter(key[1] for key in groups if key is not None)

    def named(key):
        if key is None:
            return None
        state, name = key
        return name if names[name] == 1 or not state else f"{name} ({state})"

    return {named(key): group for key, group in groups.items()}


NO_GROUP_LABELS = {
    "operation": "no operation",
    "actor": "no force named",
    "admin1": "no place",
    "admin2": "no municipality",
    "year": "no date",
    "month": "month unknown",
}


def _group_keys(session: Session, keys: Iterable, group_by: str) -> list[tuple]:
    """(key, label) of each group, in the order shown: by name, year or month, and the events
    in no group last."""
    keys = list(keys)
    present = [k for k in keys if k is not None]
    ordered: list[tuple] = []
    if group_by in ("operation", "actor") and present:
        model = Operation if group_by == "operation" else Actor
        names = dict(
            session.execute(select(model.id, model.name).where(model.id.in_(present))).all()
        )
        ordered = sorted(((k, names.get(k, str(k))) for k in present), key=_by_label)
    elif group_by == "year":
        ordered = [(k, str(k)) for k in sorted(present)]
    elif group_by == "month":
        ordered = [(k, k) for k in sorted(present)]
    elif present:
        ordered = sorted(((k, k) for k in present), key=_by_label)
    if None in keys:
        ordered.append((None, NO_GROUP_LABELS[group_by]))
    return ordered


def _by_label(item: tuple) -> tuple:
    return (str(item[1]).casefold(), str(item[0]))
