"""The webhook's operation link (issue 14, finding 5): followed with the
connection's bearer token, so only under the connection's API base, never
elsewhere through `../`, another host, port or user."""

from __future__ import annotations

import pytest

from portal.relay import inbound, intent
from portal.relay.models import InboundNotification, NotificationStatus

BASE = "https://api.intent.example/api"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (f"{BASE}/operations/v2/operations/OPH57", "operations/v2/operations/OPH57"),
        (
            f"{BASE}/operations/v2/operations/OPH57?contractReference=M-1",
            "operations/v2/operations/OPH57?contractReference=M-1",
        ),
        ("HTTPS://API.INTENT.EXAMPLE/api/operations/v2/operations/A", "operations/v2/operations/A"),
    ],
)
def test_a_link_under_the_api_base_is_followed(url, path):
    assert intent.path_under(BASE + "/", url) == path


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/../oauth/token",
        f"{BASE}/operations/../../admin/",
        f"{BASE}/%2e%2e/%2E%2E/admin/",
        f"{BASE}/operations/..%2f..%2fadmin",
        f"{BASE}/./operations",
        f"{BASE}/operations\\..\\..\\admin",
        f"{BASE}",
        "https://api.intent.example/apiother/operations",
        "https://api.intent.example.evil.example/api/operations",
        "https://evil.example/api/operations",
        "https://api.intent.example:8443/api/operations",
        "https://attacker@api.intent.example/api/operations",
        "http://api.intent.example/api/operations",
        "//evil.example/api/operations",
        "/api/operations",
        f"{BASE}/operations#fragment",
    ],
)
def test_a_link_that_leads_elsewhere_is_refused(url):
    assert intent.path_under(BASE, url) is None


def test_a_notification_whose_link_escapes_the_api_base_fails_without_calling_it(outbox_connection, contract, client):
    base = outbox_connection.api_base_url
    body = {
        "type": "operations:intervention:share",
        "id": "escape",
        "event": {
            "type": "operations",
            "body": {
                "reference": "OPH57_1",
                "contractReference": contract.reference,
                "operation_url": f"{base}/../../admin/",
            },
        },
    }
    response = client.post(outbox_connection.webhook_path, [body], content_type="application/json")
    assert response.status_code == 200
    stored = InboundNotification.objects.get()

    # Followed, the link would fail as unreachable (a transient error, retried);
    # refused, it fails at once with the reason.
    assert inbound.process_notification(stored.pk) == NotificationStatus.FAILED
    stored.refresh_from_db()
    assert "Lien hors de la plateforme configurée" in stored.error
