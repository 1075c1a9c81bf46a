"""Supervisor pages: planning (being built)."""

from __future__ import annotations

urlpatterns: list = []
