"""The indicator pages: the comparison table and charts (/indicators), an operation's dashboard,
the methodology, each chart's numbers as CSV, and plotly.js served by the archive itself."""

from __future__ import annotations

from flask import Response, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import access, indicators
from ..extensions import db
from ..resources import RESOURCES
from . import bp, charts, explain, plotly_assets, security
from .forms import reference_options
from .i18n import validation_errors
from .pages import EVENT_FILTERS

# The columns of the comparison table after the group's label and its events.
TABLE_COLUMNS = (
    "civilians_killed_by_state",
    "agents_killed",
    "civilian_agent_death_ratio",
    "lethality_index",
    "one_sided_event_share",
    "civilians_killed_per_event",
    "dirty_war_index",
    "agents_killed_off_duty",
)
YEAR = 365 * 24 * 3600


def group_label(group_by: str) -> str:
    return {
        "operation": _("Operation"),
        "actor": _("Force or group"),
        "admin1": _("State"),
        "admin2": _("Municipality"),
        "year": _("Year"),
        "month": _("Month"),
    }[group_by]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes", "on")


def query_args(args, user, **fixed) -> dict[str, str]:
    """The parameters of an indicator query in `args`: every filter the events list takes, as
    the API takes them (a bad value is refused by name), and the grouping; drafts only for
    staff, as the API counts them. Other parameters (the language, say) are not the query's."""
    wanted = {k: v for k in RESOURCES["events"].filters if (v := (args.get(k) or "").strip())}
    if group_by := (args.get("group_by") or "").strip():
        wanted["group_by"] = group_by
    if access.is_staff(user) and _truthy(args.get("include_drafts")):
        wanted["include_drafts"] = "true"
    wanted.update(fixed)
    return wanted


def hidden_filters(params: dict[str, str], staff: bool) -> list[tuple[str, str]]:
    """The filters in force that the form has no field for (a place, published; the status
    for readers who are not staff), to be carried along as it is sent again."""
    shown = set(EVENT_FILTERS) - (set() if staff else {"status"})
    return [
        (k, v) for k, v in params.items() if k in RESOURCES["events"].filters and k not in shown
    ]


# --- plotly.js and map outlines, from the archive --------------------------------------------


@bp.get("/vendor/<any('plotly.min.js', 'plotly.css', 'maplibre-gl.css'):name>")
def vendor(name: str):
    """plotly.js and its style sheets, cached for a year: their URLs carry plotly's version."""
    body = plotly_assets.asset(name)
    mimetype = "text/javascript" if name.endswith(".js") else "text/css"
    response = Response(body, mimetype=mimetype)
    response.set_etag(plotly_assets.etag(name))
    response.cache_control.public = True
    response.cache_control.max_age = YEAR
    response.cache_control.immutable = True
    return response.make_conditional(request)


@bp.app_context_processor
def chart_helpers():
    def plotly_url(name: str) -> str:
        return url_for("web.vendor", name=name, v=plotly_assets.version())

    return {
        "plotly_url": plotly_url,
        "plotly_global_style_id": plotly_assets.GLOBAL_STYLE_ID,
        "plotly_maplibre_style_id": plotly_assets.maplibre_style_id,
        "operation_dashboard": operation_dashboard,
        "plotly_locale": charts.plotly_locale,
        "allow_chart_pictures": security.allow_chart_pictures,
    }


# --- /indicators -----------------------------------------------------------------------------


@bp.get("/indicators")
def indicator_table():
    user = access.acting_user()
    staff = access.is_staff(user)
    params = query_args(request.args, user)
    params.setdefault("group_by", "operation")
    errors: dict[str, list[str]] = {}
    result, chart_list = None, []
    try:
        query = indicators.parse_query(params)
    except ValidationError as exc:
        errors = validation_errors(exc)
    else:
        result = _named_groups(indicators.grouped(db.session, user, query))
        frame = indicators.event_figures(db.session, user, query)
        chart_list = [
            charts.deaths_by_side(result),
            charts.timeline(frame),
            charts.lethality(result),
            charts.event_map(frame),
        ]
    thresholds = indicators.thresholds()
    hidden = hidden_filters(params, staff)
    rows = []
    if result is not None:
        rows = [_table_row(g["label"], g["indicators"], thresholds) for g in result["groups"]]
    return render_template(
        "indicators.html",
        params=params,
        errors=errors,
        result=result,
        rows=rows,
        total=_table_row(_("Total"), result["total"], thresholds) if result else None,
        columns=[(k, explain.name(k)) for k in TABLE_COLUMNS],
        charts=chart_list,
        groupings=[(g, group_label(g)) for g in indicators.GROUPINGS],
        operation_options=reference_options("operations", user),
        actor_options=reference_options("actors", user),
        staff=staff,
        hidden=hidden,
        without_hidden=url_for(
            "web.indicator_table", **{k: v for k, v in params.items() if k not in dict(hidden)}
        ),
    ), (422 if errors else 200)


