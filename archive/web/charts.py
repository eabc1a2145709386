"""The indicator charts: each one's table of numbers, and the Plotly figure drawn from that table.

A chart's "Download data (CSV)" is its table, so the picture and the numbers cannot disagree.
Figures are built here with plotly.graph_objects and handed to the page as JSON; the page's
script (static/js/charts.js) draws them with the plotly.js the archive serves itself.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

CHARTS = ("deaths_by_side", "timeline", "lethality", "map")

CIVILIANS = "#b2182b"
NON_STATE_ARMED = "#ef8a62"
UNKNOWN = "#7f7f7f"
AGENTS = "#2166ac"
THRESHOLD_LINE = "#444444"

# The archive documents Venezuela's operations: a map with no event placed on it shows the
# country rather than the whole world (longitude, latitude).
DEFAULT_BOUNDS = ((-73.5, -59.5), (0.5, 12.5))
# More points than this make the page slow to draw: the map keeps the deadliest ones.
MAP_MAX_POINTS = 2000
# Deaths of a month: the affiliations stacked, each killed by the state, then agents killed.
TIMELINE_SERIES = (
    ("civilians_killed", CIVILIANS),
    ("non_state_armed_killed", NON_STATE_ARMED),
    ("unknown_killed", UNKNOWN),
    ("agents_killed", AGENTS),
)


@dataclass
class Chart:
    """One chart: its name, accessible title, the table it draws and the figure itself."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict]
    figure: go.Figure
    notes: list[str] = field(default_factory=list)

    def figure_json(self) -> Markup:
        """The figure as JSON safe inside <script type="application/json"> (no </script>)."""
        text = self.figure.to_json(validate=False)
        escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return Markup(escaped)

    def csv(self) -> str:
        return pd.DataFrame(self.rows, columns=self.columns).to_csv(
            index=False, lineterminator="\n"
        )


# --- Shared ----------------------------------------------------------------------------------


def _layout(title: str, **extra) -> dict:
    """Layout common to every chart: the reader's decimal marks, plain white, room for labels."""
    decimal_comma = str(get_locale()).startswith("es")
    return {
        "title": {"text": title, "font": {"size": 15}},
        "template": "plotly_white",
        "separators": ",." if decimal_comma else ".,",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
        "legend": {"orientation": "h", "y": -0.2},
        "height": 420,
        **extra,
    }


def _value(ind: dict, part: str):
    value = ind.get(part)
    return None if value is None else float(value)


def _err(best, low, high) -> tuple[float, float]:
    """Error bar lengths above and below best (0 where a bound is unknown)."""
    if best is None:
        return 0.0, 0.0
    up = 0.0 if high is None else max(0.0, high - best)
    down = 0.0 if low is None else max(0.0, best - low)
    return up, down


def _short(label: str, width: int = 28) -> str:
    """A group's label for an axis, cut to `width` and escaped (see _text)."""
    label = str(label)
    return _text(label if len(label) <= width else label[: width - 1] + "…")


def _text(value) -> str:
    """Text typed by people (titles, names) as plotly.js shows it: it reads a few HTML tags in
    labels and hover texts, so <, > and & are written as entities, which it shows as typed."""
    return html.escape(str(value), quote=False)


# --- (a) Deaths by side ----------------------------------------------------------------------


