from __future__ import annotations

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The embedded stand-in for the manager's Intent platform (development, demo and tests only)."""

    name = "portal.sandbox"
    label = "sandbox"
    verbose_name = "Bac à sable (plateforme du gestionnaire)"
