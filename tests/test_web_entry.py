"""Case entry, review and accounts through the pages, as researchers and editors use them."""

from __future__ import annotations

import hashlib
import io
import re

from sqlalchemy import func, select

from archive.extensions import db
from archive.models import AuditEntry, Citation, Event, Operation, Source, User, Victim

from .web_helpers import CSRF, csrf_token, post_form, text


def last_id(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.max(model.id)))


def test_a_researcher_enters_a_whole_case_from_the_event_page(app, browser_for, factory):
    client = browser_for("researcher")
    place = factory.place()
    actor = factory.actor(name="Policía Nacional Bolivariana", acronym="PNB")
    created = post_form(
        client,
        "/operations/new",
        {
            "name": "Operación de Liberación del Pueblo",
            "start_date": "2015-07",
            "end_date": "2015-08",
            "actors-actor_id": str(actor),
            "actors-role": "lead",
        },
    )
    assert created.status_code == 302, text(created)[:3000]
    operation = last_id(app, Operation)
    response = post_form(
        client,
        "/events/new",
        {
            "title": "Operativo en la Cota 905",
            "event_type": "armed_clash_alleged",
            "start_date": "2015-07",
            "end_date": "2015-08",
            "place_id": str(place),
            "operation_id": str(operation),
            "actors-actor_id": str(actor),
            "actors-role": "perpetrator",
            "agents_deployed": "250",
        },
    )
    assert response.status_code == 302, text(response)[:3000]
    event = last_id(app, Event)
    assert response.headers["Location"] == f"/events/{event}"
    page = text(client.get(f"/events/{event}?lang=en"))
    assert "July 2015 – August 2015" in page and "Policía Nacional Bolivariana" in page

    victim = post_form(
        client,
        "/victims/new",
        {
            "event_id": str(event),
            "name": "Persona Reservada",
            "age": "16",
            "outcome": "killed",
            "affiliation": "civilian",
            "caused_by": "state",
        },
        form_url=f"/victims/new?event_id={event}",
    )
    assert victim.status_code == 302 and victim.headers["Location"] == f"/events/{event}"
    with app.app_context():
        assert db.session.scalars(select(Victim)).one().identity_restricted is True

    source = post_form(
        client,
        "/sources/new",
        {
            "title": "Quince muertos en la Cota 905",
            "kind": "news_article",
            "publisher": "PROVEA",
            "file": (io.BytesIO(b"nota archivada"), "nota.txt"),
        },
        content_type="multipart/form-data",
    )
    assert source.status_code == 302, text(source)[:2000]
    source_id = last_id(app, Source)
    source_page = text(client.get(f"/sources/{source_id}"))

    assert hashlib.sha256(b"nota archivada").hexdigest() in source_page

    cited = post_form(
        client,
        "/citations/new",
        {
            "source_id": str(source_id),
            "target_type": "event",
            "target_id": str(event),
            "excerpt": "quince personas fallecidas",
            "locator": "p. 2",
            "credibility": "2",
        },
    )
    assert cited.status_code == 302 and cited.headers["Location"] == f"/events/{event}"
    count = post_form(
        client,
        "/casualty-counts/new",
        {
            "event_id": str(event),
            "source_id": str(source_id),
            "affiliation": "civilian",
            "outcome": "killed",
            "caused_by": "state",
            "count": "15",
        },
    )
    assert count.status_code == 302
    page = text(client.get(f"/events/{event}?lang=en"))
    assert "quince personas fallecidas" in page and "Persona Reservada" in page
    assert ">15<" in page.replace(" ", "")


def test_a_citation_can_create_its_source_in_the_same_step(app, browser_for, factory):
    client = browser_for("researcher")
    event = factory.event()
    response = post_form(
        client,
        "/citations/new",
        {
            "source_id": "",
            "new_source-title": "Nota de prensa nueva",
            "new_source-kind": "news_article",
            "target_type": "event",
            "target_id": str(event),
        },
    )
    assert response.status_code == 302, text(response)[:3000]
    with app.app_context():
        citation = db.session.scalars(select(Citation)).one()
        assert db.session.get(Source, citation.source_id).title == "Nota de prensa nueva"