def deaths_by_side(result: dict) -> Chart:
    """Civilians killed by the state beside agents killed, per group, with low–high bars."""
    rows = []
    for group in result["groups"]:
        ind = group["indicators"]
        civ, agents = ind["civilians_killed_by_state"], ind["agents_killed"]
        rows.append(
            {
                "group": group["key"],
                "label": group["label"],
                "civilians_killed_by_state_best": civ["best"],
                "civilians_killed_by_state_low": civ["low"],
                "civilians_killed_by_state_high": civ["high"],
                "agents_killed_best": agents["best"],
                "agents_killed_low": agents["low"],
                "agents_killed_high": agents["high"],
            }
        )
    labels = [_short(r["label"]) for r in rows]
    fig = go.Figure()
    for key, name, colour in (
        ("civilians_killed_by_state", _("Civilians killed by the state"), CIVILIANS),
        ("agents_killed", _("Agents killed"), AGENTS),
    ):
        best = [r[f"{key}_best"] for r in rows]
        errs = [_err(r[f"{key}_best"], r[f"{key}_low"], r[f"{key}_high"]) for r in rows]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=best,
                name=name,
                marker_color=colour,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [e[0] for e in errs],
                    "arrayminus": [e[1] for e in errs],
                    "color": "#222",
                },
                customdata=[[r[f"{key}_low"], r[f"{key}_high"], _text(r["label"])] for r in rows],
                hovertemplate="%{customdata[2]}<br>"
                + name
                + ": %{y} (%{customdata[0]}–%{customdata[1]})<extra></extra>",
            )
        )
    title = _("Deaths by side, with the range the sources give")
    fig.update_layout(
        **_layout(title, barmode="group", yaxis={"title": {"text": _("People killed")}})
    )
    return Chart("deaths_by_side", title, list(rows[0]) if rows else _DEATH_COLUMNS, rows, fig)


_DEATH_COLUMNS = [
    "group",
    "label",
    "civilians_killed_by_state_best",
    "civilians_killed_by_state_low",
    "civilians_killed_by_state_high",
    "agents_killed_best",
    "agents_killed_low",
    "agents_killed_high",
]


# --- (b) Monthly timeline --------------------------------------------------------------------


def timeline(frame: pd.DataFrame) -> Chart:
    """People killed each month, stacked: civilians, non-state armed and unknown killed by the
    state, then agents killed (best figures). Events dated only to the year, or undated,
    cannot be placed in a month and are counted apart."""
    columns = ["month"] + [f"{key}_best" for key, _colour in TIMELINE_SERIES]
    dates = pd.to_datetime(frame["start_date"], errors="coerce") if len(frame) else None
    placeable = pd.Series(False, index=frame.index)
    if dates is not None:
        placeable = dates.notna()
        if "date_precision" in frame:
            placeable &= frame["date_precision"].isin(["day", "month"])
    placed = frame[placeable]
    rows: list[dict] = []
    if len(placed):
        months = dates[placeable].dt.to_period("M")
        sums = placed.assign(month=months).groupby("month")[columns[1:]].sum()
        every_month = pd.period_range(months.min(), months.max(), freq="M")
        sums = sums.reindex(every_month, fill_value=0)
        for month, values in sums.iterrows():
            rows.append({"month": str(month), **{k: int(values[k]) for k in columns[1:]}})
    names = {
        "civilians_killed": _("Civilians killed by the state"),
        "non_state_armed_killed": _("Members of armed groups killed by the state"),
        "unknown_killed": _("People of unknown affiliation killed by the state"),
        "agents_killed": _("Agents killed"),
    }
    fig = go.Figure()
    for key, colour in TIMELINE_SERIES:
        fig.add_trace(
            go.Bar(
                x=[r["month"] for r in rows],
                y=[r[f"{key}_best"] for r in rows],
                name=names[key],
                marker_color=colour,
                hovertemplate="%{x}: %{y}<extra>" + names[key] + "</extra>",
            )
        )
    title = _("People killed each month, by affiliation")
    fig.update_layout(
        **_layout(
            title,
            barmode="stack",
            legend={"orientation": "h", "y": -0.25, "traceorder": "normal"},
            xaxis={"type": "category", "title": {"text": _("Month")}},
            yaxis={"title": {"text": _("People killed")}},
        )
    )
    notes = []
    missing = int((~placeable).sum())
    if missing:
        notes.append(_("Not on the timeline (no month known): %(num)s", num=missing))
    return Chart("timeline", title, columns, rows, fig, notes)


# --- (c) Lethality index against its threshold -----------------------------------------------


