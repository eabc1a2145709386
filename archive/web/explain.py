"""Indicators in words: each figure's name, its value and range as a reader reads them, and one
plain sentence built from the numbers, in the reader's language.

Every sentence is made here and nowhere else, through gettext with named placeholders (and
ngettext where a number decides the plural), so that both languages say the same thing.
"""

from __future__ import annotations

import re

from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

NAMES = {
    "civilians_killed_by_state": _l("Civilians killed by the state"),
    "civilians_injured_by_state": _l("Civilians injured by the state"),
    "agents_killed": _l("Agents killed"),
    "agents_injured": _l("Agents injured"),
    "detained": _l("People detained"),
    "civilian_agent_death_ratio": _l("Civilian–agent death ratio"),
    "lethality_index": _l("Lethality index"),
    "agent_lethality": _l("Agent lethality"),
    "lethality_differential": _l("Lethality differential"),
    "civilians_killed_per_event": _l("Civilians killed per event"),
    "one_sided_event_share": _l("One-sided events"),
    "deaths_per_1000_agents_deployed": _l("Deaths per 1,000 agents deployed"),
    "killed_per_detained": _l("Killed per person detained"),
    "rate_per_100k": _l("Rate per 100,000 inhabitants"),
    "share_of_homicides": _l("Share of homicides"),
    "dirty_war_index": _l("Dirty war index"),
    "agents_killed_off_duty": _l("Agents killed off duty (apart)"),
}

# The figures an operation's dashboard shows, in this order; the context-figure ones only when
# a context figure gave them a value.
KEY_FIGURES = (
    "civilians_killed_by_state",
    "agents_killed",
    "civilian_agent_death_ratio",
    "lethality_index",
    "agent_lethality",
    "one_sided_event_share",
    "civilians_killed_per_event",
    "deaths_per_1000_agents_deployed",
    "killed_per_detained",
    "dirty_war_index",
    "agents_killed_off_duty",
    "rate_per_100k",
    "share_of_homicides",
)
NEEDS_CONTEXT = ("rate_per_100k", "share_of_homicides")
COUNTS = (
    "civilians_killed_by_state",
    "civilians_injured_by_state",
    "agents_killed",
    "agents_injured",
    "detained",
    "agents_killed_off_duty",
)
PERCENTS = ("one_sided_event_share", "share_of_homicides", "dirty_war_index")

# The reasons the indicators module gives for a figure without value, in the reader's words.
REASONS = {
    "no agents killed": _l("no agents killed"),
    "no agents injured": _l("no agents injured"),
    "no civilians injured": _l("no civilians injured by the state"),
    "no events": _l("no events"),
    "no people detained": _l("no people detained"),
    "no civilians killed by the state": _l("no civilians killed by the state"),
    "no event gives the number of agents deployed": _l(
        "no event gives the number of agents deployed"
    ),
    "no event with a place and a year": _l("no event with a place and a year"),
    "no civilians or non-state armed people killed by the state": _l(
        "no civilians or members of armed groups killed by the state"
    ),
    "the population figures are zero": _l("the population figures are zero"),
    "the homicide figures are zero": _l("the homicide figures are zero"),
}
# Reasons that name places: "no population figure for Miranda 2015, Zulia 2016".
REASON_PATTERNS = (
    (
        re.compile(r"no population figure for (?P<where>.+)"),
        _l("no population figure for %(where)s"),
    ),
    (re.compile(r"no homicide figure for (?P<where>.+)"), _l("no homicide figure for %(where)s")),
)

