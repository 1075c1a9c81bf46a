"""The one exception every layer raises when it refuses something a person asked.

Pure Python (the state machine imports it). `str()` of a refusal is a French
sentence that the page, the admin or the error queue shows as it is; views
catch `Refused` alone, whichever layer refused.
"""

from __future__ import annotations


class Refused(Exception):
    """A change refused for a reason people can read and often fix (French)."""
