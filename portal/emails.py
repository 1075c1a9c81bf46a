"""Emails to supervisors and office staff, in French (text and HTML): who
receives which kind (their choices on « Mes notifications », else their role's
defaults), and the one sender every email goes through.

Everything is sent by Celery tasks, never inside a database transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db.models import Q
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from portal.models import DEFAULT_NOTIFICATIONS, NotificationKind, Role, User

# Who may receive them (and open the preferences page).
NOTIFIED_ROLES = (Role.SUPERVISOR, Role.OFFICE)


def recipients(kind: NotificationKind | str) -> list[str]:
    """The addresses of the active supervisors and office staff who want `kind`:
    those who chose it, and those who never chose whose role has it by default.
    People without an email address are skipped."""
    kind = NotificationKind(kind)
    default_roles = [role for role, kinds in DEFAULT_NOTIFICATIONS.items() if kind in kinds]
    wants = Q(**{f"notification_preference__{kind.value}": True}) | Q(
        notification_preference__isnull=True, role__in=default_roles
    )
    users = User.objects.filter(wants, is_active=True, role__in=NOTIFIED_ROLES).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def render_text(name: str, context: Mapping[str, Any]) -> str:
    """A plain-text template rendered as it is read: no HTML escaping (a
    client named « l'Habitat » stays so, never `l&#x27;Habitat`), whether or
    not the template says `{% autoescape off %}`."""
    compiled = get_template(name).template  # type: ignore[attr-defined]  # the Django backend's Template
    return compiled.render(Context(dict(context), autoescape=False))


def send(template: str, context: Mapping[str, Any], to: Iterable[str]) -> int:
    """Render `emails/<template>_subject.txt`, `.txt` and `.html` and send one
    email per recipient (colleagues do not see each other's addresses), over
    one connection. Raises OSError when the mail server is unreachable."""
    to = list(to)
    if not to:
        return 0
    preferences_url = settings.SITE_URL + reverse("notification_preferences")
    context = {"site_url": settings.SITE_URL, "preferences_url": preferences_url, **context}
    with translation.override("fr"), timezone.override(settings.TIME_ZONE):
        subject = " ".join(render_text(f"emails/{template}_subject.txt", context).split())
        text = render_text(f"emails/{template}.txt", context)
        html = render_to_string(f"emails/{template}.html", context)
    emails = []
    for address in to:
        email = EmailMultiAlternatives(subject, text, to=[address])
        email.attach_alternative(html, "text/html")
        emails.append(email)
    return mailers.default.send_messages(emails) or 0
