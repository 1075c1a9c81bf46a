"""Each module of the package owns its paths; they are all under /pilotage/ in
the `orders` namespace."""

from __future__ import annotations

from orders.supervisor import listing, order, overview, planning

urlpatterns = overview.urlpatterns + listing.urlpatterns + order.urlpatterns + planning.urlpatterns