# The indicators module states each formula and unit in English (indicators.DEFINITIONS);
# these are the same texts marked for translation, so that the methodology page reads in
# Spanish too (tests/test_indicator_pages.py checks that they match the module's).
FORMULA_TEXTS = (
    _l(
        "People killed by the state (caused_by = state) who are not state agents: affiliation "
        "civilian, non-state armed or unknown."
    ),
    _l("People injured by the state who are not state agents."),
    _l(
        "State agents killed, by anyone, on duty or with duty unknown; agents recorded as off "
        "duty are left out and reported apart."
    ),
    _l("State agents injured, by anyone, on duty or with duty unknown."),
    _l("People detained by the state who are not state agents."),
    _l("civilians killed by the state ÷ agents killed"),
    _l("civilians killed by the state ÷ civilians injured by the state"),
    _l("agents killed ÷ agents injured"),
    _l("lethality index ÷ agent lethality"),
    _l("civilians killed by the state ÷ all events in the group, those without deaths included"),
    _l(
        "events in which the state killed civilians and no agent was killed or injured ÷ events "
        "in which the state killed civilians × 100"
    ),
    _l(
        "civilians killed by the state × 1000 ÷ agents deployed, over the events that give the "
        "number of agents deployed"
    ),
    _l("civilians killed by the state ÷ people detained by the state"),
    _l(
        "civilians killed by the state × 100000 ÷ population of the places and years of the "
        "events (context figures; several years add up as person-years)"
    ),
    _l(
        "civilians killed by the state ÷ all homicides in the same places and years × 100 "
        "(context figures)"
    ),
    _l(
        "civilians (affiliation civilian) killed by the state ÷ (civilians + non-state armed "
        "killed by the state) × 100"
    ),
    _l(
        "State agents killed while off duty (victim records with on_duty = false): a loss "
        "suffered outside any operation, reported apart from agents killed."
    ),
)
UNIT_TEXTS = (
    _l("%"),
    _l("civilians per agent"),
    _l("killed per detained"),
    _l("killed per injured"),
    _l("people"),
    _l("people per event"),
    _l("per 1,000 agents"),
    _l("per 100,000 inhabitants"),
    _l("times"),
)


def translated(text: str) -> str:
    """A text of the indicators module (a formula, a unit) in the reader's language, if the
    catalogue has it; as it is otherwise."""
    return _(text) if text else ""


def name(key: str) -> str:
    return str(NAMES.get(key, key))


def number(key: str, value) -> str:
    """A figure as the reader writes it: whole counts, ratios to two decimals, percentages."""
    if value is None:
        return _("undefined")
    if key in COUNTS:
        return format_decimal(value, format="#,##0")
    if key in PERCENTS:
        return _("%(value)s %%", value=format_decimal(value, format="#,##0.#"))
    return format_decimal(value, format="#,##0.##")


def value_range(key: str, ind: dict) -> str:
    """ "low–high", "" when the sources agree, "undefined" ends for a missing bound."""
    low, high = ind.get("low"), ind.get("high")
    if ind.get("best") is None or (low == high == ind.get("best")):
        return ""
    return _("%(low)s–%(high)s", low=number(key, low), high=number(key, high))


def reason(text: str | None) -> str:
    """The module's reason for a figure without value, in the reader's language."""
    if not text:
        return ""
    found = REASONS.get(text.strip())
    if found is not None:
        return str(found)
    for pattern, message in REASON_PATTERNS:
        match = pattern.fullmatch(text.strip())
        if match:
            return str(message) % match.groupdict()
    return text


def _n(value) -> int:
    """The number that chooses singular or plural: 1 for exactly one, else many."""
    return 1 if value is not None and float(value) == 1 else 2


def _best(indicators: dict, key: str):
    return (indicators.get(key) or {}).get("best")


