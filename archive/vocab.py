"""Controlled vocabularies of DOMAIN.md section 2: the one list models and schemas share."""

ACTOR_KINDS = (
    "state_police",
    "state_military",
    "state_intelligence",
    "state_other",
    "non_state_armed",
    "civilian_group",
    "other",
)
JURISDICTIONS = ("national", "state", "municipal")
OPERATION_ACTOR_ROLES = ("lead", "participating")
EVENT_ACTOR_ROLES = ("perpetrator", "target", "present")
PLACE_PRECISIONS = ("exact", "locality", "admin2", "admin1", "country")
EVENT_TYPES = (
    "raid",
    "checkpoint",
    "patrol",
    "armed_clash_alleged",
    "targeted_killing",
    "mass_detention",
    "attack_on_security_forces",
    "protest",
    "other",
)
DATE_PRECISIONS = ("day", "month", "year")
EVENT_STATUSES = ("draft", "in_review", "verified")
SEXES = ("female", "male", "other", "unknown")
AFFILIATIONS = ("civilian", "state_agent", "non_state_armed", "unknown")
OUTCOMES = ("killed", "injured", "detained", "disappeared", "tortured")
CAUSED_BY = ("state", "non_state", "unknown")
ON_DUTY = ("true", "false", "unknown")
SOURCE_KINDS = (
    "news_article",
    "ngo_report",
    "official_statement",
    "social_media",
    "testimony",
    "court_record",
    "media_file",
    # A file of records from another organisation or an official release, imported row by row.
    "dataset",
    "other",
)
# Admiralty scale: A completely reliable ... E unreliable, F reliability cannot be judged.
RELIABILITY = ("A", "B", "C", "D", "E", "F")
# Admiralty scale: 1 confirmed ... 5 improbable, 6 truth cannot be judged.
CREDIBILITY = (1, 2, 3, 4, 5, 6)
CITATION_TARGETS = ("operation", "event", "victim", "casualty_count")
ROLES = ("viewer", "researcher", "editor", "admin")