def test_a_form_with_errors_comes_back_with_every_value_and_the_message_beside_its_field(
    browser_for, db_rows
):
    client = browser_for("researcher")
    before = db_rows()
    for lang, message in (("en", "YYYY-MM-DD"), ("es", "AAAA")):
        response = post_form(
            client,
            f"/events/new?lang={lang}",
            {
                "title": "Allanamiento en <b>Petare</b>",
                "event_type": "raid",
                "start_date": "2015-13-45",
                "agents_deployed": "doscientos",
                "official_account": "enfrentamiento",
            },
        )
        assert response.status_code == 422
        page = text(response)
        assert 'value="Allanamiento en &lt;b&gt;Petare&lt;/b&gt;"' in page
        assert 'value="2015-13-45"' in page and 'value="doscientos"' in page
        assert ">enfrentamiento</textarea>" in page
        start_error = re.search(r'id="start_date-error">([^<]+)<', page)
        assert start_error and (message in start_error.group(1) or lang == "es"), page[:200]
        assert 'id="agents_deployed-error"' in page
    assert db_rows() == before


def test_an_end_before_the_start_is_named_in_the_readers_language(browser_for):
    client = browser_for("researcher")
    response = post_form(
        client,
        "/events/new?lang=en",
        {"title": "X", "event_type": "raid", "start_date": "2015-07-13", "end_date": "2015-07-01"},
    )
    assert response.status_code == 422
    assert "is before the start date" in text(response)


def test_a_stale_edit_is_refused_and_shows_the_other_persons_change(app, browser_for, factory):
    event = factory.event(title="Título original")
    first, second = browser_for("researcher"), browser_for("editor")
    form_first = text(first.get(f"/events/{event}/edit"))
    form_second = text(second.get(f"/events/{event}/edit"))
    version = re.search(r'name="version" value="(\d+)"', form_first).group(1)
    assert version == re.search(r'name="version" value="(\d+)"', form_second).group(1)
    base = {"event_type": "raid", "version": version}
    saved = first.post(
        f"/events/{event}/edit",
        data={**base, "title": "Título de la primera", "csrf_token": CSRF.search(form_first)[1]},
    )
    assert saved.status_code == 302
    stale = second.post(
        f"/events/{event}/edit?lang=en",
        data={**base, "title": "Título de la segunda", "csrf_token": CSRF.search(form_second)[1]},
    )
    assert stale.status_code == 409
    page = text(stale)
    assert "Título de la primera" in page and "Título de la segunda" in page
    assert "Saved meanwhile by someone else" in page
    with app.app_context():
        assert db.session.get(Event, event).title == "Título de la primera"
    # Saving again, now knowingly over the other's change, works.
    new_version = re.search(r'name="version" value="(\d+)"', page).group(1)
    again = second.post(
        f"/events/{event}/edit",
        data={
            **base,
            "version": new_version,
            "title": "Título de la segunda",
            "csrf_token": CSRF.search(page)[1],
        },
    )
    assert again.status_code == 302
    with app.app_context():
        assert db.session.get(Event, event).title == "Título de la segunda"


def test_a_form_sent_after_the_session_expired_is_kept_through_sign_in(app, factory):
    client = app.test_client()
    email = factory.account("researcher")
    from .web_helpers import sign_in

    sign_in(client, email)
    form = text(client.get("/events/new"))
    token = CSRF.search(form)[1]
    client.delete_cookie("session")  # the session expired while the researcher typed
    response = client.post(
        "/events/new",
        data={"title": "Escrito durante una hora", "event_type": "raid", "csrf_token": token},
    )
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    signed = client.post(
        "/login",
        data={
            "email": email,
            "password": "correct horse battery staple",
            "next": "/events/new",
            "csrf_token": csrf_token(client, response.headers["Location"]),
        },
    )
    assert signed.headers["Location"] == "/events/new"
    again = text(client.get("/events/new"))
    assert 'value="Escrito durante una hora"' in again
    saved = client.post(
        "/events/new",
        data={
            "title": "Escrito durante una hora",
            "event_type": "raid",
            "csrf_token": CSRF.search(again)[1],
        },
    )
    assert saved.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Event.title)).all() == ["Escrito durante una hora"]