def sentence(key: str, indicators: dict) -> str:
    """One plain sentence about one indicator, built from the numbers of its block."""
    ind = indicators[key]
    best = ind.get("best")
    value = number(key, best)
    threshold = ind.get("threshold")
    limit = number(key, threshold) if threshold is not None else None
    civilians = _best(indicators, "civilians_killed_by_state") or 0
    shown_civilians = number("civilians_killed_by_state", civilians)

    if key in COUNTS:
        return _count_sentence(key, int(best or 0), value)
    if key == "civilian_agent_death_ratio":
        if best is None:
            if not civilians:
                return _("No one was killed on either side, so there is no ratio.")
            return ngettext(
                "No agents were killed, so there is no ratio: %(count)s civilian died and the "
                "state lost no one.",
                "No agents were killed, so there is no ratio: %(count)s civilians died and the "
                "state lost no one.",
                int(civilians),
                count=shown_civilians,
            )
        if ind.get("exceeds"):
            return ngettext(
                "For every agent killed, %(count)s civilian was killed; above %(threshold)s, the "
                "literature reads this as force beyond self-defence.",
                "For every agent killed, %(count)s civilians were killed; above %(threshold)s, the "
                "literature reads this as force beyond self-defence.",
                _n(best),
                count=value,
                threshold=limit,
            )
        if limit is not None:
            return ngettext(
                "For every agent killed, %(count)s civilian was killed; that is not above "
                "%(threshold)s, where the literature reads force beyond self-defence.",
                "For every agent killed, %(count)s civilians were killed; that is not above "
                "%(threshold)s, where the literature reads force beyond self-defence.",
                _n(best),
                count=value,
                threshold=limit,
            )
        return ngettext(
            "For every agent killed, %(count)s civilian was killed.",
            "For every agent killed, %(count)s civilians were killed.",
            _n(best),
            count=value,
        )
    if key == "lethality_index":
        if best is None:
            if not civilians:
                return _("The state killed and injured no civilians, so there is no index.")
            return ngettext(
                "No civilian was reported injured by the state, so there is no index: "
                "%(count)s was killed and none wounded.",
                "No civilian was reported injured by the state, so there is no index: "
                "%(count)s were killed and none wounded.",
                int(civilians),
                count=shown_civilians,
            )
        if ind.get("exceeds"):
            return _(
                "For every civilian the state injured, %(value)s were killed; above "
                "%(threshold)s, the literature reads this as intent to kill rather than to stop.",
                value=value,
                threshold=limit,
            )
        if limit is not None:
            return _(
                "For every civilian the state injured, %(value)s were killed; that is not above "
                "%(threshold)s, where the literature reads intent to kill rather than to stop.",
                value=value,
                threshold=limit,
            )
        return _("For every civilian the state injured, %(value)s were killed.", value=value)
    if key == "agent_lethality":
        agents = _best(indicators, "agents_killed") or 0
        if best is None:
            if not agents:
                return _("No agent was killed or injured, so there is no agent lethality.")
            return ngettext(
                "No agent was reported injured, so there is no agent lethality: %(count)s was "
                "killed and none wounded.",
                "No agent was reported injured, so there is no agent lethality: %(count)s were "
                "killed and none wounded.",
                int(agents),
                count=number("agents_killed", agents),
            )
        return _(
            "For every agent injured, %(value)s were killed; in a real confrontation both sides "
            "show a similar lethality.",
            value=value,
        )
    if key == "lethality_differential":
        if best is None:
            return _(
                "There is no differential: it needs both the lethality index and the agents' "
                "lethality."
            )
        return _(
            "The encounters were %(value)s times as deadly for civilians as for agents.",
            value=value,
        )
    if key == "civilians_killed_per_event":
        events = ind.get("events") or 0
        if best is None:
            return _("There are no events, so there is no average.")
        return ngettext(
            "On average %(value)s civilians were killed per event, over %(count)s event.",
            "On average %(value)s civilians were killed per event, over %(count)s events.",
            int(events),
            value=value,
            count=number("detained", events),
        )
    if key == "one_sided_event_share":
        if best is None:
            return _("The state killed no civilians in these events, so there is no share.")
        return _(
            "In %(value)s of the events in which the state killed civilians, no agent was "
            "killed or injured.",
            value=value,
        )
    if key == "deaths_per_1000_agents_deployed":
        if best is None:
            return _("The number of agents deployed is not known, so this figure cannot be given.")
        return _("For every 1,000 agents deployed, %(value)s civilians were killed.", value=value)
    if key == "killed_per_detained":
        if best is None:
            return _("No one was reported detained, so there is no such figure.")
        return _("For every person detained, %(value)s civilians were killed.", value=value)
    if key == "rate_per_100k":
        if best is None:
            return _("Without population figures for these places and years there is no rate.")
        return _("State agents killed %(value)s civilians per 100,000 inhabitants.", value=value)
    if key == "share_of_homicides":
        if best is None:
            return _("Without homicide figures for these places and years there is no share.")
        if ind.get("exceeds"):
            return _(
                "Killings by state agents were %(value)s of all homicides; above %(threshold)s, "
                "the literature reads this as a sign of abuse.",
                value=value,
                threshold=limit,
            )
        if limit is not None:
            return _(
                "Killings by state agents were %(value)s of all homicides; that is not above "
                "%(threshold)s, where the literature reads a sign of abuse.",
                value=value,
                threshold=limit,
            )
        return _("Killings by state agents were %(value)s of all homicides.", value=value)
    if key == "dirty_war_index":
        if best is None:
            return _(
                "The state killed no civilians or members of armed groups, so there is no index."
            )
        return _(
            "Of the people the state killed whose affiliation is known, %(value)s were civilians "
            "rather than members of armed groups.",
            value=value,
        )
    return ""


