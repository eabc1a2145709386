"""The asymmetry indicators of DOMAIN.md section 4, against figures worked out by hand.

The scenario (operation "Plan Prueba", Distrito Capital, 2015):

event A, verified, 100 agents deployed, cited by s1
  civilians killed by the state: 2 victim records (one restricted); sources say 5 (s1),
    3 (s2) and 4 (s3, a restricted testimony) -> n 2, counts [3, 4, 5]:
    low max(2, 3) = 3, best max(2, 4) = 4, high max(2, 5) = 5
  non-state armed killed by the state: 1 record                    -> 1 / 1 / 1
  civilians injured by the state: 1 record (affiliation unknown)   -> 1 / 1 / 1
  agents killed: s1 says 0, s2 says 1 -> counts [0, 1]             -> 0 / 0 / 1
  a deleted victim and a deleted count of 100 that must not count
event B, verified, cited by s1
  agents killed: 2 records (one off duty); s1 says 2 -> 2 / 2 / 2, less 1 off duty -> 1 / 1 / 1
  agents injured: 1 record                                          -> 1 / 1 / 1
  civilians killed by the state: 1 record                           -> 1 / 1 / 1
event C, a draft: s1 says 10 civilians killed by the state
event D, verified then deleted: 7 civilians killed

Totals of A and B: civilians killed by the state 5 / 6 / 7 (low / best / high), agents killed
1 / 1 / 2, civilians injured 1 / 1 / 1, agents injured 1 / 1 / 1, off duty 1.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from archive import access, demo, indicators
from archive.extensions import db

SENTINEL = "SENTINELA-IDENTIDAD-RESTRINGIDA"


@pytest.fixture
def scenario(factory):
    s1 = factory.source(title="Informe 1")
    s2 = factory.source(title="Nota 2")
    s3 = factory.source(title="Testimonio 3", kind="testimony")  # restricted by default
    s4 = factory.source(title="Fuente de una cifra borrada")
    place = factory.place()
    operation = factory.operation(name="Plan Prueba")

    def verified(**fields):
        event = factory.event(operation_id=operation, place_id=place, **fields)
        factory.citation(s1, "event", event)
        factory.update("events", event, status="verified", published=True)
        return event

    a = verified(start_date=dt.date(2015, 7, 10), date_precision="day", agents_deployed=100)
    civilian = {"affiliation": "civilian", "outcome": "killed", "caused_by": "state"}
    factory.victim(a, name=SENTINEL, identity_restricted=True, **civilian)
    factory.victim(a, name="Pedro Pérez", **civilian)
    gone = factory.victim(a, name="Borrado", **civilian)
    factory.delete("victims", gone)
    for source, count in ((s1, 5), (s2, 3), (s3, 4)):
        factory.casualty_count(a, source, count=count, **civilian)
    gone = factory.casualty_count(a, s4, count=100, **civilian)
    factory.delete("casualty-counts", gone)
    factory.victim(a, affiliation="non_state_armed", outcome="killed", caused_by="state")
    factory.victim(a, affiliation="unknown", outcome="injured", caused_by="state")
    agent_killed = {"affiliation": "state_agent", "outcome": "killed", "caused_by": "non_state"}
    factory.casualty_count(a, s1, count=0, **agent_killed)
    factory.casualty_count(a, s2, count=1, **agent_killed)

    b = verified(start_date=dt.date(2015, 8, 3), date_precision="day")
    factory.victim(b, on_duty="true", **agent_killed)
    factory.victim(b, on_duty="false", **agent_killed)
    factory.casualty_count(b, s1, count=2, **agent_killed)
    factory.victim(b, affiliation="state_agent", outcome="injured", caused_by="non_state")
    factory.victim(b, **civilian)

    c = factory.event(operation_id=operation, title="Borrador", start_date=dt.date(2015, 9, 1))
    factory.casualty_count(c, s1, count=10, **civilian)

    d = verified(start_date=dt.date(2015, 7, 20), date_precision="day")
    for _ in range(7):
        factory.victim(d, **civilian)
    factory.update("events", d, published=False)
    factory.delete("events", d)
    return {"operation": operation, "events": (a, b, c, d), "sources": (s1, s2, s3, s4)}


def figures(client, path, headers=None):
    response = client.get(path, headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def rng(indicator):
    return (indicator["low"], indicator["best"], indicator["high"])


def test_operation_indicators_match_the_hand_computed_figures(client, auth, scenario):
    answer = figures(
        client, f"/api/v1/operations/{scenario['operation']}/indicators", auth("viewer")
    )
    assert answer["method_version"]
    assert answer["include_drafts"] is False
    ind = answer["indicators"]
    assert list(ind) == [
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
    ]
    for entry in ind.values():
        assert set(entry) == {
            "best", "low", "high", "threshold", "exceeds", "reason", "events", "sources"
        }  # fmt: skip

    assert rng(ind["civilians_killed_by_state"]) == (5, 6, 7)
    assert rng(ind["agents_killed"]) == (1, 1, 2)
    assert rng(ind["civilians_injured_by_state"]) == (1, 1, 1)
    assert rng(ind["agents_injured"]) == (1, 1, 1)
    assert rng(ind["agents_killed_off_duty"]) == (1, 1, 1)
    assert rng(ind["detained"]) == (0, 0, 0)

    # 6 / 1; low 5 / 2 (the numerator's low over the denominator's high); high 7 / 1.
    ratio = ind["civilian_agent_death_ratio"]
    assert rng(ratio) == (2.5, 6, 7)
    assert ratio["threshold"] == 10 and ratio["exceeds"] is False and ratio["reason"] is None
    lethality = ind["lethality_index"]
    assert rng(lethality) == (5, 6, 7)
    assert lethality["threshold"] == 1 and lethality["exceeds"] is True
    assert rng(ind["agent_lethality"]) == (1, 1, 2)
    assert ind["agent_lethality"]["threshold"] is None
    assert ind["agent_lethality"]["exceeds"] is None
    # lethality index / agent lethality: 6 / 1, 5 / 2, 7 / 1.
    assert rng(ind["lethality_differential"]) == (2.5, 6, 7)
    # Two events counted: 6 / 2, 5 / 2, 7 / 2.
    assert rng(ind["civilians_killed_per_event"]) == (2.5, 3, 3.5)
    assert ind["civilians_killed_per_event"]["events"] == 2
    # A is one-sided on its best figures (agents killed 0) but not if s2's 1 is right.
    assert rng(ind["one_sided_event_share"]) == (0, 50, 50)
    # Only A gives agents deployed (100): 4, 5, 6 civilians killed there.
    assert rng(ind["deaths_per_1000_agents_deployed"]) == (40, 50, 60)
    assert ind["deaths_per_1000_agents_deployed"]["events"] == 1
    # Civilians 3/4/5 + 1 = 4/5/6 of civilians and armed together 5/6/7.
    dwi = ind["dirty_war_index"]
    assert dwi["best"] == pytest.approx(500 / 6)
    assert dwi["low"] == pytest.approx(80)  # 4 / (4 + 1)
    assert dwi["high"] == pytest.approx(600 / 7)  # 6 / (6 + 1)


def test_a_zero_denominator_gives_no_number_but_a_reason(client, auth, scenario):
    ind = figures(client, f"/api/v1/operations/{scenario['operation']}/indicators", auth("viewer"))[
        "indicators"
    ]
    detained = ind["killed_per_detained"]
    assert (detained["best"], detained["low"], detained["high"]) == (None, None, None)
    assert detained["reason"] == "no people detained"
    assert detained["exceeds"] is None
    # Without context figures there is no rate, and the answer says which figure is missing.
    assert ind["rate_per_100k"]["best"] is None
    assert "Distrito Capital 2015" in ind["rate_per_100k"]["reason"]


def test_events_and_sources_behind_each_figure(client, auth, scenario):
    path = f"/api/v1/operations/{scenario['operation']}/indicators"
    staff = figures(client, path, auth("viewer"))["indicators"]
    # s1, s2 and s3 report A's civilians; s1 cites A and B. The deleted count's s4 is not.
    assert staff["civilians_killed_by_state"]["events"] == 2
    assert staff["civilians_killed_by_state"]["sources"] == 3
    assert staff["agents_killed"]["sources"] == 2
    # The restricted testimony counts in the figure but is not counted for anonymous readers.
    public = figures(client, path)["indicators"]
    assert rng(public["civilians_killed_by_state"]) == (5, 6, 7)
    assert public["civilians_killed_by_state"]["sources"] == 2


def test_drafts_count_only_when_asked_and_the_answer_says_so(client, auth, scenario):
    path = f"/api/v1/operations/{scenario['operation']}/indicators?include_drafts=true"
    answer = figures(client, path, auth("researcher"))
    assert answer["include_drafts"] is True
    ind = answer["indicators"]
    # C adds 10 reported civilians killed (no records): 15 / 16 / 17 over three events.
    assert rng(ind["civilians_killed_by_state"]) == (15, 16, 17)
    assert ind["civilians_killed_per_event"]["best"] == pytest.approx(16 / 3)
    # Anonymous readers never see drafts: asking changes nothing, and the answer says so.
    public = figures(client, path)
    assert public["include_drafts"] is False
    assert rng(public["indicators"]["civilians_killed_by_state"]) == (5, 6, 7)


def test_anonymous_readers_get_figures_from_published_events_only(client, auth, factory, scenario):
    a, b, c, d = scenario["events"]
    factory.update("events", b, published=False)
    path = f"/api/v1/operations/{scenario['operation']}/indicators"
    public = figures(client, path)["indicators"]
    assert rng(public["civilians_killed_by_state"]) == (4, 5, 6)  # A alone
    assert rng(public["agents_killed"]) == (0, 0, 1)
    staff = figures(client, path, auth("viewer"))["indicators"]
    assert rng(staff["civilians_killed_by_state"]) == (5, 6, 7)  # B is verified


def test_restricted_identities_count_but_never_appear(client, auth, scenario):
    for headers in ({}, auth("viewer")):
        for path in (
            f"/api/v1/operations/{scenario['operation']}/indicators",
            "/api/v1/indicators?group_by=operation",
            "/api/v1/indicators?group_by=actor",
        ):
            response = client.get(path, headers=headers)
            assert response.status_code == 200
            assert SENTINEL not in response.get_data(as_text=True)


def test_an_unpublished_operation_is_not_found_for_anonymous_readers(client, auth, factory):
    operation = factory.operation()
    factory.event(operation_id=operation)
    path = f"/api/v1/operations/{operation}/indicators"
    assert client.get(path).status_code == 404
    assert client.get(path, headers=auth("viewer")).status_code == 200
    assert client.get("/api/v1/operations/999999/indicators").status_code == 404


def test_grouped_figures_equal_the_operations_own(client, auth, factory, scenario):
    other = factory.operation(name="Otro plan")
    event = factory.published_event(operation_id=other, start_date=dt.date(2016, 1, 5))
    factory.victim(event, affiliation="civilian", outcome="killed", caused_by="state")
    answer = figures(client, "/api/v1/indicators?group_by=operation", auth("viewer"))
    assert answer["group_by"] == "operation" and answer["include_drafts"] is False
    groups = {g["key"]: g for g in answer["groups"]}
    assert groups[scenario["operation"]]["label"] == "Plan Prueba"
    for operation in (scenario["operation"], other):
        own = figures(client, f"/api/v1/operations/{operation}/indicators", auth("viewer"))
        assert groups[operation]["indicators"] == own["indicators"]
    total = answer["total"]
    assert rng(total["civilians_killed_by_state"]) == (6, 7, 8)


def test_grouping_by_year_and_month_uses_the_documented_keys(client, auth, scenario):
    years = figures(client, "/api/v1/indicators?group_by=year", auth("viewer"))["groups"]
    assert [(g["key"], g["label"]) for g in years] == [(2015, "2015")]
    months = figures(client, "/api/v1/indicators?group_by=month", auth("viewer"))["groups"]
    by_month = {g["key"]: g["indicators"] for g in months}
    assert set(by_month) == {"2015-07", "2015-08"}
    assert rng(by_month["2015-07"]["civilians_killed_by_state"]) == (4, 5, 6)
    assert rng(by_month["2015-08"]["agents_killed"]) == (1, 1, 1)


def test_grouping_by_region_and_force(client, auth, factory, scenario):
    regions = figures(client, "/api/v1/indicators?group_by=admin1", auth("viewer"))["groups"]
    assert [g["key"] for g in regions] == ["Distrito Capital"]
    municipalities = figures(client, "/api/v1/indicators?group_by=admin2", auth("viewer"))
    assert [g["key"] for g in municipalities["groups"]] == ["Libertador"]
    force = factory.actor(name="Policía de prueba", acronym="PP")
    a, b, c, d = scenario["events"]
    factory.update("events", a, actors=[{"actor_id": force, "role": "perpetrator"}])
    forces = figures(client, "/api/v1/indicators?group_by=actor", auth("viewer"))["groups"]
    by_force = {g["key"]: g for g in forces}
    assert by_force[force]["label"] == "Policía de prueba"
    assert rng(by_force[force]["indicators"]["civilians_killed_by_state"]) == (4, 5, 6)
    assert rng(by_force[None]["indicators"]["civilians_killed_by_state"]) == (1, 1, 1)


def test_municipalities_of_the_same_name_in_two_states_are_two_groups(
    client, auth, factory, scenario
):
    """Libertador is a municipality of Distrito Capital and of Mérida (and of others): by
    municipality, each is its own group, named with its state where the name alone would
    not tell them apart; a name found in one state only keeps its plain key."""
    source = factory.source()
    for admin1, admin2, count in (("Mérida", "Libertador", 2), ("Miranda", "El Hatillo", 3)):
        event = factory.event(
            start_date=dt.date(2016, 5, 2),
            place_id=factory.place(admin1=admin1, admin2=admin2, locality=None),
        )
        factory.casualty_count(event, source, count=count)
        factory.citation(source, "event", event)
        factory.update("events", event, status="verified", published=True)
    answer = figures(client, "/api/v1/indicators?group_by=admin2", auth("viewer"))
    groups = {g["key"]: g for g in answer["groups"]}
    assert set(groups) == {"Libertador (Distrito Capital)", "Libertador (Mérida)", "El Hatillo"}
    assert [g["label"] for g in answer["groups"]] == [g["key"] for g in answer["groups"]]
    killed = {k: rng(g["indicators"]["civilians_killed_by_state"]) for k, g in groups.items()}
    assert killed["Libertador (Mérida)"] == (2, 2, 2)
    assert killed["El Hatillo"] == (3, 3, 3)
    capital = "/api/v1/indicators?group_by=admin2&admin1=Distrito%20Capital"
    (alone,) = figures(client, capital, auth("viewer"))["groups"]
    assert alone["key"] == "Libertador"
    assert groups["Libertador (Distrito Capital)"]["indicators"] == alone["indicators"]
    total = answer["total"]["civilians_killed_by_state"]["best"]
    assert total == sum(
        g["indicators"]["civilians_killed_by_state"]["best"] for g in groups.values()
    )


def test_events_list_filters_narrow_the_figures(client, auth, scenario):
    path = "/api/v1/indicators?group_by=operation&date_from=2015-08-01"
    total = figures(client, path, auth("viewer"))["total"]
    assert rng(total["civilians_killed_by_state"]) == (1, 1, 1)  # B only


def test_bad_parameters_are_refused_by_name(client):
    response = client.get("/api/v1/indicators?group_by=planet&include_drafts=maybe&colour=red")
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert set(fields) == {"group_by", "include_drafts", "colour"}
    response = client.get("/api/v1/operations/1/indicators?group_by=year")
    assert response.status_code == 422
    assert "group_by" in response.get_json()["error"]["fields"]


def test_context_figures_give_the_rate_and_the_share_of_homicides(client, auth, factory, scenario):
    s1 = scenario["sources"][0]
    factory.create(
        "context-figures",
        country="VE",
        admin1="Distrito Capital",
        year=2015,
        population=2_000_000,
        homicides=120,
        source_id=s1,
    )
    path = f"/api/v1/operations/{scenario['operation']}/indicators"
    ind = figures(client, path, auth("viewer"))["indicators"]
    # 6 killed of 2,000,000 people: 0.3 per 100,000 (5 -> 0.25, 7 -> 0.35).
    assert rng(ind["rate_per_100k"]) == pytest.approx((0.25, 0.3, 0.35))
    assert ind["rate_per_100k"]["reason"] is None
    # 6 of 120 homicides: 5 %, below the 10 % threshold.
    share = ind["share_of_homicides"]
    assert rng(share) == pytest.approx((500 / 120, 5, 700 / 120))
    assert share["threshold"] == 10 and share["exceeds"] is False


def test_thresholds_are_configurable(app, client, auth, scenario):
    app.config["INDICATOR_THRESHOLDS"] = {"civilian_agent_death_ratio": 5}
    path = f"/api/v1/operations/{scenario['operation']}/indicators"
    ratio = figures(client, path, auth("viewer"))["indicators"]["civilian_agent_death_ratio"]
    assert ratio["threshold"] == 5 and ratio["exceeds"] is True


def test_demo_cota_905_has_no_ratio_and_is_entirely_one_sided(app, client):
    with app.app_context():
        demo.load(db.session, access.SystemActor("cli"))
        db.session.commit()
    operations = client.get("/api/v1/operations").get_json()["items"]
    olp = next(o for o in operations if "OLP" in o["aliases"])
    ind = figures(client, f"/api/v1/operations/{olp['id']}/indicators")["indicators"]
    assert rng(ind["civilians_killed_by_state"]) == (15, 15, 15)
    assert rng(ind["agents_killed"]) == (0, 0, 0)
    ratio = ind["civilian_agent_death_ratio"]
    assert ratio["best"] is None and ratio["exceeds"] is None
    assert ratio["reason"] == "no agents killed"
    assert ind["one_sided_event_share"]["best"] == 100
    # More than 250 officers for fifteen dead: 60 per 1,000 agents deployed.
    assert ind["deaths_per_1000_agents_deployed"]["best"] == 60
    # Kevin Valera, killed off duty, is no loss of the operations: reported apart.
    total = figures(client, "/api/v1/indicators?group_by=year")["total"]
    assert total["agents_killed_off_duty"]["best"] == 1
    assert rng(total["agents_killed"]) == (1, 1, 1)  # the senior police official, duty unknown


def test_an_empty_archive_answers_zeros_and_reasons(client):
    answer = figures(client, "/api/v1/indicators?group_by=month")
    assert answer["groups"] == []
    total = answer["total"]
    assert rng(total["civilians_killed_by_state"]) == (0, 0, 0)
    assert total["civilian_agent_death_ratio"]["reason"] == "no agents killed"
    assert total["civilians_killed_per_event"]["reason"] == "no events"


def test_the_figures_leave_the_readers_database_settings_as_they_were(app, scenario):
    """PostgreSQL runs the indicators' statement without JIT compilation, and puts the
    setting back after: the rest of the reader's transaction runs as it would have."""
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
        if postgresql:
            db.session.execute(text("SELECT set_config('jit', 'on', true)"))
        query = indicators.parse_query({"group_by": "operation"})
        answer = indicators.grouped(db.session, None, query)
        groups = {g["key"]: g["indicators"] for g in answer["groups"]}
        assert rng(groups[scenario["operation"]]["civilians_killed_by_state"]) == (5, 6, 7)
        if postgresql:
            assert db.session.execute(text("SELECT current_setting('jit')")).scalar() == "on"
