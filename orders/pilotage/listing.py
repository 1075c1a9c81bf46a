"""Supervisor pages: listing (being built)."""

from __future__ import annotations

urlpatterns: list = []
