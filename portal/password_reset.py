"""The password-reset page's form: it only queues the email (portal.tasks),
for every active account with that address, so that a known address and an
unknown one take the same time to answer (nothing tells them apart)."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth.forms import PasswordResetForm
from django.db import transaction

from portal import tasks


class QueuedPasswordResetForm(PasswordResetForm):
    def save(self, *args: Any, domain_override: str | None = None, use_https: bool = False, request=None, **kwargs):
        email = self.cleaned_data["email"]
        domain = domain_override or (request.get_host() if request is not None else "")
        for user in self.get_users(email):
            # `robust`: a broker that is down must not show an error that an unknown address would not.
            transaction.on_commit(
                functools.partial(tasks.send_password_reset.delay, user.pk, domain, use_https), robust=True
            )
