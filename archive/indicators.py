"""The asymmetry indicators of DOMAIN.md section 4, per operation, force, region and period.

How a figure is made, in three steps, each over all the events in scope at once:

1. Cells. For each event and each (affiliation, outcome, caused_by) cell: n, the live victim
   records, and r1…rk, the live casualty counts sources report. low = max(n, min r),
   high = max(n, max r), best = max(n, lower median r); without counts all three are n.
   Two queries (victims grouped in the database, the counts as rows) feed pandas.
2. Quantities per event, by adding cells: civilians killed by the state (civilian, non-state
   armed and unknown affiliations, caused_by = state), civilians injured, agents killed and
   injured (any cause; agents recorded as off duty are taken out and reported apart), people
   detained by the state.
3. Groups add their events' low, best and high; ratios divide them, a ratio's low being the
   numerator's low over the denominator's high and its high the reverse. A zero denominator
   gives no number but a reason.

Only verified events count unless drafts are asked for (and the reader may see them); what a
reader may see is decided by `access.visible`, so anonymous readers get published events
only. Restricted victims and sources count, as numbers, without being identified: the
`sources` behind a figure only counts sources that reader may see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from flask import current_app, has_app_context
from marshmallow import ValidationError
from sqlalchemy import Integer, and_, case, cast, func, literal, null, select
from sqlalchemy.orm import Session

from . import access, records
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


def _quantity_case(affiliation, outcome, caused_by):
    """The base quantity a cell belongs to, as a SQL expression (NULL: none)."""
    whens = []
    for name, (affiliations, out, cause) in QUANTITY_CELLS.items():
        condition = and_(affiliation.in_(affiliations), outcome == out)
        if cause is not None:
            condition = and_(condition, caused_by == cause)
        whens.append((condition, literal(name)))
    return case(*whens, else_=None)


def _greater(a, b):
    """The larger of two integers, in SQL both databases speak (GREATEST is PostgreSQL's)."""
    return case((a > b, a), else_=b)


def _event_quantities(events):
    """Per event, each base quantity's low, best and high and whether anything speaks to it
    (`has_<q>`), and the agents killed off duty: the cell rule of DOMAIN.md section 4, in
    one SQL statement that both databases run.

    A cell's figures: n victim records (`off` of them agents off duty) and the counts, ranked
    so that the lower median is the ((k + 1) / 2)th of k, in integer division.
    """
    cell = ("event_id", "affiliation", "outcome", "caused_by")
    off_duty = and_(Victim.affiliation == "state_agent", Victim.on_duty == "false")
    v_quantity = _quantity_case(Victim.affiliation, Victim.outcome, Victim.caused_by)
    victims = (
        select(
            *(getattr(Victim, c) for c in cell),
            func.count().label("n"),
            func.sum(case((off_duty, 1), else_=0)).label("off"),
            cast(null(), Integer).label("r_min"),
            cast(null(), Integer).label("r_median"),
            cast(null(), Integer).label("r_max"),
        )
        .where(Victim.deleted_at.is_(None), Victim.event_id.in_(events), v_quantity.is_not(None))
        .group_by(*(getattr(Victim, c) for c in cell))
    )
    c_quantity = _quantity_case(
        CasualtyCount.affiliation, CasualtyCount.outcome, CasualtyCount.caused_by
    )
    partition = [getattr(CasualtyCount, c) for c in cell]
    ranked = (
        select(
            *partition,
            CasualtyCount.count,
            func.row_number()
            .over(partition_by=partition, order_by=(CasualtyCount.count, CasualtyCount.id))
            .label("position"),
            func.count().over(partition_by=partition).label("k"),
        )
        .where(
            CasualtyCount.deleted_at.is_(None),
            CasualtyCount.event_id.in_(events),
            CasualtyCount.source_id.in_(select(Source.id).where(Source.deleted_at.is_(None))),
            c_quantity.is_not(None),
        )
        .subquery("ranked")
    )
    ranked_cell = [ranked.c[c] for c in cell]
    reported = select(
        *ranked_cell,
        literal(0, Integer).label("n"),
        literal(0, Integer).label("off"),
        func.min(ranked.c.count).label("r_min"),
        func.max(
            case((ranked.c.position == (ranked.c.k + 1) // 2, ranked.c["count"]), else_=None)
        ).label("r_median"),
        func.max(ranked.c["count"]).label("r_max"),
    ).group_by(*ranked_cell)
    both = victims.union_all(reported).subquery("both")
    cells = (
        select(
            *(both.c[c] for c in cell),
            func.sum(both.c.n).label("n"),
            func.sum(both.c.off).label("off"),
            func.max(both.c.r_min).label("r_min"),
            func.max(both.c.r_median).label("r_median"),
            func.max(both.c.r_max).label("r_max"),
        )
        .group_by(*(both.c[c] for c in cell))
        .subquery("cells")
    )
    agent = cells.c.affiliation == "state_agent"
    # Agents recorded as off duty leave the agents' cells and are reported apart.
    less = case((agent, cells.c.off), else_=0)
    # Each cell's quantity and bounds, computed once per cell (not once per output column).
    ranged = select(
        cells.c.event_id,
        _quantity_case(cells.c.affiliation, cells.c.outcome, cells.c.caused_by).label("quantity"),
        *(
            (
                case(
                    (cells.c[column].is_(None), cells.c.n),
                    else_=_greater(cells.c.n, cells.c[column]),
                )
                - less
            ).label(bound)
            for bound, column in (("low", "r_min"), ("best", "r_median"), ("high", "r_max"))
        ),
        case((and_(agent, cells.c.outcome == "killed"), cells.c.off), else_=0).label("akoff"),
    ).subquery("ranged")
    columns = []
    for name in QUANTITY_CELLS:
        for bound in BOUNDS:
            columns.append(
                func.coalesce(
                    func.sum(case((ranged.c.quantity == name, ranged.c[bound]), else_=0)), 0
                ).label(f"{name}_{bound}")
            )
        columns.append(func.max(case((ranged.c.quantity == name, 1), else_=0)).label(f"has_{name}"))
    columns.append(func.sum(ranged.c.akoff).label("akoff"))
    return select(ranged.c.event_id, *columns).group_by(ranged.c.event_id).subquery("quantities")


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


DETAILS = ("title", "latitude", "longitude")
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


def _per_event(
    session: Session, user: User | None, query: Query, details: bool = True
) -> pd.DataFrame:
    """One row per event in scope: its place, date and every quantity's low, best and high,
    plus `has_<q>`: whether any victim record or count speaks to that quantity. Without
    `details`, the title and coordinates (which no indicator needs) are left out."""
    conditions = _event_conditions(user, query)
    quantities = _event_quantities(select(Event.id).where(*conditions))
    figures = [c for c in quantities.c if c.name != "event_id"]
    names = [c for c in EVENT_COLUMNS if details or c not in DETAILS]
    rows = session.execute(
        select(
            *(_event_column(c) for c in names),
            *(func.coalesce(c, 0) for c in figures),
        )
        .outerjoin(Place, Place.id == Event.place_id)
        .outerjoin(quantities, quantities.c.event_id == Event.id)
        .where(*conditions)
        .order_by(Event.id)
    ).all()
    frame = _frame(rows, (*names, *(c.name for c in figures)))
    for c in figures:
        frame[c.name] = frame[c.name].astype("int64")
        if c.name.startswith("has_"):
            frame[c.name] = frame[c.name] > 0
    for column in ("event_id", "agents_deployed", "operation_id", "place_id"):
        frame[column] = frame[column].astype("Int64")
    for column in ("latitude", "longitude"):
        if column in frame:
            frame[column] = frame[column].astype("Float64")
    for bound in BOUNDS:
        frame[f"ck_{bound}"] = sum(frame[f"{p}_{bound}"] for p in CK_PARTS)
        frame[f"akoff_{bound}"] = frame["akoff"]
    frame["has_ck"] = frame[[f"has_{p}" for p in CK_PARTS]].any(axis=1)
    frame["has_akoff"] = frame["akoff"] > 0
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


# --- Step 3: groups and indicators -----------------------------------------------------------


def _sources(session: Session, user: User | None, events) -> pd.DataFrame:
    """(event_id, quantity, source_id) for every source the reader may see that backs an
    event's figures: its counts (per quantity), its victims' citations (per quantity) and the
    event's own citations (quantity '*': behind whatever the event has figures for)."""
    usable = select(Source.id).where(access.source_usable(user))
    c_quantity = _quantity_case(
        CasualtyCount.affiliation, CasualtyCount.outcome, CasualtyCount.caused_by
    )
    v_quantity = _quantity_case(Victim.affiliation, Victim.outcome, Victim.caused_by)
    counted = select(
        CasualtyCount.event_id, c_quantity.label("quantity"), CasualtyCount.source_id
    ).where(
        CasualtyCount.deleted_at.is_(None),
        CasualtyCount.event_id.in_(events),
        CasualtyCount.source_id.in_(usable),
        c_quantity.is_not(None),
    )
    victims_cited = (
        select(Victim.event_id, v_quantity.label("quantity"), Citation.source_id)
        .join(Victim, Victim.id == Citation.victim_id)
        .where(
            Citation.deleted_at.is_(None),
            Victim.deleted_at.is_(None),
            Victim.event_id.in_(events),
            Citation.source_id.in_(usable),
            v_quantity.is_not(None),
        )
    )
    events_cited = select(
        Citation.event_id, literal("*").label("quantity"), Citation.source_id
    ).where(
        Citation.deleted_at.is_(None),
        Citation.event_id.in_(events),
        Citation.source_id.in_(usable),
    )
    rows = session.execute(counted.union(victims_cited, events_cited)).all()
    frame = _frame(rows, ("event_id", "quantity", "source_id"))
    # Off-duty agents are cited as victims of the agents' cells; ck is the sum of its parts.
    parts = frame[frame["quantity"].isin(CK_PARTS)].assign(quantity="ck")
    return pd.concat([frame, parts], ignore_index=True).drop_duplicates()


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
SUMMED = (*QUANTITIES, "ck")


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-event columns that a group adds up to compute every indicator."""
    f = frame
    out = pd.DataFrame({"event_id": f["event_id"], "n_events": 1})
    for quantity in dict.fromkeys(SUMMED):
        for b in BOUNDS:
            out[f"{quantity}_{b}"] = f[f"{quantity}_{b}"]
    for name, quantities in BEHIND.items():
        out[f"has__{name}"] = f[[f"has_{q}" for q in quantities]].any(axis=1)
    for b in BOUNDS:
        out[f"kills_{b}"] = f[f"ck_{b}"] > 0
    out["one_sided_low"] = (f["ck_low"] > 0) & (f["ak_high"] == 0) & (f["ai_high"] == 0)
    out["one_sided_best"] = (f["ck_best"] > 0) & (f["ak_best"] == 0) & (f["ai_best"] == 0)
    out["one_sided_high"] = (f["ck_high"] > 0) & (f["ak_low"] == 0) & (f["ai_low"] == 0)
    deployed = pd.to_numeric(f["agents_deployed"], errors="coerce").fillna(0)
    given = deployed > 0
    placed = f["admin1"].notna() & f["start_date"].notna()
    for subset, inside in (("deployed", given), ("placed", placed)):
        out[f"in__{subset}"] = inside
        out[f"has__{subset}"] = inside & f["has_ck"]
        for b in BOUNDS:
            out[f"ck_{subset}_{b}"] = f[f"ck_{b}"].where(inside, 0)
    out["agents_deployed"] = deployed.where(given, 0)
    return out


NO_KEY = "\x00none"  # stands for "no group" (no operation, no place…) while grouping


@dataclass
class _Totals:
    """What one group adds up to: sums of the prepared columns, distinct sources behind each
    set of quantities, the region-years of its events and the sources of those events."""

    sums: pd.Series
    sources: Mapping[str, int]
    regions: set
    placed_sources: set


def _totals(
    prepared: pd.DataFrame,
    sources: pd.DataFrame,
    members: pd.DataFrame,
    regions: pd.Series,
) -> dict[Any, _Totals]:
    members = members.assign(
        gkey=members["key"].astype(object).where(members["key"].notna(), NO_KEY)
    )
    joined = members[["event_id", "gkey"]].merge(prepared, on="event_id")
    numeric = joined.drop(columns=["event_id"]).groupby("gkey", sort=False).sum()
    sets = (*BEHIND.items(), *((s, ("ck",)) for s in SUBSETS))
    flags = [f"has__{name}" for name, _ in sets]
    backed = sources.merge(joined[["event_id", "gkey", *flags]], on="event_id")
    counts: dict[str, pd.Series] = {}
    for (name, quantities), flag in zip(sets, flags, strict=True):
        rows = backed[backed[flag] & backed["quantity"].isin((*quantities, "*"))]
        if name == "placed":
            placed_sources = rows.groupby("gkey")["source_id"].agg(set)
        counts[name] = rows.groupby("gkey")["source_id"].nunique()
    region_sets = (
        members[["event_id", "gkey"]]
        .merge(regions.rename("region").reset_index(), on="event_id")
        .groupby("gkey")["region"]
        .agg(set)
    )
    return {
        key: _Totals(
            numeric.loc[key],
            {name: int(c.get(key, 0)) for name, c in counts.items()},
            region_sets.get(key, set()),
            placed_sources.get(key, set()),
        )
        for key in numeric.index
    }


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
        sources = len(self.totals.placed_sources | figure_sources)
        return self.entry(key, values, reason, placed, sources)


class _Context:
    """Population and homicide figures per (country, admin1[, admin2], year)."""

    def __init__(self, session: Session, user: User | None, level: str):
        self.level = level
        self.figures: dict[str, dict[str, tuple[int, int]]] = {}
        self.names: dict[str, str] = {}
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

    def regions(self, frame: pd.DataFrame) -> pd.Series:
        """Each placed and dated event's region-year key, indexed by event id; remembers a
        readable name for each key, to say which figure is missing."""
        placed = frame[frame["admin1"].notna() & frame["start_date"].notna()]
        if placed.empty:
            return pd.Series([], dtype=object, index=pd.Index([], name="event_id"))
        year = placed["start_date"].map(lambda d: str(d.year))
        admin1 = placed["admin1"].astype(str)
        fold = {"admin1": admin1.str.strip().str.casefold()}
        names = admin1
        if self.level == "admin2":
            admin2 = placed["admin2"].fillna("").astype(str)
            fold["admin2"] = admin2.str.strip().str.casefold()
            names = (admin2 + ", " + admin1).str.lstrip(", ")
        else:
            fold["admin2"] = pd.Series("", index=placed.index)
        keys = (
            placed["country"].fillna("").astype(str).str.upper()
            + "|"
            + fold["admin1"]
            + "|"
            + fold["admin2"]
            + "|"
            + year
        )
        self.names = dict(zip(keys, names + " " + year, strict=True))
        return pd.Series(keys.to_numpy(), index=pd.Index(placed["event_id"], name="event_id"))

    def lookup(self, key: str, figure: str) -> tuple[int, int] | None:
        return self.figures.get(key, {}).get(figure)

    def describe(self, key: str) -> str:
        return self.names.get(key, key)


def _answer(user: User | None, query: Query) -> dict[str, Any]:
    return {"method_version": METHOD_VERSION, "include_drafts": drafts_used(user, query)}


def _compute(
    session: Session, user: User | None, query: Query, group_by: str | None
) -> tuple[dict[Any, _Group], _Group, pd.DataFrame]:
    """Every group's indicators and the total's, from one pass over the events in scope."""
    conditions = _event_conditions(user, query)
    frame = _per_event(session, user, query, details=False)
    sources = _sources(session, user, select(Event.id).where(*conditions))
    context = _Context(session, user, "admin2" if group_by == "admin2" else "admin1")
    prepared = _prepare(frame)
    regions = context.regions(frame)
    everyone = pd.DataFrame({"event_id": frame["event_id"], "key": 0})
    total = _totals(prepared, sources, everyone, regions).get(0)
    groups: dict[Any, _Group] = {}
    members = pd.DataFrame({"event_id": [], "key": []})
    if group_by is not None:
        members = _membership(session, frame, group_by, conditions)
        for key, totals in _totals(prepared, sources, members, regions).items():
            groups[None if key == NO_KEY else key] = _Group(totals, context)
    return groups, _Group(total, context), members


def operation_indicators(
    session: Session, user: User | None, operation_id: int, include_drafts: bool = False
) -> dict[str, Any]:
    """One operation's indicators; NotFound when the reader may not see the operation."""
    records.get_record(session, user, RESOURCES["operations"], operation_id)
    query = Query({"operation_id": str(operation_id)}, include_drafts, None)
    _, total, _ = _compute(session, user, query, None)
    return {**_answer(user, query), "indicators": total.indicators()}


def grouped(session: Session, user: User | None, query: Query) -> dict[str, Any]:
    """The indicators of each group (`query.group_by`) and of all events in scope together."""
    group_by = query.group_by or "operation"
    groups, total, members = _compute(session, user, query, group_by)
    answer = []
    for key, label in _group_keys(session, members, group_by):
        lookup = int(key) if isinstance(key, int) else key
        answer.append({"key": key, "label": label, "indicators": groups[lookup].indicators()})
    return {
        **_answer(user, query),
        "group_by": group_by,
        "groups": answer,
        "total": total.indicators(),
    }


def _membership(
    session: Session, frame: pd.DataFrame, group_by: str, conditions: list
) -> pd.DataFrame:
    """(event_id, key): which group each event belongs to; by force, an event may be in
    several (the forces named on it, or failing that its operation's)."""
    if group_by == "operation":
        keys = frame["operation_id"].astype("Int64")
    elif group_by in ("admin1", "admin2"):
        keys = frame[group_by]
    elif group_by == "year":
        keys = frame["start_date"].map(lambda d: d.year if d else None).astype("Int64")
    elif group_by == "month":
        keys = pd.Series(
            [
                d.strftime("%Y-%m") if d and p in ("day", "month", None) else None
                for d, p in zip(frame["start_date"], frame["date_precision"], strict=True)
            ],
            index=frame.index,
            dtype=object,
        )
    else:  # actor
        return _forces(session, frame, conditions)
    return pd.DataFrame({"event_id": frame["event_id"], "key": keys})


def _forces(session: Session, frame: pd.DataFrame, conditions: list) -> pd.DataFrame:
    ids = set(frame["event_id"])
    named = pd.DataFrame(
        session.execute(
            select(EventActor.event_id, EventActor.actor_id)
            .join(Event, Event.id == EventActor.event_id)
            .where(EventActor.role.in_(FORCE_ROLES), *conditions)
            .distinct()
        ).all(),
        columns=["event_id", "key"],
    )
    named = named[named["event_id"].isin(ids)]
    without = frame[~frame["event_id"].isin(set(named["event_id"]))]
    inherited = pd.DataFrame(
        session.execute(
            select(OperationActor.operation_id, OperationActor.actor_id).distinct()
        ).all(),
        columns=["operation_id", "key"],
    ).drop_duplicates()
    inherited = without[["event_id", "operation_id"]].merge(inherited, on="operation_id")
    unassigned = without[~without["event_id"].isin(set(inherited["event_id"]))]
    return pd.concat(
        [
            named,
            inherited[["event_id", "key"]],
            pd.DataFrame({"event_id": unassigned["event_id"], "key": None}),
        ],
        ignore_index=True,
    ).astype({"key": "Int64"})


NO_GROUP_LABELS = {
    "operation": "no operation",
    "actor": "no force named",
    "admin1": "no place",
    "admin2": "no municipality",
    "year": "no date",
    "month": "month unknown",
}


def _group_keys(session: Session, members: pd.DataFrame, group_by: str) -> list[tuple]:
    present = members["key"].dropna().unique().tolist()
    keys: list[tuple] = []
    if group_by in ("operation", "actor") and present:
        model = Operation if group_by == "operation" else Actor
        names = dict(
            session.execute(
                select(model.id, model.name).where(model.id.in_([int(k) for k in present]))
            ).all()
        )
        keys = sorted(((int(k), names.get(int(k), str(k))) for k in present), key=_by_label)
    elif group_by == "year":
        keys = [(int(k), str(int(k))) for k in sorted(present)]
    elif group_by == "month":
        keys = [(k, k) for k in sorted(present)]
    elif present:
        keys = sorted(((k, k) for k in present), key=_by_label)
    if members["key"].isna().any():
        keys.append((None, NO_GROUP_LABELS[group_by]))
    return keys


def _by_label(item: tuple) -> tuple:
    return (str(item[1]).casefold(), str(item[0]))
