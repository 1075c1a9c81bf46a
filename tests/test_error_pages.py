"""Smaller findings of issue 14 (finding 5): the error pages in French and in
the portal's style, a Content-Security-Policy with no inline style, request
bodies refused before they are read."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

STYLESHEET = "/static/css/portal.css"


def test_an_unknown_page_is_the_portals_french_404(client, db):
    response = client.get("/pas-une-page/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    html = response.content.decode()
    assert "Page introuvable" in html
    assert STYLESHEET in html
    assert '<html lang="fr">' in html


def test_a_page_of_another_role_is_the_portals_french_403(client, technician):
    client.force_login(technician)

    response = client.get("/pilotage/")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "Accès refusé" in response.content.decode()
    assert STYLESHEET in response.content.decode()


def test_a_form_without_its_csrf_token_gets_a_french_403(db):
    browser = Client(enforce_csrf_checks=True)

    response = browser.post("/connexion/", {"username": "x", "password": "y"})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "Formulaire expiré" in response.content.decode()


def test_a_bad_request_is_the_portals_french_400(client, db):
    response = client.get("/connexion/", headers={"host": "pirate.example"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Demande invalide" in response.content.decode()
    assert STYLESHEET in response.content.decode()


def test_the_500_page_is_french_and_needs_no_context():
    response = server_error(RequestFactory().get("/"))

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    html = response.content.decode()
    assert "Erreur du serveur" in html
    assert STYLESHEET in html


def style_sources(response) -> list[str]:
    for directive in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        if name == "style-src":
            return sources
    raise AssertionError("no style-src")


@pytest.mark.parametrize(
    "url",
    [
        "/pilotage/",
        "/pilotage/commandes/",
        "/admin/portal/contract/",
        "/admin/portal/contract/add/",
        "/admin/orders/order/",
        "/admin/orders/order/{order}/change/",
        "/admin/orders/order/{order}/action/plan/",
    ],
)
def test_no_inline_style_is_allowed(client, office, order, url):
    client.force_login(office)

    response = client.get(url.format(order=order.pk))

    assert response.status_code == HTTPStatus.OK
    sources = style_sources(response)
    assert "'unsafe-inline'" not in sources
    html = response.content.decode()
    assert 'style="' not in html
    # The admin's one <style> element carries the nonce the policy names.
    for nonce in [source for source in sources if source.startswith("'nonce-")]:
        assert f'nonce="{nonce[7:-1]}"' in html


def test_a_body_past_the_limit_is_refused_before_it_is_read(client, technician, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024 * 1024
    client.force_login(technician)

    response = client.post(
        "/commandes/1/rapport/",
        b"x" * 10,
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "50 Mo, au-delà des 1 Mo acceptés" in response.content.decode()
