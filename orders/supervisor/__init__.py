"""The site supervisor's pages (desktop), under /pilotage/: the overview, all
orders, an order with its timeline, the planning. Supervisors and office staff
only; a technician gets a 403 (see portal.access.role_required)."""
