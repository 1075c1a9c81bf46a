"""The contract's time limits that more than one layer counts with. Pure Python
(the pure penalty module imports it).

The platform annex (§2.9) gives the contractor 15 minutes to share every
change with the manager's platform; the relay measures its deliveries against
it, the penalty module prices each day past it, the supervisor's timeline marks
the messages that took longer.
"""

from __future__ import annotations

from datetime import timedelta

SHARING_LIMIT = timedelta(minutes=15)
