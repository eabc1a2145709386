"""Full-text search through the app against the raw Whoosh searcher and SQLite FTS5 (issue 8).

Fills a fresh SQLite archive in a temporary folder with a bilingual (Spanish and English)
corpus: --events events (100,000 by default) in real Venezuelan places, with their victims
(some identities restricted), actors, operations, internal notes, and the sources they cite
(some restricted) with the text of their archived files; some events are drafts, unpublished
or deleted. Then it

- indexes everything through the app's code (`SearchIndex.reindex`, what
  `flask search reindex` runs), timed (the aim: 100,000 events in under 2 minutes);
- runs a mix of --queries queries (200 by default: words, words without their accents,
  plurals, English words, phrases, field queries such as `actor:CICPC`, AND/OR/NOT, typos
  with `~`, facet, type and date filters, deep pages, browsing without words) and times each
  * through the API (GET /api/v1/search with Flask's test client), as an anonymous reader and
    as a staff reader (a viewer, signed in with a token);
  * on the raw Whoosh searcher over the same index, done naively: the same parsed query
    (archive/search.py's parse_query, so both find the same documents), the audience and
    filters as a filter query, default scoring of every match, `groupedby` facet counting and
    `len(results)` for the total. It reuses one searcher for the whole run (a cost the API's
    design also avoids), so the ratio does not flatter the API;
  * on SQLite FTS5 over the same texts: a virtual table (unicode61, remove_diacritics 2)
    filled from the documents the app builds, queried with the same words (no stemming; a
    typo's `~` becomes a prefix of its first letters), filters in SQL, facet counts from one
    statement, the page ranked by bm25 with a snippet;
- checks that the API and the raw searcher give the same total, page and facet counts for
  every query and audience (the timing compares equal work; an anonymous reader's page is
  checked against Whoosh scoring with that audience's statistics, as the app scores it), and
  prints the medians and
  95th percentiles, their ratios, and which aims were missed (p95 under 50 ms through the
  API; API within 1.5x of raw Whoosh).

    python bench/search.py                   # 100,000 events, 200 queries
    python bench/search.py --events 2000 --queries 50     # a quick run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import flask_migrate  # noqa: E402
import whoosh.index  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from whoosh import query as wq  # noqa: E402
from whoosh import sorting  # noqa: E402
from whoosh.searching import Searcher  # noqa: E402

from archive import create_app, database, users  # noqa: E402
from archive import search as engine  # noqa: E402
from archive.extensions import db  # noqa: E402
from archive.models import (  # noqa: E402
    Actor,
    Citation,
    Event,
    EventActor,
    Operation,
    OperationActor,
    Place,
    Source,
    SourceFile,
    StoredFile,
    User,
    Victim,
)

LATENCY_AIM_MS = 50  # p95 through the API
RATIO_AIM = 1.5  # API ÷ raw Whoosh
INDEXING_AIM_S = 120  # for 100,000 events
WARM_UP = 10
CHUNK = 5000
PER_PAGE = 50  # the API's default; the raw searcher and FTS5 use the same
TIE_SLACK = 50

# --------------------------------------------------------------------------------------------
# The corpus: real place and force names, Spanish and English text


PLACES = {  # (admin1, admin2): localities
    ("Distrito Capital", "Libertador"): (
        "Cota 905", "La Vega", "El Valle", "Catia", "23 de Enero", "Antímano", "Caricuao",
        "San Agustín", "El Cementerio", "Coche",
    ),
    ("Miranda", "Sucre"): ("Petare", "José Félix Ribas", "La Dolorita", "Caucagüita"),
    ("Miranda", "Zamora"): ("Guatire", "Araira"),
    ("Aragua", "Santos Michelena"): ("Las Tejerías", "El Consejo"),
    ("Aragua", "Girardot"): ("Maracay", "San Vicente", "La Pedrera"),
    ("Zulia", "Maracaibo"): ("Los Haticos", "San Jacinto", "La Limpia", "Ziruma"),
    ("Zulia", "San Francisco"): ("Sierra Maestra", "El Bajo"),
    ("Carabobo", "Valencia"): ("Los Guayos", "Flor Amarillo", "Santa Rosa"),
    ("Lara", "Iribarren"): ("Barquisimeto", "El Cují", "La Carucieña"),
    ("Bolívar", "El Callao"): ("El Perú", "Nacupay"),
    ("Bolívar", "Sifontes"): ("Tumeremo", "Las Claritas"),
    ("Sucre", "Sucre"): ("Cumaná", "Caigüire"),
    ("Anzoátegui", "Sotillo"): ("Puerto La Cruz", "Guaraguao"),
    ("Táchira", "San Cristóbal"): ("La Concordia", "Barrio Sucre"),
    ("Mérida", "Libertador"): ("Santa Juana", "Los Curos"),
    ("Apure", "Páez"): ("Guasdualito", "El Amparo"),
    ("Monagas", "Maturín"): ("Los Guaritos", "La Pica"),
    ("Falcón", "Carirubana"): ("Punto Fijo",),
}  # fmt: skip
SECTORS = ("", "sector Los Mangos", "calle Bolívar", "vereda 12", "sector La Línea")
ACTORS = (  # name, acronym, kind
    ("Cuerpo de Investigaciones Científicas, Penales y Criminalísticas", "CICPC", "state_police"),
    ("Policía Nacional Bolivariana", "PNB", "state_police"),
    ("Fuerzas de Acciones Especiales", "FAES", "state_police"),
    ("Guardia Nacional Bolivariana", "GNB", "state_military"),
    ("Servicio Bolivariano de Inteligencia Nacional", "SEBIN", "state_intelligence"),
    ("Dirección General de Contrainteligencia Militar", "DGCIM", "state_intelligence"),
    ("Ejército Bolivariano", None, "state_military"),
    ("Comando Nacional Antiextorsión y Secuestro", "CONAS", "state_military"),
    ("Dirección de Acciones Estratégicas y Tácticas", "DAET", "state_police"),
    ("Policía del estado Miranda", "PoliMiranda", "state_police"),
    ("Policía municipal de Sucre", "PoliSucre", "state_police"),
    ("Cuerpo de Policía Bolivariana del estado Zulia", "CPBEZ", "state_police"),
    ("Milicia Bolivariana", None, "state_other"),
    ("Tren de Aragua", None, "non_state_armed"),
    ("Banda del Wilexis", None, "non_state_armed"),
    ("Banda de El Koki", None, "non_state_armed"),
    ("Tren del Llano", None, "non_state_armed"),
    ("Colectivo La Piedrita", None, "civilian_group"),
)
STATE_ACTORS = [i + 1 for i, a in enumerate(ACTORS) if a[2].startswith("state")]
ARMED_GROUPS = [i + 1 for i, a in enumerate(ACTORS) if not a[2].startswith("state")]
OPERATION_WORDS = (
    "Liberación del Pueblo", "Mano de Hierro", "Escudo Bolivariano", "Tun Tun", "Gran Cacique",
    "Cangrejo", "Relámpago del Catatumbo", "Guaicaipuro", "Trueno", "Centinela", "Tormenta",
    "Halcón", "Cóndor", "Vuelvan Caras", "Gedeón", "Cacique Paramaconi",
)  # fmt: skip
FIRST_NAMES = (
    "José", "María", "Luis", "Carlos", "Jesús", "Ana", "Yorman", "Yeferson", "Daniel",
    "Andrés", "Miguel Ángel", "Luisa", "Gabriela", "Yusmary", "Wilmer", "Jhonny", "Darwin",
    "Kevin", "Óscar", "Héctor", "Rubén", "Simón", "Néstor", "Inés", "Ramón", "Adrián",
)  # fmt: skip
SURNAMES = (
    "Pérez", "González", "Rodríguez", "Hernández", "García", "Martínez", "López", "Gómez",
    "Díaz", "Ramírez", "Sánchez", "Rojas", "Morales", "Núñez", "Peña", "Acuña", "Gutiérrez",
    "Jiménez", "Álvarez", "Castillo", "Marcano", "Briceño", "Zambrano", "Chacón", "Quintero",
    "Ibáñez", "Muñoz", "Suárez", "Maldonado",
)  # fmt: skip
ALIASES = ("El Chino", "El Gocho", "El Flaco", "El Catire", "La Negra", "El Zurdo", "Pelúo")
TITLES = {  # event type: Spanish and English titles
    "raid": (
        "Allanamiento en {place} deja {n} fallecidos",
        "Operativo de la {actor} en {place}",
        "Police raid in {place} leaves {n} dead",
    ),
    "armed_clash_alleged": (
        "Presunto enfrentamiento con la {actor} en {place}",
        "Muertes en {place} tras un supuesto enfrentamiento armado",
        "Alleged armed confrontation with the {actor} in {place}",
    ),
    "targeted_killing": (
        "Ejecución extrajudicial de {victim} en {place}",
        "Extrajudicial execution of {victim} in {place}",
    ),
    "mass_detention": (
        "Detenciones masivas en {place}",
        "Mass arrests by the {actor} in {place}",
    ),
    "protest": (
        "Manifestación reprimida en {place}",
        "Protest crushed in {place}: residents report injuries",
    ),
    "attack_on_security_forces": (
        "Ataque a funcionarios de la {actor} en {place}",
        "Officers of the {actor} attacked in {place}",
    ),
    "checkpoint": ("Muerte en una alcabala de la {actor} en {place}",),
}
# The first words of the English titles above.
_ENGLISH = {"Police", "Alleged", "Extrajudicial", "Mass", "Protest", "Officers"}
SENTENCES_ES = (
    "Según los vecinos, los funcionarios llegaron antes del amanecer y sacaron a los jóvenes"
    " de sus casas.",
    "Los familiares denunciaron que las víctimas no tenían antecedentes penales.",
    "La versión oficial habla de un enfrentamiento armado, pero los testigos lo niegan.",
    "Varias viviendas fueron allanadas sin orden judicial.",
    "Los cuerpos fueron trasladados a la morgue de Bello Monte.",
    "Organizaciones de derechos humanos exigieron una investigación independiente.",
    "Durante la madrugada se escucharon disparos en el barrio.",
    "Los efectivos se llevaron teléfonos y dinero de las viviendas.",
    "Las manifestaciones fueron dispersadas con bombas lacrimógenas y perdigones.",
    "El Ministerio Público no ha abierto ninguna averiguación.",
    "Una comisión policial ingresó a la zona con el rostro cubierto.",
    "Los detenidos fueron presentados ante un tribunal militar.",
)
SENTENCES_EN = (
    "Residents said officers arrived before dawn and took the young men from their homes.",
    "Relatives denied the victims had criminal records.",
    "The official version describes an armed confrontation, which witnesses dispute.",
    "Several homes were searched without a warrant.",
    "Human rights organisations demanded an independent investigation.",
    "Gunshots were heard in the neighbourhood during the night.",
    "Protesters were dispersed with tear gas and pellets.",
    "Police described several armed confrontations with a gang.",
)
OFFICIAL = (
    "El ministro informó que los abatidos se enfrentaron a la comisión policial.",
    "Según el parte oficial, se incautaron dos armas de fuego y una granada.",
    "Las autoridades calificaron a los fallecidos como integrantes de una banda delictiva.",
    "The ministry said the dead were gang members who resisted arrest.",
)
NOTES = (
    "Pendiente contrastar con el testimonio de la madre.",
    "Testigo protegido: no publicar su identidad.",
    "Revisar el acta de levantamiento del cadáver.",
    "Contact the family lawyer before publishing.",
)
PUBLISHERS = (
    "El Pitazo", "Efecto Cocuyo", "Runrunes", "El Nacional", "Tal Cual", "Provea",
    "Monitor de Víctimas", "Human Rights Watch", "Amnesty International", "Reuters",
    "Associated Press", "Ministerio del Poder Popular para Relaciones Interiores",
)  # fmt: skip
FILE_TYPES = (("text/plain", "txt"), ("text/html", "html"), ("application/pdf", "pdf"))
STATUS_WEIGHTS = (("verified", 85), ("draft", 10), ("in_review", 5))


def _date(rng: random.Random) -> dt.date:
    return dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3650))


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"


def _paragraphs(rng: random.Random, english: bool, k: int) -> str:
    pool = SENTENCES_EN if english else SENTENCES_ES
    return " ".join(rng.sample(pool, k))


def fill(session: Session, events: int, seed: int = 7) -> dict[str, int]:
    """Bulk-insert the corpus straight into the tables (no services, no audit, no outbox):
    the index is then built by the app's reindex, as after `flask search reindex`."""
    rng = random.Random(seed)
    now = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)
    gone = dt.datetime(2025, 2, 1, 9, 30, tzinfo=dt.UTC)
    stamp = {"created_at": now, "updated_at": now}
    made: dict[str, int] = {}

    def write(model, rows: list[dict[str, Any]]) -> None:
        if rows:
            session.execute(insert(model), rows)
            made[model.__tablename__] = made.get(model.__tablename__, 0) + len(rows)

    write(
        Actor,
        [
            {
                "id": i,
                "name": name,
                "acronym": acronym,
                "kind": kind,
                "description": f"<p>{name}: fuerza de seguridad venezolana.</p>"
                if kind.startswith("state")
                else f"<p>{name}: grupo armado señalado por la prensa.</p>",
                **stamp,
            }
            for i, (name, acronym, kind) in enumerate(ACTORS, start=1)
        ],
    )
    places = []
    for (admin1, admin2), localities in PLACES.items():
        for locality in localities:
            for sector in SECTORS:
                places.append(
                    {
                        "id": len(places) + 1,
                        "country": "VE",
                        "admin1": admin1,
                        "admin2": admin2,
                        "admin3": sector.capitalize() or None,
                        "locality": locality,
                        "precision": "locality",
                        **stamp,
                    }
                )
    write(Place, places)
    n_operations = max(events // 250, 2)
    operations, operation_actors = [], []
    for i in range(1, n_operations + 1):
        words = OPERATION_WORDS[i % len(OPERATION_WORDS)]
        operations.append(
            {
                "id": i,
                "name": f"Operación {words} {1 + i // len(OPERATION_WORDS)}",
                "aliases": ["OLP"] if "Liberación" in words else [],
                "description": _paragraphs(rng, False, 2),
                "start_date": _date(rng),
                "date_precision": "day",
                "announced_by": "Ministerio del Poder Popular para Relaciones Interiores",
                "deleted_at": gone if rng.random() < 0.01 else None,
                **stamp,
            }
        )
        operation_actors.append(
            {"operation_id": i, "actor_id": rng.choice(STATE_ACTORS), "role": "lead"}
        )
    write(Operation, operations)
    write(OperationActor, operation_actors)

    n_sources = max(events // 8, 4)
    sources, stored, files = [], [], []
    for i in range(1, n_sources + 1):
        english = rng.random() < 0.25
        place = rng.choice(places)
        restricted = rng.random() < 0.05
        sources.append(
            {
                "id": i,
                "kind": rng.choice(("news_article", "ngo_report", "official_statement")),
                "title": (
                    f"Report on killings in {place['locality']}"
                    if english
                    else f"Denuncian ejecuciones en {place['locality']}, {place['admin1']}"
                ),
                "publisher": rng.choice(PUBLISHERS),
                "author": _person(rng),
                "published_at": _date(rng),
                "language": "en" if english else "es",
                "restricted": restricted,
                "notes": "Testimonio reservado de un familiar." if restricted else None,
                **stamp,
            }
        )
        if rng.random() < 0.6:
            media_type, ext = rng.choice(FILE_TYPES)
            sha = hashlib.sha256(f"bench-file-{i}".encode()).hexdigest()
            stored.append({"sha256": sha, "size": 2000 + rng.randrange(50_000), "created_at": now})
            text = " ".join(
                [
                    _paragraphs(rng, english, 4),
                    f"{_person(rng)} ({rng.choice(FIRST_NAMES)}), vecino de {place['locality']}.",
                    _paragraphs(rng, english, 3),
                ]
            )
            files.append(
                {
                    "id": len(files) + 1,
                    "source_id": i,
                    "sha256": sha,
                    "original_filename": f"fuente-{i}.{ext}",
                    "media_type": media_type,
                    "extracted_text": text,
                    **stamp,
                }
            )
    write(Source, sources)
    write(StoredFile, stored)
    write(SourceFile, files)

    types = list(TITLES)
    victim_id = citation_id = 0
    for start in range(1, events + 1, CHUNK):
        rows, event_actors, victims, citations = [], [], [], []
        for i in range(start, min(start + CHUNK, events + 1)):
            event_type = rng.choices(types, (40, 20, 10, 10, 8, 7, 5))[0]
            place = rng.choice(places)
            actor = rng.choice(STATE_ACTORS)
            names = [
                _person(rng) for _ in range(rng.choices((0, 1, 2, 3, 5), (15, 50, 20, 10, 5))[0])
            ]
            english = rng.random() < 0.2
            templates = [t for t in TITLES[event_type] if (t.split()[0] in _ENGLISH) == english]
            template = rng.choice(templates or TITLES[event_type])
            status = rng.choices(*zip(*STATUS_WEIGHTS, strict=True))[0]
            title = template.format(
                place=place["locality"],
                actor=ACTORS[actor - 1][1] or ACTORS[actor - 1][0],
                victim=names[0] if names else "un joven",
                n=len(names) or "dos",
            )
            rows.append(
                {
                    "id": i,
                    "title": title,
                    "description": f"<p>{_paragraphs(rng, english, rng.randint(2, 4))}</p>",
                    "official_account": rng.choice(OFFICIAL) if rng.random() < 0.4 else None,
                    "event_type": event_type,
                    "start_date": _date(rng),
                    "date_precision": "day",
                    "place_id": place["id"] if rng.random() < 0.95 else None,
                    "operation_id": 1 + rng.randrange(n_operations) if rng.random() < 0.6 else None,
                    "status": status,
                    "published": status == "verified" and rng.random() < 0.95,
                    "internal_notes": rng.choice(NOTES) if rng.random() < 0.3 else None,
                    "deleted_at": gone if rng.random() < 0.02 else None,
                    **stamp,
                }
            )
            event_actors.append({"event_id": i, "actor_id": actor, "role": "perpetrator"})
            if event_type in ("armed_clash_alleged", "attack_on_security_forces"):
                event_actors.append(
                    {"event_id": i, "actor_id": rng.choice(ARMED_GROUPS), "role": "target"}
                )
            for name in names:
                victim_id += 1
                victims.append(
                    {
                        "id": victim_id,
                        "event_id": i,
                        "name": name,
                        "alias": rng.choice(ALIASES) if rng.random() < 0.1 else None,
                        "age": 15 + rng.randrange(50),
                        "affiliation": "civilian",
                        "outcome": "killed",
                        "caused_by": "state",
                        "identity_restricted": rng.random() < 0.1,
                        "deleted_at": gone if rng.random() < 0.02 else None,
                        **stamp,
                    }
                )
            for source in rng.sample(range(1, n_sources + 1), rng.choice((1, 1, 2))):
                citation_id += 1
                citations.append({"id": citation_id, "source_id": source, "event_id": i, **stamp})
        write(Event, rows)
        write(EventActor, event_actors)
        write(Victim, victims)
        write(Citation, citations)
    session.commit()
    return made


# --------------------------------------------------------------------------------------------
# The queries: each in the app's syntax, with its FTS5 counterpart


@dataclass
class Query:
    kind: str
    params: dict[str, str]
    # The FTS5 MATCH expression, its columns as {ALL} and {VICTIM}, filled per audience;
    # None when the query has no words.
    fts: str | None


def _fold(text: str) -> str:
    return engine.fold(text)


def _f(word: str, column: str = "{ALL}") -> str:
    """One word or phrase for FTS5, on the columns the app searches for it."""
    return f'{column} : "{_fold(word)}"'


WORDS_ES = (
    "allanamiento", "vecinos", "madrugada", "víctimas", "testigos", "ejecución", "morgue",
    "disparos", "funcionarios", "investigación", "perdigones", "comisión", "tribunal",
    "Petare", "Tejerías", "Pérez", "Rodríguez", "Maracaibo", "Guasdualito", "banda",
)  # fmt: skip
ACCENTLESS = (
    "tejerias", "ejecucion", "victimas", "policia", "investigacion", "comision", "rodriguez",
    "nunez", "antimano", "cumana", "lacrimogenas", "caucaguita", "bolivar", "judicial",
)  # fmt: skip
PLURALS = (
    "operaciones", "enfrentamientos", "allanamientos", "ejecuciones", "detenciones",
    "confrontations", "arrests", "officer", "killing", "manifestaciones", "homes", "armas",
)  # fmt: skip
WORDS_EN = (
    "raid", "residents", "dawn", "witnesses", "warrant", "gunshots", "relatives",
    "investigation", "gang", "pellets", "dead", "neighbourhood",
)  # fmt: skip
PHRASES = (
    "Cota 905", "sin orden judicial", "armed confrontation", "Las Tejerías", "bombas lacrimógenas",
    "Policía Nacional", "Bello Monte", "tear gas", "derechos humanos", "José Félix Ribas",
    "antecedentes penales", "before dawn",
)  # fmt: skip
FIELD_WORDS = (
    ("actor", "CICPC"), ("actor", "FAES"), ("actor", "GNB"), ("actor", "Aragua"),
    ("place", "Petare"), ("place", "tejerias"), ("place", "Maracay"), ("victim", "Pérez"),
    ("victim", "Yusmary"), ("operation", "Cangrejo"), ("operation", "OLP"),
    ("title", "allanamiento"), ("title", "raid"), ("file", "testigos"), ("file", "vecino"),
)  # fmt: skip
BOOLEANS = (
    ("FAES", "AND", "Petare"), ("GNB", "OR", "PNB"), ("ejecución", "NOT", "protesta"),
    ("madrugada", "AND", "disparos"), ("raid", "OR", "allanamiento"), ("CICPC", "NOT", "Zulia"),
    ("víctimas", "AND", "morgue"), ("gang", "AND", "police"),
)  # fmt: skip
TYPOS = ("tejeiras", "rodirguez", "confrontaton", "madrugda", "allanamiendo", "petrae", "vecions")
COMMON = ("según", "funcionarios", "barrio", "police", "víctimas", "viviendas")

# The mix of 200: (kind, share).
MIX = (
    ("word", 20), ("accentless", 15), ("plural", 15), ("english", 12), ("phrase", 20),
    ("field", 20), ("boolean", 20), ("fuzzy", 14), ("facet", 20), ("type", 10), ("date", 15),
    ("deep page", 14), ("browse", 5),
)  # fmt: skip


def _word_query(kind: str, word: str, **params: str) -> Query:
    return Query(kind, {"q": word, **params}, _f(word))


def make_queries(n: int, operations: int, seed: int = 11) -> list[Query]:
    """A deterministic mix of n queries in the proportions of MIX, interleaved by kind."""
    rng = random.Random(seed)
    total = sum(share for _, share in MIX)
    counts = {kind: max(1, round(n * share / total)) for kind, share in MIX}
    out: list[Query] = []
    for kind, _share in MIX:
        for _ in range(counts[kind]):
            out.append(_one(kind, rng, operations))
    # Exactly n: trim the most common kinds, or add more of them.
    while len(out) != n:
        kinds = [q.kind for q in out]
        most = max(counts, key=lambda kind: (kinds.count(kind), kind))
        if len(out) > n:
            out.remove(next(q for q in reversed(out) if q.kind == most))
        else:
            out.append(_one(most, rng, operations))
    rng.shuffle(out)
    return out


def _one(kind: str, rng: random.Random, operations: int) -> Query:
    if kind == "word":
        return _word_query(kind, rng.choice(WORDS_ES))
    if kind == "accentless":
        return _word_query(kind, rng.choice(ACCENTLESS))
    if kind == "plural":
        return _word_query(kind, rng.choice(PLURALS))
    if kind == "english":
        return _word_query(kind, rng.choice(WORDS_EN))
    if kind == "phrase":
        phrase = rng.choice(PHRASES)
        return Query(kind, {"q": f'"{phrase}"'}, _f(phrase))
    if kind == "field":
        name, word = rng.choice(FIELD_WORDS)
        column = "{VICTIM}" if name == "victim" else f"t_{name}"
        return Query(kind, {"q": f"{name}:{word}"}, _f(word, column))
    if kind == "boolean":
        left, operator, right = rng.choice(BOOLEANS)
        return Query(
            kind, {"q": f"{left} {operator} {right}"}, f"{_f(left)} {operator} {_f(right)}"
        )
    if kind == "fuzzy":
        typo = rng.choice(TYPOS)
        return Query(kind, {"q": f"{typo}~"}, f"{{ALL}} : {_fold(typo)[:4]}*")
    if kind == "facet":
        name, value = rng.choice(
            (
                ("operation", str(1 + rng.randrange(operations))),
                ("actor", str(rng.choice(STATE_ACTORS))),
                ("admin1", rng.choice(("Zulia", "tachira", "Distrito Capital", "Mérida"))),
                ("year", str(rng.randrange(2015, 2025))),
                ("event_type", rng.choice(list(TITLES))),
                ("status", "verified"),
            )
        )
        return _word_query(kind, rng.choice(COMMON + WORDS_ES), **{name: value})
    if kind == "type":
        word, kind_of = rng.choice(
            (("ejecuciones", "source"), ("Cangrejo", "operation"), ("policía", "actor"),
             ("testigos", "source"), ("Petare", "event"), ("killings", "source"))
        )  # fmt: skip
        return _word_query(kind, word, type=kind_of)
    if kind == "date":
        start = dt.date(rng.randrange(2015, 2024), rng.randrange(1, 13), 1)
        end = start + dt.timedelta(days=rng.choice((31, 180, 365)))
        params = {"date_from": start.isoformat(), "date_to": end.isoformat()}
        if rng.random() < 0.5:
            params["sort"] = "-date"
        return _word_query(kind, rng.choice(COMMON + WORDS_ES + WORDS_EN), **params)
    if kind == "deep page":
        return _word_query(
            kind,
            rng.choice(COMMON),
            page=str(rng.randrange(5, 41)),
            per_page=str(rng.choice((20, 50))),
        )
    if kind == "browse":
        name, value = rng.choice(
            (("year", str(rng.randrange(2015, 2025))), ("type", "operation"),
             ("event_type", "protest"), ("admin1", "Aragua"))
        )  # fmt: skip
        return Query(kind, {name: value}, None)
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# The raw Whoosh searcher, naively

FACET_FIELDS = {
    "type": "type",
    "operation": "operation_id",
    "actor": "actor_id",
    "admin1": "admin1",
    "year": "year",
    "event_type": "event_type",
    "status": "status",
}


def _day(value: str) -> int:
    day = dt.date.fromisoformat(value)
    return day.year * 10000 + day.month * 100 + day.day


def _page(params: dict[str, str]) -> tuple[int, int]:
    return int(params.get("page", 1)), int(params.get("per_page", PER_PAGE))


def _sort(params: dict[str, str]) -> str:
    return params.get("sort") or ("relevance" if params.get("q") else "-date")


def raw_search(searcher, params: dict[str, str], staff: bool) -> dict[str, Any]:
    """The query as one would run it on Whoosh without the app's design: filters as a query,
    every match scored, facets by `groupedby`, the total by len()."""
    text = params.get("q", "").strip()
    user_query = engine.parse_query(text, staff) if text else wq.Every()
    filters: list[wq.Query] = [] if staff else [wq.Term("public", "yes")]
    for name, value in params.items():
        if name == "type":
            filters.append(wq.Term("type", value))
        elif name in ("operation", "actor"):
            filters.append(wq.Term(f"{name}_id", str(int(value))))
        elif name == "admin1":
            filters.append(wq.Term("admin1_key", _fold(value)))
        elif name in ("year", "event_type", "status"):
            filters.append(wq.Term(name, value))
        elif name == "date_from":
            filters.append(wq.NumericRange("last", _day(value), None))
        elif name == "date_to":
            filters.append(wq.NumericRange("start", 1, _day(value)))
    page, per_page = _page(params)
    relevance = _sort(params) != "-date"
    groups = {
        name: sorting.FieldFacet(column, allow_overlap=name == "actor")
        for name, column in FACET_FIELDS.items()
    }
    options: dict[str, Any] = {
        # Ordered as the API orders: equal scores (to engine.SCORE_DECIMALS) by document
        # number; a few more than the page, for ties that straddle its end.
        "limit": page * per_page + (TIE_SLACK if relevance else 0),
        "groupedby": groups,
        "maptype": sorting.Count,
        "filter": wq.And(filters) if filters else None,
    }
    if _sort(params) == "-date":
        options["sortedby"] = [sorting.FieldFacet("start", reverse=True), sorting.ScoreFacet()]
    results = searcher.search(user_query, **options)
    hits = [(hit.docnum, hit.score) for hit in results]
    if relevance:
        hits.sort(key=lambda hit: (-round(hit[1], engine.SCORE_DECIMALS), hit[0]))
    items = []
    for docnum, _score in hits[(page - 1) * per_page : page * per_page]:
        stored = searcher.stored_fields(docnum)
        items.append(
            {"type": stored["type"], "id": stored["rid"], "title": stored.get("s_title") or ""}
        )
    facets = {}
    for name in FACET_FIELDS:
        counts = {}
        for key, n in results.groups(name).items():
            key = key.decode() if isinstance(key, bytes) else key
            if key not in ("", None):
                counts[str(key)] = n
        facets[name] = counts
    return {"total": len(results), "items": items, "facets": facets}


# --------------------------------------------------------------------------------------------
# SQLite FTS5 over the same documents

FTS_TEXT = ("title", "all", "actor", "operation", "place", "victim", "file", "notes", "rvictim")
FTS_VALUES = (
    "type", "rid", "public", "start", "last", "operation_id", "actors", "admin1", "admin1_key",
    "year", "event_type", "status",
)  # fmt: skip
FTS_FACETS = {
    "type": "type",
    "operation": "operation_id",
    "admin1": "admin1",
    "year": "year",
    "event_type": "event_type",
    "status": "status",
}


def fts_fill(path: str, engine_: Any) -> tuple[float, float, int]:
    """The FTS5 table of every document the app would index: seconds building them (the
    app's own builders), seconds inserting and indexing them, and how many."""
    build = insert_ = 0.0
    rows = 0
    conn = sqlite3.connect(path)
    try:
        columns = [f"t_{name}" for name in FTS_TEXT] + [f"{name} UNINDEXED" for name in FTS_VALUES]
        conn.execute(
            f"CREATE VIRTUAL TABLE docs USING fts5({', '.join(columns)},"
            " tokenize = 'unicode61 remove_diacritics 2')"
        )
        placeholders = ", ".join("?" * (len(FTS_TEXT) + len(FTS_VALUES)))
        with Session(engine_) as session:
            for kind, ids in engine._all_ids(session).items():
                for chunk in engine._chunks(ids):
                    started = time.perf_counter()
                    docs = engine.BUILDERS[kind](session, chunk).values()
                    values = [
                        [doc.get(f"t_{name}", "") for name in FTS_TEXT]
                        + [
                            doc["type"],
                            doc["rid"],
                            doc["public"],
                            doc.get("start", 0),
                            doc.get("last"),
                            doc.get("operation_id", ""),
                            json.dumps([int(a) for a in doc.get("actor_id", "").split()]),
                            doc.get("admin1", ""),
                            doc.get("admin1_key", ""),
                            doc.get("year", ""),
                            doc.get("event_type", ""),
                            doc.get("status", ""),
                        ]
                        for doc in docs
                    ]
                    middle = time.perf_counter()
                    conn.executemany(f"INSERT INTO docs VALUES ({placeholders})", values)
                    insert_ += time.perf_counter() - middle
                    build += middle - started
                    rows += len(values)
        started = time.perf_counter()
        conn.commit()
        conn.execute("INSERT INTO docs(docs) VALUES ('optimize')")
        conn.commit()
        insert_ += time.perf_counter() - started
    finally:
        conn.close()
    return build, insert_, rows


def fts_match(expression: str, staff: bool) -> str:
    everything = "{t_all t_notes t_rvictim}" if staff else "t_all"
    victims = "{t_victim t_rvictim}" if staff else "t_victim"
    return expression.replace("{ALL}", everything).replace("{VICTIM}", victims)


def fts_search(conn: sqlite3.Connection, q: Query, staff: bool) -> dict[str, Any]:
    """The query on FTS5: the match set's total and facet counts in one statement, then the
    page by bm25 (or newest first) with a snippet."""
    conditions, args = [], []
    if q.fts is not None:
        conditions.append("docs MATCH ?")
        args.append(fts_match(q.fts, staff))
    if not staff:
        conditions.append("public = 'yes'")
    for name, value in q.params.items():
        if name == "type":
            conditions.append("type = ?")
            args.append(value)
        elif name == "operation":
            conditions.append("operation_id = ?")
            args.append(value)
        elif name == "actor":
            conditions.append("EXISTS (SELECT 1 FROM json_each(actors) WHERE value = ?)")
            args.append(int(value))
        elif name == "admin1":
            conditions.append("admin1_key = ?")
            args.append(_fold(value))
        elif name in ("year", "event_type", "status"):
            conditions.append(f"{name} = ?")
            args.append(value)
        elif name == "date_from":
            conditions.append("last >= ?")
            args.append(_day(value))
        elif name == "date_to":
            conditions.append("start BETWEEN 1 AND ?")
            args.append(_day(value))
    where = " AND ".join(conditions) or "1"
    facet_columns = ", ".join([*FTS_FACETS.values(), "actors"])
    parts = ["SELECT 'total', NULL, count(*) FROM m"]
    parts += [
        f"SELECT '{name}', {column}, count(*) FROM m WHERE {column} != '' GROUP BY {column}"
        for name, column in FTS_FACETS.items()
    ]
    parts.append("SELECT 'actor', j.value, count(*) FROM m, json_each(m.actors) j GROUP BY 2")
    counted = conn.execute(
        f"WITH m AS MATERIALIZED (SELECT {facet_columns} FROM docs WHERE {where}) "
        + " UNION ALL ".join(parts),
        args,
    ).fetchall()
    total = 0
    facets: dict[str, dict[str, int]] = {name: {} for name in FACET_FIELDS}
    for name, value, n in counted:
        if name == "total":
            total = n
        else:
            facets[name][str(value)] = n
    page, per_page = _page(q.params)
    if q.fts is not None:
        snippet = f"snippet(docs, {-1 if staff else 1}, '<mark>', '</mark>', '…', 24)"
        order = "start DESC, rank" if _sort(q.params) == "-date" else "rank"
    else:
        snippet, order = "substr(t_all, 1, 240)", "start DESC, rowid"
    items = [
        {"type": kind, "id": rid, "title": title, "snippet": text}
        for kind, rid, title, text in conn.execute(
            f"SELECT type, rid, t_title, {snippet} FROM docs WHERE {where}"
            f" ORDER BY {order} LIMIT ? OFFSET ?",
            [*args, per_page, (page - 1) * per_page],
        )
    ]
    return {"total": total, "items": items, "facets": facets}


# --------------------------------------------------------------------------------------------
# Comparing


def differences(api: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    """Where the API's answer and the raw searcher's differ: total, page, facet counts."""
    problems = []
    if api["total"] != raw["total"]:
        problems.append(f"total: API {api['total']}, raw {raw['total']}")
    ours = [(i["type"], i["id"]) for i in api["items"]]
    theirs = [(i["type"], i["id"]) for i in raw["items"]]
    if ours != theirs:
        problems.append(f"page: API {ours[:5]}…, raw {theirs[:5]}…")
    for name in FACET_FIELDS:
        if api["facets"].get(name, {}) != raw["facets"].get(name, {}):
            problems.append(
                f"facet {name}: API {api['facets'].get(name)}, raw {raw['facets'][name]}"
            )
    return problems


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class Timings:
    """Milliseconds per query, by path ("api", "raw", "fts") and audience."""

    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, path: str, audience: str, ms: float) -> None:
        self.times.setdefault((path, audience), []).append(ms)

    def get(self, path: str, audience: str) -> list[float]:
        return self.times.get((path, audience), [])


@dataclass
class Results:
    events: int
    made: dict[str, int]
    documents: int
    index_seconds: float
    # Seconds of CPU of this process and the rebuild's second one (waited for): what a loaded
    # machine inflates less.
    index_cpu: float
    index_mb: float
    fts_build_seconds: float
    fts_seconds: float
    fts_mb: float
    queries: list[Query]
    timings: Timings
    mismatches: list[tuple[str, Query, list[str]]]
    compared: int
    fts_totals: dict[str, int]
    load: tuple[tuple[float, float, float], tuple[float, float, float]]
    api_answers: list[dict[str, Any]] = field(default_factory=list)


def p95(times: list[float]) -> float:
    if len(times) < 2:
        return times[0] if times else 0.0
    return statistics.quantiles(times, n=20)[18]


def _size_mb(path: str) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return (
        sum(os.path.getsize(os.path.join(root, f)) for root, _, fs in os.walk(path) for f in fs)
        / 2**20
    )


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return (time.perf_counter() - started) * 1000, out


def run(events: int, n_queries: int, workdir: str, progress: bool = True) -> Results:
    say = print if progress else (lambda *a, **k: None)
    load_before = os.getloadavg()
    url = f"sqlite:///{os.path.join(workdir, 'bench.sqlite3')}"
    index_dir = os.path.join(workdir, "search")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": url,
            "FILES_DIR": os.path.join(workdir, "files"),
            "SEARCH_INDEX_DIR": index_dir,
        }
    )
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):
        flask_migrate.upgrade()  # Alembic logs each migration to stderr
    with app.app_context():
        started = time.perf_counter()
        made = fill(db.session, events)
        say(
            f"filled {made['events']:,} events, {made.get('victims', 0):,} victims,"
            f" {made['sources']:,} sources ({made.get('source_files', 0):,} with file text),"
            f" {made['operations']:,} operations in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        with database.writing():
            viewer = User(email="bench-viewer@example.org", role="viewer", active=True)
            db.session.add(viewer)
            db.session.flush()
            token = users.issue_token(db.session, viewer, viewer)
            db.session.commit()
        holder = engine.index_for(app)
        started, cpu = time.perf_counter(), _cpu()
        documents = holder.reindex(db.engine)
        index_seconds = time.perf_counter() - started
        index_cpu = _cpu() - cpu
        say(f"indexed {documents:,} documents in {index_seconds:.1f} s", flush=True)
        fts_path = os.path.join(workdir, "fts.sqlite3")
        fts_build, fts_seconds, fts_rows = fts_fill(fts_path, db.engine)
        say(f"FTS5: {fts_rows:,} documents inserted in {fts_seconds:.1f} s", flush=True)
        if fts_rows != documents:
            raise RuntimeError(f"FTS5 holds {fts_rows} documents, the Whoosh index {documents}")
        operations = made["operations"]
        db.session.remove()

    queries = make_queries(n_queries, operations)
    client = app.test_client()
    audiences = {"anonymous": {}, "staff": {"Authorization": f"Bearer {token}"}}
    raw_ix = whoosh.index.open_dir(index_dir)  # as one would: memory-mapped, the default
    raw_searcher = raw_ix.searcher()
    # Anonymous readers' scores count only the documents they may see (the app's
    # AudienceStatistics: a record they cannot read changes no score), so their pages are
    # checked, untimed, against Whoosh scoring with those same statistics; the timed raw side
    # stays naive.
    audience_searcher = Searcher(
        raw_ix.reader(),
        weighting=engine.AudienceBM25F(engine.AudienceStatistics(holder, raw_searcher)),
    )
    fts = sqlite3.connect(fts_path)
    timings = Timings()
    mismatches: list[tuple[str, Query, list[str]]] = []
    fts_totals = {"equal": 0, "fewer": 0, "more": 0}
    api_answers: list[dict[str, Any]] = []
    compared = 0

    def api(q: Query, audience: str) -> tuple[float, dict]:
        ms, response = _timed(
            lambda: client.get("/api/v1/search", query_string=q.params, headers=audiences[audience])
        )
        if response.status_code != 200:
            raise RuntimeError(f"{q.params}: {response.status_code} {response.get_data(True)}")
        return ms, response.json

    try:
        for q in queries[:WARM_UP]:  # the searcher, its columns and caches, SQLite's pages
            for audience in audiences:
                api(q, audience)
                raw_search(raw_searcher, q.params, audience == "staff")
                fts_search(fts, q, audience == "staff")
        for q in queries:
            for audience in audiences:
                staff = audience == "staff"
                ms, answer = api(q, audience)
                timings.add("api", audience, ms)
                ms, raw = _timed(lambda q=q, staff=staff: raw_search(raw_searcher, q.params, staff))
                timings.add("raw", audience, ms)
                ms, found = _timed(lambda q=q, staff=staff: fts_search(fts, q, staff))
                timings.add("fts", audience, ms)
                if not staff:
                    raw = raw_search(audience_searcher, q.params, staff)
                problems = differences(answer, raw)
                compared += 1
                if problems:
                    mismatches.append((audience, q, problems))
                if not staff:
                    api_answers.append(answer)
                    fts_totals[
                        "equal"
                        if found["total"] == answer["total"]
                        else "fewer"
                        if found["total"] < answer["total"]
                        else "more"
                    ] += 1
    finally:
        fts.close()
        audience_searcher.close()
        raw_searcher.close()
        holder.close()
        with app.app_context():
            db.engine.dispose()
    return Results(
        events=events,
        made=made,
        documents=documents,
        index_seconds=index_seconds,
        index_cpu=index_cpu,
        index_mb=_size_mb(index_dir),
        fts_build_seconds=fts_build,
        fts_seconds=fts_seconds,
        fts_mb=_size_mb(fts_path),
        queries=queries,
        timings=timings,
        mismatches=mismatches,
        compared=compared,
        fts_totals=fts_totals,
        load=(load_before, os.getloadavg()),
        api_answers=api_answers,
    )


PATHS = (("api", "API"), ("raw", "raw Whoosh"), ("fts", "SQLite FTS5"))


def report(r: Results) -> list[str]:
    """Print the tables; answer the aims missed."""
    missed = []
    # The aim is for 100,000 events; a smaller run's fixed costs weigh more, so it is judged
    # only at that size or above (its rate per 100,000 is printed at any size).
    per_100k = r.index_seconds * 100_000 / r.events
    verdict = ("ok" if per_100k < INDEXING_AIM_S else "MISSED") if r.events >= 100_000 else ""
    if verdict == "MISSED":
        missed.append("indexing time")
    load = ", ".join(f"{x:.2f}" for x in r.load[0])
    print(f"\nload average (1, 5, 15 min) at the start: {load};"
          f" at the end: {', '.join(f'{x:.2f}' for x in r.load[1])}")  # fmt: skip
    print(f"\nIndexing {r.events:,} events ({r.documents:,} documents with operations, actors,"
          " sources)")  # fmt: skip
    print(f"{'engine':<14}{'seconds':>9}{'s/100k':>8}{'MB':>7}{'aim s/100k':>12}")
    print(f"{'Whoosh (app)':<14}{r.index_seconds:>9.1f}{per_100k:>8.0f}{r.index_mb:>7.0f}"
          f"{'<' + str(INDEXING_AIM_S):>12} {verdict}"
          f" (CPU {r.index_cpu:.1f} s)")  # fmt: skip
    print(f"{'SQLite FTS5':<14}{r.fts_seconds:>9.1f}{r.fts_seconds * 100_000 / r.events:>8.0f}"
          f"{r.fts_mb:>7.0f}   (+{r.fts_build_seconds:.1f} s building the same documents"
          " with the app's code)")  # fmt: skip

    n = len(r.queries)
    print(f"\nQuery latency, {n} queries per reader (after {min(WARM_UP, n)} warm-up); ms")
    print(f"{'reader':<11}{'path':<13}{'median':>8}{'p95':>8}{'p95 aim':>9}")
    for audience in ("anonymous", "staff"):
        for path, label in PATHS:
            times = r.timings.get(path, audience)
            line = f"{audience:<11}{label:<13}{statistics.median(times):>8.1f}{p95(times):>8.1f}"
            if path == "api":
                ok = p95(times) < LATENCY_AIM_MS
                line += f"{'<' + str(LATENCY_AIM_MS):>9} {'ok' if ok else 'MISSED'}"
                if not ok:
                    missed.append(f"p95 {audience}")
            print(line)
    print(f"\n{'ratios':<24}{'median':>8}{'p95':>8}{'aim':>9}")
    for audience in ("anonymous", "staff"):
        api = r.timings.get("api", audience)
        for path, label in PATHS[1:]:
            other = r.timings.get(path, audience)
            by_median = statistics.median(api) / statistics.median(other)
            by_p95 = p95(api) / p95(other)
            line = f"{audience[:5] + ' API ÷ ' + label:<24}{by_median:>7.2f}x{by_p95:>7.2f}x"
            if path == "raw":
                ok = by_median <= RATIO_AIM and by_p95 <= RATIO_AIM
                line += f"{'≤' + str(RATIO_AIM) + 'x':>9} {'ok' if ok else 'MISSED'}"
                if not ok:
                    missed.append(f"API ÷ raw Whoosh {audience}")
            print(line)

    kinds = list(dict.fromkeys(kind for kind, _ in MIX if any(q.kind == kind for q in r.queries)))
    print("\nBy kind of query, anonymous reader; median ms (p95 where 5 or more)")
    print(f"{'kind':<11}{'n':>4}{'API':>14}{'raw Whoosh':>14}{'FTS5':>14}{'hits (API)':>12}")
    for kind in kinds:
        where = [i for i, q in enumerate(r.queries) if q.kind == kind]
        cells = []
        for path, _ in PATHS:
            times = [r.timings.get(path, "anonymous")[i] for i in where]
            cell = f"{statistics.median(times):.1f}"
            if len(times) >= 5:
                cell += f" ({p95(times):.0f})"
            cells.append(cell)
        hits = statistics.median(r.api_answers[i]["total"] for i in where)
        print(f"{kind:<11}{len(where):>4}" + "".join(f"{c:>14}" for c in cells) + f"{hits:>12,.0f}")

    same = r.compared - len(r.mismatches)
    print(f"\nAPI = raw Whoosh (total, page, facet counts) on {same} of {r.compared} query runs"
          " (anonymous and staff)")  # fmt: skip
    print(f"FTS5 totals against the API's (anonymous): {r.fts_totals['equal']} equal,"
          f" {r.fts_totals['fewer']} fewer (no stemming, no typo tolerance),"
          f" {r.fts_totals['more']} more")  # fmt: skip
    for audience, q, problems in r.mismatches[:10]:
        print(f"  MISMATCH {audience} {q.params}: {'; '.join(problems)}")
    if r.mismatches:
        missed.append("API and raw Whoosh disagree")
    return missed


def main(argv: Sequence[str] | None = None) -> Results:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the corpus")
    parser.add_argument("--queries", type=int, default=200, help="queries in the mix")
    args = parser.parse_args(argv)
    if args.events < 50 or args.queries < 1:
        parser.error("--events must be at least 50 and --queries at least 1")
    with tempfile.TemporaryDirectory(prefix="constancia-bench-search-") as workdir:
        results = run(args.events, args.queries, workdir)
    missed = report(results)
    if missed:
        print(f"\naims missed: {', '.join(missed)}")
    if results.mismatches:
        raise SystemExit(1)
    return results


if __name__ == "__main__":
    main()
