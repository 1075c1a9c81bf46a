"""Forms of the relay's pages: what a person says when resolving a refused message."""

from __future__ import annotations

from django import forms


class ResolveForm(forms.Form):
    note = forms.CharField(label="Correction apportée / motif", required=False, max_length=2000)