def _named_groups(result: dict) -> dict:
    """The answer with the group of events without operation (force, place, date) named in
    the reader's language."""
    missing = {
        "operation": _("No operation"),
        "actor": _("No force named"),
        "admin1": _("No place"),
        "admin2": _("No municipality"),
        "year": _("No date"),
        "month": _("Month unknown"),
    }[result["group_by"]]
    for group in result["groups"]:
        if group["key"] is None:
            group["label"] = missing
    return result


def _table_row(label: str, block: dict, thresholds: dict) -> dict:
    cells = {f["key"]: f for f in explain.figures(block, thresholds, TABLE_COLUMNS)}
    events = block.get("civilians_killed_per_event", {}).get("events")
    return {"label": label, "events": events, "cells": cells}


@bp.get("/indicators/charts/<any('deaths_by_side', 'timeline', 'lethality', 'map'):name>.csv")
def chart_csv(name: str):
    """Exactly the numbers one chart draws, for the same parameters as the page."""
    user = access.acting_user()
    params = query_args(request.args, user)
    params.setdefault("group_by", "operation")
    try:
        query = indicators.parse_query(params)
    except ValidationError as exc:
        messages = validation_errors(exc)
        body = "\n".join(f"{k}: {' '.join(v)}" for k, v in messages.items())
        return Response(body + "\n", status=422, mimetype="text/plain")
    chart = _chart(name, query, user)
    response = Response(chart.csv(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(name)}.csv"'
    return response


def _chart(name: str, query, user) -> charts.Chart:
    if name in ("deaths_by_side", "lethality"):
        result = _named_groups(indicators.grouped(db.session, user, query))
        return (
            charts.deaths_by_side(result) if name == "deaths_by_side" else charts.lethality(result)
        )
    frame = indicators.event_figures(db.session, user, query)
    return charts.timeline(frame) if name == "timeline" else charts.event_map(frame)


def _filename(name: str) -> str:
    return f"constancia-{name.replace('_', '-')}"


# --- An operation's dashboard ----------------------------------------------------------------


def operation_dashboard(operation) -> dict:
    """What an operation's page shows of its indicators: the figures, with their sentences,
    and the charts that make sense for one operation (its deaths by side, by month, mapped)."""
    user = access.acting_user()
    staff = access.is_staff(user)
    include_drafts = staff and _truthy(request.args.get("include_drafts"))
    data = indicators.operation_indicators(db.session, user, operation.id, include_drafts)
    params = {"operation_id": str(operation.id), "group_by": "operation"}
    if include_drafts:
        params["include_drafts"] = "true"
    # The operation as the one group of its own events: the same figures grouped() would give.
    result = {"groups": [{"key": operation.id, "label": operation.name, **data}]}
    frame = indicators.event_figures(db.session, user, indicators.parse_query(params))
    return {
        "method_version": data["method_version"],
        "include_drafts": data["include_drafts"],
        "staff": staff,
        "figures": explain.figures(data["indicators"], indicators.thresholds()),
        "charts": [charts.deaths_by_side(result), charts.timeline(frame), charts.event_map(frame)],
        "params": params,
    }


# --- /methodology ----------------------------------------------------------------------------


@bp.get("/methodology")
def methodology():
    thresholds = {
        key: {"value_text": explain.number(key, t.value), "reference": t.reference}
        for key, t in indicators.thresholds().items()
    }
    definitions = [
        (
            key,
            explain.name(key),
            {
                "formula": explain.translated(indicators.DEFINITIONS[key].formula),
                "unit_text": explain.translated(indicators.DEFINITIONS[key].unit),
            },
            thresholds.get(key),
        )
        for key in indicators.INDICATOR_KEYS
    ]
    return render_template(
        "methodology.html",
        definitions=definitions,
        thresholds=[(key, explain.name(key), t) for key, t in thresholds.items()],
        method_version=indicators.METHOD_VERSION,
    )