def lethality(result: dict) -> Chart:
    """Each group's lethality index (killed ÷ injured) beside its threshold; groups where it
    is undefined are marked as such, never drawn as 0."""
    rows = []
    for group in result["groups"]:
        ind = group["indicators"]["lethality_index"]
        rows.append(
            {
                "group": group["key"],
                "label": group["label"],
                "lethality_index_best": ind["best"],
                "lethality_index_low": ind["low"],
                "lethality_index_high": ind["high"],
                "threshold": ind["threshold"],
                "exceeds": ind["exceeds"],
                "reason": ind["reason"],
            }
        )
    threshold = next((r["threshold"] for r in rows if r["threshold"] is not None), None)
    labels = [_short(r["label"]) for r in rows]
    defined = [r["lethality_index_best"] is not None for r in rows]
    errs = [
        _err(_value(r, "lethality_index_best"), r["lethality_index_low"], r["lethality_index_high"])
        for r in rows
    ]
    fig = go.Figure()
    name = _("Lethality index")
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[r["lethality_index_best"] for r in rows],
            name=name,
            marker_color=[CIVILIANS if r["exceeds"] else "#8c8c8c" for r in rows],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [e[0] for e in errs],
                "arrayminus": [e[1] for e in errs],
                "color": "#222",
            },
            customdata=[[_text(r["label"])] for r in rows],
            hovertemplate="%{customdata[0]}: %{y:.2f}<extra></extra>",
        )
    )
    undefined_text = _("undefined")
    for label, ok, row in zip(labels, defined, rows, strict=True):
        if not ok:
            fig.add_annotation(
                x=label,
                y=0,
                yanchor="bottom",
                text=undefined_text,
                showarrow=False,
                textangle=-90,
                font={"color": "#5a5a5a"},
                hovertext=row["reason"] or undefined_text,
            )
    if threshold is not None:
        fig.add_hline(
            y=threshold,
            line_dash="dash",
            line_color=THRESHOLD_LINE,
            annotation_text=_("threshold %(value)s", value=_plain(threshold)),
            annotation_position="top left",
        )
    title = _("Lethality index (killed per injured) against its threshold")
    fig.update_layout(
        **_layout(
            title,
            showlegend=False,
            xaxis={"type": "category"},
            yaxis={
                "title": {"text": _("Civilians killed per civilian injured")},
                "rangemode": "tozero",
            },
        )
    )
    columns = [
        "group",
        "label",
        "lethality_index_best",
        "lethality_index_low",
        "lethality_index_high",
        "threshold",
        "exceeds",
        "reason",
    ]
    notes = []
    if not all(defined):
        notes.append(
            _("Groups marked “undefined” had no civilian injured: the index has no value there.")
        )
    return Chart("lethality", title, columns, rows, fig, notes)


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --- (d) Map of events -----------------------------------------------------------------------


