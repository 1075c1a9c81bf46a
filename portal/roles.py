"""Roles and what they may do in the admin.

Office staff work in the Django admin: they are staff members of the "Bureau"
group, which holds every permission on the portal's own models and the users.
The group is kept in step after each migration, so a new model's permissions
reach the office without anyone editing the group by hand.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

OFFICE_GROUP = "Bureau"
OFFICE_APPS = ("portal", "orders", "quotes", "invoices", "relay", "axes")


def sync_office_group(**kwargs) -> Group:
    group, _ = Group.objects.get_or_create(name=OFFICE_GROUP)
    permissions = Permission.objects.filter(content_type__app_label__in=OFFICE_APPS) | Permission.objects.filter(
        content_type__app_label="auth", content_type__model="group", codename="view_group"
    )
    group.permissions.set(permissions)
    return group
