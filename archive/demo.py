"""Demo data: the publicly reported cases of DOMAIN.md section 6, in our own words.

Every figure here is one the cited report gives; where a report gives none, the field is
left empty. Records are found by a natural key before they are created, so loading twice
changes nothing the second time. Everything goes through the same services as the API,
and so into the audit log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schemas.common import parse_partial_date

from . import records
from .models import Actor, CasualtyCount, Citation, Event, Operation, Place, Source, Victim
from .resources import RESOURCES

ACTORS = [
    {
        "name": "Policía Nacional Bolivariana",
        "acronym": "PNB",
        "kind": "state_police",
        "jurisdiction": "national",
    },
    {
        "name": "Cuerpo de Investigaciones Científicas, Penales y Criminalísticas",
        "acronym": "CICPC",
        "kind": "state_police",
        "jurisdiction": "national",
    },
    {
        "name": "Servicio Bolivariano de Inteligencia Nacional",
        "acronym": "SEBIN",
        "kind": "state_intelligence",
        "jurisdiction": "national",
    },
    {
        "name": "Guardia Nacional Bolivariana",
        "acronym": "GNB",
        "kind": "state_military",
        "jurisdiction": "national",
    },
    {
        "name": "Policía Municipal de El Hatillo",
        "acronym": "PoliHatillo",
        "kind": "state_police",
        "jurisdiction": "municipal",
        "description": "Municipal police of El Hatillo (Miranda): 162 officers, 58 of them "
        "dismissed after internal-affairs investigations.",
    },
    {
        "name": "Tren de Aragua",
        "kind": "non_state_armed",
        "description": 'Gang based in San Vicente, Aragua; leader known as "Niño Guerrero".',
    },
    {
        "name": 'Banda de "El Koki"',
        "kind": "non_state_armed",
        "description": 'Gang of Carlos Luis Revete, "El Koki", in Cota 905 (Caracas).',
    },
    {
        "name": 'Banda del "Loco Leo"',
        "kind": "non_state_armed",
        "description": "Gang of El Cementerio and El Valle (Caracas), allied with El Koki.",
    },
    {
        "name": "Banda del Conejo",
        "kind": "non_state_armed",
        "description": "Gang of Las Tejerías (Aragua).",
    },
    {
        "name": "Banda de Carlos Capa",
        "kind": "non_state_armed",
        "description": "Gang of the Valles del Tuy (Miranda).",
    },
    {
        "name": "Los 300",
        "kind": "non_state_armed",
        "description": "Gang of Barlovento (Miranda), about 150 members.",
    },
    {
        "name": "Banda de Eduardo Delicias",
        "kind": "non_state_armed",
        "description": "Gang of Barlovento (Miranda).",
    },
]

PLACES = {
    "cota905": {"admin1": "Distrito Capital", "admin2": "Libertador", "locality": "Cota 905"},
    "caracas": {"admin1": "Distrito Capital", "admin2": "Libertador"},
    "cementerio": {
        "admin1": "Distrito Capital",
        "admin2": "Libertador",
        "locality": "El Cementerio",
    },
    "lavega": {
        "admin1": "Distrito Capital",
        "admin2": "Libertador",
        "admin3": "La Vega",
        "locality": "La Vega",
    },
    "helicoide": {"admin1": "Distrito Capital", "admin2": "Libertador", "locality": "El Helicoide"},
    "sisipa": {"admin1": "Miranda", "admin2": "El Hatillo", "locality": "Sisipa y Turgua"},
    "naranjos": {"admin1": "Miranda", "admin2": "El Hatillo", "locality": "Los Naranjos"},
    "barlovento": {"admin1": "Miranda", "locality": "Barlovento"},
}

SOURCES = {
    "olp_report": {
        "kind": "news_article",
        "language": "es",
        "title": "Reporting on the OLP in Cota 905, July 2015, with criminologist Keymar "
        "Ávila's (UCV) analysis of the official figures",
    },
    "provea": {
        "kind": "ngo_report",
        "publisher": "PROVEA",
        "language": "es",
        "title": "PROVEA on the OLP killings in Cota 905, which it called a massacre",
    },
    "minister": {
        "kind": "official_statement",
        "language": "es",
        "author": "Gustavo González López",
        "publisher": "Ministerio del Poder Popular para Relaciones Interiores, Justicia y Paz",
        "title": "Interior Minister's announcement of one day's OLP arrests, July 2015",
    },
    "caracas_chronicles": {
        "kind": "news_article",
        "publisher": "Caracas Chronicles",
        "language": "en",
        "title": "First-person account of the El Hatillo municipal police by one of its officials",
    },
    "insight_crime": {
        "kind": "news_article",
        "publisher": "InSight Crime",
        "language": "en",
        "title": "Venezuela's Peace Zones, and the gangs of El Koki and Loco Leo in Caracas",
    },
}

OPERATIONS = {
    "olp": {
        "name": "Operación de Liberación y Protección del Pueblo",
        "aliases": ["OLP", "Operation for the Liberation and Protection of the People"],
        "start_date": "2015-07",
        "announced_by": "National government of Venezuela",
        "description": "<p>Security plan launched in July 2015 that sent PNB, CICPC, SEBIN and "
        "GNB officers into poor sectors of Caracas (Valles del Tuy, Ciudad "
        "Tiuna, Cota Mil), Aragua and Miranda. On 22 July 2015 the president "
        "ordered it extended nationwide.</p>",
        "actors": [
            ("PNB", "participating"),
            ("CICPC", "participating"),
            ("SEBIN", "participating"),
            ("GNB", "participating"),
        ],
        "cited_by": [("olp_report", None, "Launch of the OLP and the forces taking part.")],
    },
}

# Each event: its fields, the sources that back it, its named victims and the figures
# sources give for it, as (source, affiliation, outcome, caused_by, count, notes).
EVENTS = [
    {
        "title": "OLP raid in Cota 905: fifteen dead, no officer hurt",
        "event_type": "raid",
        "start_date": "2015-07",
        "place": "cota905",
        "operation": "olp",
        "agents_deployed": 250,
        "official_account": "Enfrentamiento: officials said those killed died in "
        "confrontations with the security forces.",
        "description": "<p>More than 250 officers took part in the OLP operation in Cota 905. "
        "Fifteen people died in what officials called confrontations; no "
        "officer casualties were reported. PROVEA called it a massacre; "
        "criminologist Keymar Ávila argued the figures show asymmetric force, "
        "not a confrontation.</p>",
        "cited_by": [
            ("olp_report", None, "Fifteen dead in Cota 905; no officer casualties reported."),
            ("olp_report", "agents_deployed", "More than 250 officers took part."),
            ("provea", None, "PROVEA described the killings as a massacre."),
        ],
        "counts": [
            (
                "olp_report",
                "unknown",
                "killed",
                "state",
                15,
                "Officials called the deaths confrontations.",
            ),
            (
                "olp_report",
                "state_agent",
                "killed",
                "non_state",
                0,
                "No officer casualties were reported.",
            ),
            (
                "olp_report",
                "state_agent",
                "injured",
                "non_state",
                0,
                "No officer casualties were reported.",
            ),
        ],
    },
    {
        "title": "Residents protest the Cota 905 deaths at the Attorney General's office",
        "event_type": "protest",
        "start_date": "2015-07-17",
        "place": "caracas",
        "operation": "olp",
        "cited_by": [("olp_report", None, "Residents protested the deaths on 17 July.")],
    },
    {
        "title": "Interior Minister announces 134 arrests in one day of the OLP",
        "event_type": "mass_detention",
        "start_date": "2015-07",
        "operation": "olp",
        "official_account": "134 people arrested in one day, 32 of them described as "
        '"paramilitaries".',
        "cited_by": [("minister", None, "134 arrested in one day; 32 called paramilitaries.")],
        "counts": [
            (
                "minister",
                "unknown",
                "detained",
                "state",
                134,
                'Official figure; 32 of them called "paramilitaries" by the minister.',
            ),
        ],
    },
    {
        "title": "El Hatillo police officer Kevin Valera shot dead near his home",
        "event_type": "targeted_killing",
        "place": "cementerio",
        "actors": [("PoliHatillo", "target")],
        "description": "<p>Officer Kevin Valera, of the El Hatillo police evidence unit, was "
        "shot dead near his home in El Cementerio, reportedly to steal his gun. "
        "The killing was suspected to be revenge for gang members killed "
        "nearby days before by CICPC and PNB officers.</p>",
        "cited_by": [("caracas_chronicles", None, "Killing of officer Kevin Valera.")],
        "victims": [
            {
                "name": "Kevin Valera",
                "affiliation": "state_agent",
                "actor": "PoliHatillo",
                "outcome": "killed",
                "caused_by": "non_state",
                "on_duty": "false",
                "circumstances": "<p>Shot fourteen times in the face near his home, reportedly "
                "for his gun; not a loss suffered in an operation.</p>",
                "identity_restricted": False,
                "cited_by": [("caracas_chronicles", None, "Kevin Valera, evidence unit.")],
            },
        ],
    },
    {
        "title": "Four suspects caught after the killing of Kevin Valera",
        "event_type": "other",
        "place": "cementerio",
        "actors": [("PoliHatillo", "present")],
        "description": "<p>In the days after the killing four suspects were caught and six "
        "vehicles recovered.</p>",
        "cited_by": [("caracas_chronicles", None, "Four suspects caught, six vehicles recovered.")],
        "counts": [("caracas_chronicles", "unknown", "detained", "state", 4, None)],
    },
    {
        "title": "CICPC takes down a gang after months of checkpoints in Sisipa and Turgua",
        "event_type": "raid",
        "place": "sisipa",
        "agents_deployed": 33,
        "actors": [("CICPC", "perpetrator"), ("PoliHatillo", "present")],
        "description": "<p>Months of El Hatillo police checkpoints in Sisipa and Turgua led to "
        "a CICPC operation against a gang, with three El Hatillo officers "
        "guiding thirty CICPC officers.</p>",
        "cited_by": [
            ("caracas_chronicles", None, "Checkpoints and the CICPC takedown."),
            (
                "caracas_chronicles",
                "agents_deployed",
                "Three El Hatillo officers guided thirty CICPC officers.",
            ),
        ],
    },
    {
        "title": "Second special operation against early-morning robberies in Los Naranjos",
        "event_type": "patrol",
        "place": "naranjos",
        "actors": [("PoliHatillo", "perpetrator")],
        "description": "<p>Hotspot analysis located early-morning robberies in Los Naranjos; "
        "in the second special operation a suspect was caught with a "
        "motorbike and a gun.</p>",
        "cited_by": [("caracas_chronicles", None, "Hotspot analysis in Los Naranjos.")],
        "counts": [
            (
                "caracas_chronicles",
                "unknown",
                "detained",
                "state",
                1,
                "Caught with a motorbike and a gun.",
            )
        ],
    },
    {
        "title": "Security forces fight El Koki's gang for control of La Vega",
        "event_type": "armed_clash_alleged",
        "start_date": "2021-01",
        "place": "lavega",
        "actors": [('Banda de "El Koki"', "target")],
        "description": "<p>From late 2020 El Koki's gang moved on La Vega (about 150,000 "
        "residents); security forces fought back from early January 2021, "
        "with dozens of deaths over months. The report gives no exact "
        "figure.</p>",
        "cited_by": [("insight_crime", None, "Fighting in La Vega from January 2021.")],
    },
    {
        "title": "El Koki's allies fire on El Helicoide and two other police sites",
        "event_type": "attack_on_security_forces",
        "start_date": "2021-07",
        "place": "helicoide",
        "actors": [('Banda de "El Koki"', "perpetrator"), ("SEBIN", "target")],
        "description": "<p>After Loco Leo was wounded in a police shootout, El Koki's allies "
        "fired on El Helicoide, SEBIN's headquarters, and two other police "
        "sites.</p>",
        "cited_by": [
            (
                "insight_crime",
                None,
                "Attack on El Helicoide; at least two intelligence officials wounded.",
            )
        ],
        "counts": [
            (
                "insight_crime",
                "state_agent",
                "injured",
                "non_state",
                2,
                "At least two intelligence officials wounded.",
            )
        ],
    },
    {
        "title": "State response drives El Koki out of Cota 905; Loco Leo killed",
        "event_type": "armed_clash_alleged",
        "start_date": "2021-07",
        "place": "cota905",
        "actors": [('Banda de "El Koki"', "target"), ('Banda del "Loco Leo"', "target")],
        "cited_by": [
            ("insight_crime", None, "The armed response drove El Koki out; Loco Leo was killed.")
        ],
        "victims": [
            {
                "alias": "Loco Leo",
                "affiliation": "non_state_armed",
                "actor": 'Banda del "Loco Leo"',
                "outcome": "killed",
                "caused_by": "state",
                "identity_restricted": False,
                "cited_by": [("insight_crime", None, "Loco Leo was killed.")],
            },
        ],
    },
    {
        "title": "Senior police official murdered by the leader of the Eduardo Delicias gang",
        "event_type": "targeted_killing",
        "start_date": "2021",
        "place": "barlovento",
        "actors": [("Banda de Eduardo Delicias", "perpetrator")],
        "cited_by": [("insight_crime", None, "The gang leader murdered a senior police official.")],
        "victims": [
            {
                "affiliation": "state_agent",
                "outcome": "killed",
                "caused_by": "non_state",
                "on_duty": "unknown",
                "cited_by": [("insight_crime", None, "A senior police official.")],
            },
        ],
    },
    {
        "title": "Leader of the Eduardo Delicias gang killed in Barlovento",
        "event_type": "other",
        "start_date": "2021-12",
        "place": "barlovento",
        "actors": [("Banda de Eduardo Delicias", "target")],
        "cited_by": [("insight_crime", None, "The gang's leader was killed in December 2021.")],
        "victims": [
            {
                "affiliation": "non_state_armed",
                "actor": "Banda de Eduardo Delicias",
                "outcome": "killed",
                "caused_by": "unknown",
                "cited_by": [("insight_crime", None, "Leader of the Eduardo Delicias gang.")],
            },
        ],
    },
]


def archive_is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count(Event.id)))


class _Loader:
    """Finds each demo record by its natural key, creating it through the services if absent."""

    def __init__(self, session: Session, user):
        self.session, self.user, self.created = session, user, 0

    def ensure(self, name: str, model, key: dict[str, Any], data: dict[str, Any]):
        found = self.session.scalars(
            select(model).where(*(getattr(model, k) == v for k, v in key.items()))
        ).first()
        if found is not None:
            return found
        self.created += 1
        return records.create_record(self.session, self.user, RESOURCES[name], data)

    def cite(self, target_type: str, target, cited_by, sources) -> None:
        for source_key, field, excerpt in cited_by:
            source = sources[source_key]
            key = {
                "source_id": source.id,
                Citation.TARGET_COLUMNS[target_type]: target.id,
                "field": field,
            }
            data = {
                "source_id": source.id,
                "target_type": target_type,
                "target_id": target.id,
                "field": field,
                "excerpt": excerpt,
            }
            self.ensure("citations", Citation, key, data)


def _date(value: str | None):
    return parse_partial_date(value) if value else None


def load(session: Session, user) -> int:
    """Create whatever part of the demo data is missing; answer how many records were made."""
    loader = _Loader(session, user)
    actors = {}
    for spec in ACTORS:
        actor = loader.ensure("actors", Actor, {"name": spec["name"]}, spec)
        actors[spec.get("acronym") or spec["name"]] = actor
    places = {}
    for key, spec in PLACES.items():
        data = {"country": "VE", **spec}
        lookup = {level: spec.get(level) for level in ("admin1", "admin2", "admin3", "locality")}
        places[key] = loader.ensure("places", Place, lookup, data)
    sources = {
        key: loader.ensure("sources", Source, {"title": spec["title"]}, spec)
        for key, spec in SOURCES.items()
    }
    operations = {}
    for key, spec in OPERATIONS.items():
        data = {k: v for k, v in spec.items() if k not in ("actors", "cited_by")}
        data["start_date"] = _date(data["start_date"])
        data["date_precision"] = data["start_date"].precision
        data["actors"] = [{"actor_id": actors[a].id, "role": r} for a, r in spec["actors"]]
        operation = loader.ensure("operations", Operation, {"name": spec["name"]}, data)
        loader.cite("operation", operation, spec["cited_by"], sources)
        operations[key] = operation
    for spec in EVENTS:
        _load_event(loader, spec, actors, places, sources, operations)
    return loader.created


def _load_event(loader: _Loader, spec, actors, places, sources, operations) -> None:
    data = {
        k: v
        for k, v in spec.items()
        if k in ("title", "event_type", "agents_deployed", "official_account", "description")
    }
    start = _date(spec.get("start_date"))
    data.update(start_date=start, date_precision=start.precision if start else None)
    data["place_id"] = places[spec["place"]].id if "place" in spec else None
    data["operation_id"] = operations[spec["operation"]].id if "operation" in spec else None
    data["actors"] = [{"actor_id": actors[a].id, "role": r} for a, r in spec.get("actors", [])]
    made_before = loader.created
    event = loader.ensure("events", Event, {"title": spec["title"]}, data)
    is_new = loader.created > made_before
    loader.cite("event", event, spec["cited_by"], sources)

    for victim_spec in spec.get("victims", []):
        victim_data = {k: v for k, v in victim_spec.items() if k not in ("actor", "cited_by")}
        victim_data["event_id"] = event.id
        if "actor" in victim_spec:
            victim_data["actor_id"] = actors[victim_spec["actor"]].id
        key = {
            "event_id": event.id,
            "name": victim_spec.get("name"),
            "alias": victim_spec.get("alias"),
            "outcome": victim_spec["outcome"],
            "affiliation": victim_spec["affiliation"],
        }
        victim = loader.ensure("victims", Victim, key, victim_data)
        loader.cite("victim", victim, victim_spec["cited_by"], sources)

    for source_key, affiliation, outcome, caused_by, count, notes in spec.get("counts", []):
        cell = {
            "event_id": event.id,
            "source_id": sources[source_key].id,
            "affiliation": affiliation,
            "outcome": outcome,
            "caused_by": caused_by,
        }
        loader.ensure(
            "casualty-counts", CasualtyCount, cell, {**cell, "count": count, "notes": notes}
        )

    # Publish what this run created; an editor's later decision on an event is left alone.
    if is_new:
        records.update_record(
            loader.session,
            loader.user,
            RESOURCES["events"],
            event.id,
            {"status": "verified", "published": True},
        )