def test_review_verify_needs_a_citation_then_publish(app, browser_for, factory, client):
    event = factory.event(title="Evento para revisar")
    researcher, editor = browser_for("researcher"), browser_for("editor")
    submitted = post_form(
        researcher, f"/events/{event}/status", {"action": "submit"}, form_url=f"/events/{event}"
    )
    assert submitted.status_code == 302
    queue = text(editor.get("/review"))
    assert "Evento para revisar" in queue
    refused = post_form(
        editor, f"/events/{event}/status?lang=en", {"action": "verify"}, form_url=f"/events/{event}"
    )
    page = text(editor.get(refused.headers["Location"] + "?lang=en"))
    assert "no citation" in page
    factory.citation(factory.source(), "event", event)
    for action in ("verify", "publish"):
        done = post_form(
            editor, f"/events/{event}/status", {"action": action}, form_url=f"/events/{event}"
        )
        assert done.status_code == 302
    assert client.get(f"/events/{event}").status_code == 200
    assert (
        post_form(
            researcher,
            f"/events/{event}/status",
            {"action": "unpublish"},
            form_url=f"/events/{event}",
        ).status_code
        == 403
    )
    post_form(
        editor, f"/events/{event}/status", {"action": "unpublish"}, form_url=f"/events/{event}"
    )
    assert client.get(f"/events/{event}").status_code == 404


def test_history_shows_a_diff_and_a_revert_is_a_new_revision(app, browser_for, factory):
    event = factory.event(title="Primera versión")
    factory.update("events", event, title="Segunda versión")
    client = browser_for("editor")
    page = text(client.get(f"/events/{event}/history"))
    assert "Primera versión" in page and "Segunda versión" in page
    with app.app_context():
        first = db.session.scalars(
            select(AuditEntry.seq)
            .where(AuditEntry.record_id == event, AuditEntry.resource == "event")
            .order_by(AuditEntry.seq)
        ).first()
    reverted = post_form(
        client, f"/events/{event}/revert/{first}", {}, form_url=f"/events/{event}/history"
    )
    assert reverted.status_code == 302
    with app.app_context():
        assert db.session.get(Event, event).title == "Primera versión"
        actions = db.session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.record_id == event, AuditEntry.resource == "event"
            )
        ).all()
    assert actions == ["create", "update", "update"]


def test_deleted_records_are_listed_and_restored_by_editors(app, browser_for, factory):
    event = factory.event(title="Evento borrado por error")
    editor = browser_for("editor")
    deleted = post_form(editor, f"/events/{event}/delete", {}, form_url=f"/events/{event}")
    assert deleted.status_code == 302
    assert "Evento borrado por error" in text(editor.get("/deleted"))
    assert browser_for("researcher").get("/deleted").status_code == 403
    restored = post_form(editor, f"/events/{event}/restore", {}, form_url="/deleted")
    assert restored.status_code == 302
    with app.app_context():
        assert db.session.get(Event, event).deleted_at is None


def test_admins_manage_accounts_and_tokens(app, browser_for):
    admin = browser_for("admin")
    created = post_form(
        admin,
        "/admin/users?lang=en",
        {"action": "create", "email": "nueva@example.org", "role": "viewer"},
    )
    assert created.status_code == 200
    assert "shown only this once" in text(created)
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "nueva@example.org")).one()
    for data in (
        {"action": "role", "role": "researcher"},
        {"action": "token"},
        {"action": "deactivate"},
    ):
        response = post_form(admin, "/admin/users", {**data, "user_id": str(user.id)})
        assert response.status_code == 200
    with app.app_context():
        user = db.session.get(User, user.id)
        assert user.role == "researcher" and not user.active
        token = user.tokens[0]
    post_form(
        admin,
        "/admin/users",
        {"action": "revoke", "user_id": str(user.id), "token_id": str(token.id)},
    )
    with app.app_context():
        assert db.session.get(type(token), token.id).revoked_at is not None
    assert browser_for("editor").get("/admin/users").status_code == 403


def test_the_language_follows_the_browser_and_a_choice_is_remembered(client):
    english = text(client.get("/events", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert ">Events<" in english
    switched = client.get("/events?lang=es", headers={"Accept-Language": "en"})
    assert "lang=" in switched.headers.get("Set-Cookie", "")
    remembered = text(client.get("/events", headers={"Accept-Language": "en"}))
    assert '<html lang="es">' in remembered and ">Eventos<" in remembered


def test_history_names_each_change_in_the_readers_language(browser_for, factory):
    event = factory.published_event(title="Evento con historia")
    page = text(browser_for("viewer").get(f"/events/{event}/history?lang=es"))
    assert "Publicación" in page and "Creación" in page
    assert "status_change" not in page
