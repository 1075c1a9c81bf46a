"""The Celery application: `celery -A portal worker --beat`."""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fixup closes every database connection before and after each
# task unless CELERY_DB_REUSE_MAX is set: a new PostgreSQL backend for every
# delivery (a tenth of a worker's time at 50 changes/s went to connecting). It
# is set out of reach here, and a worker keeps its connection as Django keeps a
# web request's: closed before and after a task only when unusable or older
# than CONN_MAX_AGE (`DATABASE_CONN_MAX_AGE`, 60 s; 0 on SQLite), health-checked.
app.conf.CELERY_DB_REUSE_MAX = sys.maxsize


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender: Task | None = None, **kwargs: Any) -> None:
    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # run in the caller's process and transaction: its connection is the caller's
    from django.db import close_old_connections as close

    close()