def _count_sentence(key: str, n: int, value: str) -> str:
    if key == "civilians_killed_by_state":
        if not n:
            return _("State agents killed no civilians.")
        return ngettext(
            "State agents killed %(count)s civilian.",
            "State agents killed %(count)s civilians.",
            n,
            count=value,
        )
    if key == "civilians_injured_by_state":
        if not n:
            return _("State agents injured no civilians.")
        return ngettext(
            "State agents injured %(count)s civilian.",
            "State agents injured %(count)s civilians.",
            n,
            count=value,
        )
    if key == "agents_killed":
        if not n:
            return _("No state agent was killed (deaths off duty are counted apart).")
        return ngettext(
            "%(count)s state agent was killed (deaths off duty are counted apart).",
            "%(count)s state agents were killed (deaths off duty are counted apart).",
            n,
            count=value,
        )
    if key == "agents_injured":
        if not n:
            return _("No state agent was injured.")
        return ngettext(
            "%(count)s state agent was injured.",
            "%(count)s state agents were injured.",
            n,
            count=value,
        )
    if key == "detained":
        if not n:
            return _("No one was detained.")
        return ngettext(
            "%(count)s person was detained.",
            "%(count)s people were detained.",
            n,
            count=value,
        )
    if not n:  # agents_killed_off_duty
        return _("No agent was recorded killed off duty.")
    return ngettext(
        "%(count)s agent was killed off duty; such deaths are reported apart and not counted "
        "among the agents killed.",
        "%(count)s agents were killed off duty; such deaths are reported apart and not counted "
        "among the agents killed.",
        n,
        count=value,
    )


def figures(indicators: dict, thresholds: dict, keys=KEY_FIGURES) -> list[dict]:
    """The rows a page shows for `keys`: name, value, range, flag and threshold, reason,
    events and sources, and the sentence."""
    rows = []
    for key in keys:
        ind = indicators.get(key)
        if ind is None:
            continue
        if key in NEEDS_CONTEXT and ind.get("best") is None:
            continue
        threshold = thresholds.get(key)
        rows.append(
            {
                "key": key,
                "name": name(key),
                "value": number(key, ind.get("best")),
                "defined": ind.get("best") is not None,
                "range": value_range(key, ind),
                "exceeds": bool(ind.get("exceeds")),
                "threshold": number(key, ind["threshold"])
                if ind.get("threshold") is not None
                else "",
                "reference": threshold.reference if threshold is not None else "",
                "reason": reason(ind.get("reason")),
                "events": ind.get("events") or 0,
                "sources": ind.get("sources") or 0,
                "sentence": sentence(key, indicators),
            }
        )
    return rows
