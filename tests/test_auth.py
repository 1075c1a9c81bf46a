"""Signing in, out, password reset, throttling, and each role's home."""

from __future__ import annotations

import re
import time
from http import HTTPStatus

import pytest
from django.core import mail
from django.core.mail.backends import locmem

from orders import receiving
from portal.tasks import send_password_reset
from tests.conftest import PASSWORD


def sign_in(client, username, password=PASSWORD, **extra):
    return client.post("/connexion/", {"username": username, "password": password}, **extra)


def test_the_login_page_is_french_and_fits_a_phone(client, db):
    response = client.get("/connexion/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert '<html lang="fr">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "Identifiant" in html
    assert "Mot de passe oublié ?" in html


@pytest.mark.parametrize(
    ("who", "home"),
    [("technician", "/mes-commandes/"), ("supervisor", "/pilotage/"), ("office", "/admin/")],
)
def test_each_role_lands_on_its_own_home(client, request, who, home):
    user = request.getfixturevalue(who)
    response = sign_in(client, user.username)
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/"
    response = client.get("/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == home
    assert client.get(home).status_code == HTTPStatus.OK


def test_a_wrong_password_gets_a_french_error(client, technician):
    response = sign_in(client, technician.username, "faux")
    assert response.status_code == HTTPStatus.OK
    assert "Saisissez un nom d’utilisateur et un mot de passe valides" in response.content.decode()


def test_a_signed_in_person_opening_the_login_page_goes_home(client, technician):
    client.force_login(technician)
    response = client.get("/connexion/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/"


def test_repeated_failures_lock_the_account_out_even_with_the_right_password(client, technician):
    for _ in range(5):
        sign_in(client, technician.username, "mauvais")
    response = sign_in(client, technician.username)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Connexion bloquée" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_out_does_not_hit_another_account(client, technician, other_technician):
    for _ in range(5):
        sign_in(client, technician.username, "mauvais")
    response = sign_in(client, other_technician.username)
    assert response.status_code == HTTPStatus.FOUND


def test_signing_out_needs_a_post_and_ends_the_session(client, technician):
    client.force_login(technician)
    assert client.get("/deconnexion/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
    response = client.post("/deconnexion/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/connexion/"
    assert client.get("/mes-commandes/").status_code == HTTPStatus.FOUND


def test_signing_out_empties_the_browsers_caches_on_a_shared_phone(client, supervisor):
    """The service worker of a technician who used the phone before also keeps a
    supervisor's pages: they must not outlive the supervisor's session."""
    client.force_login(supervisor)
    response = client.post("/deconnexion/")
    assert response["Clear-Site-Data"] == '"cache"'


def test_a_password_reset_by_email_in_french(client, technician, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/mot-de-passe/oubli/", {"email": technician.email})
    assert response.status_code == HTTPStatus.FOUND
    assert mail.outbox == []  # queued: the page answers before the email goes
    (queued,) = callbacks
    send_password_reset(*queued.args)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Portail prestataire : nouveau mot de passe"
    assert "Votre identifiant : karim" in message.body
    assert message.alternatives  # an HTML part too
    link = re.search(r"http://testserver(/mot-de-passe/nouveau/\S+/)", message.body).group(1)
    response = client.get(link, follow=True)
    assert "Nouveau mot de passe" in response.content.decode()
    response = client.post(
        response.redirect_chain[-1][0],
        {"new_password1": "Une-nouvelle-phrase-42", "new_password2": "Une-nouvelle-phrase-42"},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert sign_in(client, technician.username, "Une-nouvelle-phrase-42").status_code == HTTPStatus.FOUND


def test_a_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/mot-de-passe/oubli/", {"email": "personne@example.fr"})
    assert response.status_code == HTTPStatus.FOUND
    assert callbacks == []
    assert mail.outbox == []


class SlowMailServer(locmem.EmailBackend):
    """A mail server that takes its time, as a real one over the network does."""

    def send_messages(self, messages):
        time.sleep(0.5)
        return super().send_messages(messages)


def test_a_known_and_an_unknown_address_take_the_same_time(client, technician, settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.test_auth.SlowMailServer"}}
    timings = {}
    for address in (technician.email, "personne@example.fr", technician.email):
        start = time.perf_counter()
        response = client.post("/mot-de-passe/oubli/", {"email": address})
        timings.setdefault(address, []).append(time.perf_counter() - start)
        assert response.status_code == HTTPStatus.FOUND
    # Sent in the request, the known address would take the mail server's half second.
    assert max(max(values) for values in timings.values()) < 0.25, timings
    assert mail.outbox == []


@pytest.mark.parametrize(
    "url", ["/", "/mes-commandes/", "/pilotage/", "/pilotage/planning/", "/preferences/notifications/"]
)
def test_signed_out_visitors_are_sent_to_the_login_page(client, db, url):
    response = client.get(url)
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/?next=")


def test_a_technician_cannot_open_the_supervisors_overview(client, technician):
    client.force_login(technician)
    assert client.get("/pilotage/").status_code == HTTPStatus.FORBIDDEN


@pytest.mark.parametrize("url", ["/pilotage/planning/", "/preferences/notifications/"])
def test_a_technician_cannot_open_the_planning_nor_the_notification_preferences(client, technician, url):
    client.force_login(technician)
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN


@pytest.mark.parametrize("url", ["/pilotage/planning/", "/preferences/notifications/"])
def test_office_staff_may_open_the_planning_and_their_notification_preferences(client, office, url):
    client.force_login(office)
    assert client.get(url).status_code == HTTPStatus.OK


def test_a_supervisor_has_no_technicians_home(client, supervisor):
    client.force_login(supervisor)
    assert client.get("/mes-commandes/").status_code == HTTPStatus.FORBIDDEN


def test_office_staff_may_open_the_overview(client, office, order):
    client.force_login(office)
    response = client.get("/pilotage/")
    assert response.status_code == HTTPStatus.OK
    assert "À prendre en compte" in response.content.decode()


def test_a_technician_sees_only_their_own_orders(client, order, other_technician, contract):
    receiving.register_order(contract=contract, reference="AUTRE-1", actor=None, technician=other_technician)
    client.force_login(other_technician)
    html = client.get("/mes-commandes/").content.decode()
    assert "AUTRE-1" in html
    assert order.reference not in html


def test_the_health_check_answers_without_signing_in(client, db):
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok"}
