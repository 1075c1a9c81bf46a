"""Forms of the relay's pages: what a person says when resolving a refused
message (the error queue, the supervisor's order page and the admin)."""

from __future__ import annotations

from django import forms


class ResolveForm(forms.Form):
    note = forms.CharField(label="Correction apportée / motif", required=False, max_length=2000)
    # When a message is given up because the office typed the data on the platform
    # by hand: when that was done, which ends the breach of the 15-minute limit.
    entered_by_hand_at = forms.DateTimeField(
        label="Saisi à la main sur la plateforme le",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M"],
    )


class ResolveInAdminForm(ResolveForm):
    """The same, with room to write, in the admin's page."""

    note = forms.CharField(
        label=ResolveForm.base_fields["note"].label,
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
