from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portail"

    def ready(self) -> None:
        # Keep the office group's permissions in step with the models, after
        # every migration (permissions only exist once migrations have run).
        post_migrate.connect(_sync_roles, dispatch_uid="portal.sync_roles")


def _sync_roles(**kwargs) -> None:
    from portal.roles import sync_office_group  # it imports models, not loaded yet when apps.py is

    sync_office_group()
