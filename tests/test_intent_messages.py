"""What the error queue and the timeline show of a platform's refusal: its own
words, each once."""

from __future__ import annotations

import httpx
import pytest

from portal.relay import intent


def refusal(body) -> str:
    with pytest.raises(intent.Rejection) as raised:
        intent.classify(httpx.Response(400, json=body))
    return str(raised.value)


def test_a_message_repeated_in_the_errors_is_shown_once():
    message = "Opération OPH57_1 refusée par la plateforme."
    assert refusal({"message": message, "errors": [message]}) == f"HTTP 400 : {message}"


def test_the_errors_follow_the_message_as_text():
    assert refusal({"message": "Log invalide.", "errors": ["serviceCode : inconnu.", "eventDate : manquant."]}) == (
        "HTTP 400 : Log invalide. – serviceCode : inconnu.; eventDate : manquant."
    )


def test_structured_errors_are_kept_readable():
    assert refusal({"message": "Log invalide.", "errors": [{"field": "status"}]}) == (
        'HTTP 400 : Log invalide. – {"field": "status"}'
    )


def test_a_body_that_is_not_json_is_shown_as_it_is():
    with pytest.raises(intent.Rejection, match="HTTP 422 : Données refusées"):
        intent.classify(httpx.Response(422, text="Données refusées"))
