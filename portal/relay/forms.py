"""Forms of the relay's pages: what a person says when resolving a refused
message (the error queue, the supervisor's order page and the admin)."""

from __future__ import annotations

from django import forms


class ResolveForm(forms.Form):
    note = forms.CharField(label="Correction apportée / motif", required=False, max_length=2000)


class ResolveInAdminForm(ResolveForm):
    """The same, with room to write, in the admin's page."""

    note = forms.CharField(
        label=ResolveForm.base_fields["note"].label,
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
