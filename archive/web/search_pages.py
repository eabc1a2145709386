"""The search page: the box, facets to click, results with snippets, and downloads (CSV, JSON)
of exactly the records found. archive/search.py searches; nothing here decides who sees what."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict

from flask import Response, current_app, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import select

from .. import access, database, provenance, search
from ..extensions import db
from ..models import Actor, Event, Operation, Source
from . import bp
from .i18n import label, validation_errors

PER_PAGE = 20
# The search parameters a page link or a download carries; the page's own (lang) stay out.
PARAMS = search.PARAMS
DOWNLOAD_COLUMNS = ("type", "id", "title", "url", "page_url")
# Each type of result: its plural in the API's addresses, and its page.
TYPES = {
    "event": ("events", "web.event", "event_id", _l("Event")),
    "operation": ("operations", "web.operation", "operation_id", _l("Operation")),
    "actor": ("actors", "web.actor", "actor_id", _l("Force or group")),
    "source": ("sources", "web.source", "source_id", _l("Source")),
}
FACET_TITLES = {
    "type": _l("Type of record"),
    "operation": _l("Operation"),
    "actor": _l("Force or group"),
    "admin1": _l("State"),
    "year": _l("Year"),
    "event_type": _l("Type of event"),
    "status": _l("Status"),
}
FACET_VALUES_SHOWN = 10
TITLED = {"event": Event, "operation": Operation, "actor": Actor, "source": Source}
CHUNK = 500  # ids per IN (…) when reading titles


def asked() -> dict[str, str]:
    """The search parameters of this request, empty ones left out."""
    return {name: value for name in PARAMS if (value := request.args.get(name, "").strip())}


def page_url(kind: str, record_id: int) -> str:
    _, endpoint, argument, _title = TYPES[kind]
    return url_for(endpoint, **{argument: record_id})


def _names(model, ids, user) -> dict[str, str]:
    """The names of the facet's records the reader may see, by id as the facets give it."""
    wanted = [int(i) for i in ids if str(i).isdigit()]
    if not wanted:
        return {}
    rows = db.session.execute(
        select(model.id, model.name).where(model.id.in_(wanted), access.visible(model, user))
    )
    return {str(record_id): name for record_id, name in rows}


def _facets(facets: dict[str, dict[str, int]], params: dict[str, str], user) -> list[dict]:
    """Each facet's values: label, count, whether the search is filtered on it, and the link
    that adds (or removes) that filter."""
    names = {
        "operation": _names(Operation, facets.get("operation", {}), user),
        "actor": _names(Actor, facets.get("actor", {}), user),
    }
    shown = []
    for name, title in FACET_TITLES.items():
        values = []
        for value, count in facets.get(name, {}).items():
            if name == "type":
                text = str(TYPES[value][3]) if value in TYPES else value
            elif name in ("event_type", "status"):
                text = label(name, value)
            elif name in names:
                text = names[name].get(value, f"#{value}")
            else:
                text = value
            chosen = params.get(name) == value
            # Choosing a value filters on it (from the first page); choosing it again undoes it.
            args = {k: v for k, v in params.items() if k not in ("page", name)}
            if not chosen:
                args[name] = value
            values.append(
                {
                    "text": text,
                    "count": count,
                    "chosen": chosen,
                    "href": url_for("web.search_page", **args),
                }
            )
        if values:
            shown.append({"name": name, "title": title, "values": values[:FACET_VALUES_SHOWN]})
    return shown


@bp.get("/search")
def search_page():
    """The search box; with a query or a filter, one page of what it finds."""
    user = access.acting_user()
    params = asked()
    result, errors = None, {}
    if params:
        try:
            result = search.search(db.session, user, {"per_page": str(PER_PAGE), **params})
        except ValidationError as exc:
            errors = validation_errors(exc)
    downloadable = {k: v for k, v in params.items() if k not in ("page", "per_page")}
    page = render_template(
        "search.html",
        params=params,
        result=result,
        errors=errors,
        facets=_facets(result["facets"], params, user) if result else [],
        pages=max(1, -(-result["total"] // result["per_page"])) if result else 1,
        types=TYPES,
        page_url=page_url,
        downloadable=downloadable,
        staff=access.is_staff(user),
    )
    return page, 422 if errors else 200


@bp.get("/search.<any(csv, json):fmt>")
def search_download(fmt: str):
    """Every record the search finds (not one page), as CSV or JSON, audited as an export."""
    user = access.acting_user()
    params = {k: v for k, v in asked().items() if k not in ("page", "per_page")}
    found = search.matching_records(db.session, user, params)  # ValidationError: a 422 page
    hits = _with_titles(found, user)
    # The audit entry is written in a transaction of its own that takes the write lock up
    # front (see archive/api/exports.py), and committed before any row leaves.
    db.session.rollback()
    with database.writing():
        provenance.record(
            db.session,
            user,
            "export",
            "search",
            None,
            {
                "format": fmt,
                "filters": params,
                "columns": list(DOWNLOAD_COLUMNS),
                "rows": len(hits),
            },
        )
        db.session.commit()
    link = _links()
    rows = [link(hit) for hit in hits]
    day = dt.datetime.now(dt.UTC).date()
    headers = {
        "Content-Disposition": f'attachment; filename="constancia-search-{day:%Y%m%d}.{fmt}"'
    }
    if fmt == "json":
        return Response(current_app.json.dumps(rows), mimetype="application/json", headers=headers)
    return Response(_csv(rows), mimetype="text/csv", headers=headers)


def _with_titles(found: list[tuple[str, int]], user) -> list[dict]:
    """The records found, in their order, with their titles as the database holds them; one
    the reader may no longer see (deleted or withdrawn since) is left out."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for kind, record_id in found:
        by_type[kind].append(record_id)
    titles: dict[tuple[str, int], str] = {}
    for kind, ids in by_type.items():
        model = TITLED[kind]
        column = model.title if hasattr(model, "title") else model.name
        for start in range(0, len(ids), CHUNK):
            rows = db.session.execute(
                select(model.id, column).where(
                    model.id.in_(ids[start : start + CHUNK]), access.visible(model, user)
                )
            )
            titles.update({(kind, record_id): title for record_id, title in rows})
    return [
        {"type": kind, "id": record_id, "title": titles[(kind, record_id)]}
        for kind, record_id in found
        if (kind, record_id) in titles
    ]


def _links():
    """hit -> its download row with the record's permanent addresses (url_for once per type:
    per row it is slow)."""
    prefixes = {
        kind: (
            url_for("api.get_record", name=plural, record_id=0, _external=True)[:-1],
            url_for(endpoint, **{argument: 0}, _external=True)[:-1],
        )
        for kind, (plural, endpoint, argument, _title) in TYPES.items()
    }

    def row(hit: dict) -> dict:
        api, page = prefixes[hit["type"]]
        return {
            "type": hit["type"],
            "id": hit["id"],
            "title": hit["title"],
            "url": f"{api}{hit['id']}",
            "page_url": f"{page}{hit['id']}",
        }

    return row


def _csv(rows: list[dict]) -> str:
    """UTF-8 with a byte-order mark (Excel needs it for accents), as the exports are."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DOWNLOAD_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return "\ufeff" + out.getvalue()