def event_map(frame: pd.DataFrame) -> Chart:
    """The events placed on a map (outlines served by the archive), sized by civilians killed;
    events whose place has no coordinates are counted beneath."""
    columns = [
        "event_id",
        "title",
        "start_date",
        "admin1",
        "admin2",
        "latitude",
        "longitude",
        "civilians_killed_by_state_best",
        "agents_killed_best",
    ]
    rows = []
    for record in frame.to_dict("records"):
        row = {c: record.get(c) for c in columns}
        for c in ("latitude", "longitude"):
            if row[c] is not None and isinstance(row[c], float) and math.isnan(row[c]):
                row[c] = None
        if isinstance(row["start_date"], pd.Timestamp):
            row["start_date"] = row["start_date"].date()
        if row["start_date"] is not None and pd.isna(row["start_date"]):
            row["start_date"] = None
        rows.append(row)
    placed = [r for r in rows if r["latitude"] is not None and r["longitude"] is not None]
    placed.sort(key=lambda r: -(r["civilians_killed_by_state_best"] or 0))
    drawn = placed[:MAP_MAX_POINTS]
    killed = [r["civilians_killed_by_state_best"] or 0 for r in drawn]
    civ, agents = _("Civilians killed by the state"), _("Agents killed")
    fig = go.Figure(
        go.Scattergeo(
            lat=[r["latitude"] for r in drawn],
            lon=[r["longitude"] for r in drawn],
            mode="markers",
            marker={
                "size": [7 + 4 * math.sqrt(k) for k in killed],
                "color": CIVILIANS,
                "opacity": 0.75,
                "line": {"width": 1, "color": "#ffffff"},
            },
            customdata=[
                [_text(r["title"]), r["civilians_killed_by_state_best"], r["agents_killed_best"]]
                for r in drawn
            ],
            hovertemplate="<b>%{customdata[0]}</b><br>"
            + civ
            + ": %{customdata[1]}<br>"
            + agents
            + ": %{customdata[2]}<extra></extra>",
            name=civ,
        )
    )
    (lon0, lon1), (lat0, lat1) = _bounds(drawn)
    wide = (lon1 - lon0) > 90
    title = _("Map of events, sized by civilians killed by the state")
    fig.update_layout(
        **_layout(
            title,
            showlegend=False,
            margin={"l": 10, "r": 10, "t": 50, "b": 10},
            geo={
                "scope": "world",
                "resolution": 110 if wide else 50,
                "projection": {"type": "mercator"},
                "lonaxis": {"range": [lon0, lon1]},
                "lataxis": {"range": [lat0, lat1]},
                "showcountries": True,
                "countrycolor": "#8a8a8a",
                "showland": True,
                "landcolor": "#f1efe9",
                "showocean": True,
                "oceancolor": "#e3eef8",
                "showcoastlines": True,
                "coastlinecolor": "#8a8a8a",
            },
        )
    )
    notes = []
    missing = len(rows) - len(placed)
    if missing:
        notes.append(_("Not on the map (no coordinates): %(num)s", num=missing))
    if len(placed) > len(drawn):
        notes.append(
            _(
                "The map shows the %(shown)s events with most civilians killed, of %(total)s.",
                shown=len(drawn),
                total=len(placed),
            )
        )
    return Chart("map", title, columns, rows, fig, notes)


def _bounds(points: list[dict]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Longitude and latitude ranges around the points, at least 4 degrees wide."""
    if not points:
        return DEFAULT_BOUNDS
    lons = [p["longitude"] for p in points]
    lats = [p["latitude"] for p in points]
    return _padded(min(lons), max(lons), -180, 180), _padded(min(lats), max(lats), -85, 85)


def _padded(low: float, high: float, floor: float, ceiling: float) -> tuple[float, float]:
    pad = max(2.0, (high - low) * 0.15)
    return max(floor, low - pad), min(ceiling, high + pad)


# --- The modebar in the reader's language ----------------------------------------------------


def plotly_locale() -> Markup | None:
    """plotly.js's modebar texts in the reader's language, as JSON for charts.js (none for
    English, plotly's own)."""
    locale = str(get_locale())
    if locale.startswith("en"):
        return None
    dictionary = {
        "Download plot as a PNG": _("Download the chart as a PNG picture"),
        "Download plot": _("Download the chart"),
        "Zoom": _("Zoom"),
        "Pan": _("Pan"),
        "Zoom in": _("Zoom in"),
        "Zoom out": _("Zoom out"),
        "Autoscale": _("Autoscale"),
        "Reset axes": _("Reset axes"),
        "Reset": _("Reset"),
        "Reset view": _("Reset view"),
        "Show closest data on hover": _("Show closest data on hover"),
        "Compare data on hover": _("Compare data on hover"),
        "Toggle Spike Lines": _("Toggle spike lines"),
        "Double-click to zoom back out": _("Double-click to zoom back out"),
        "Taking snapshot - this may take a few seconds": _(
            "Taking a picture of the chart: this may take a few seconds"
        ),
        "Snapshot succeeded": _("Picture saved"),
    }
    text = json.dumps({"name": locale, "dictionary": dictionary}, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
