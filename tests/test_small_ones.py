"""Small ones of issue 16, item 10: /favicon.ico answers, and « Voir le site »
takes office staff to a page of the site rather than back into the admin."""

from __future__ import annotations

import re
from http import HTTPStatus

from django.contrib.staticfiles import finders


def test_the_favicon_is_the_portals_icon(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert response.url == "/static/icons/icon-192.png"
    assert finders.find("icons/icon-192.png")


def test_view_the_site_leads_office_staff_out_of_the_admin(client, office):
    client.force_login(office)
    html = client.get("/admin/").content.decode()
    [link] = re.findall(r'<a href="([^"]+)">Voir le site</a>', html)
    assert not link.startswith("/admin/")
    response = client.get(link)
    assert response.status_code == HTTPStatus.OK
    assert "Pilotage" in response.content.decode()
