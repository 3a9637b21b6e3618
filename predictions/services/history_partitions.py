"""The prediction history's monthly partitions: created ahead, and dropped once empty.

``predictions_prediction`` is partitioned by month (UTC) of ``created_at``, the run's time
(migration 0013). The daily beat job (``predictions.tasks.apply_history_retention``) first makes
sure the current month and the next ``MONTHS_AHEAD`` have their partition, so a run never writes
into the default partition, then drops every partition of a past month that holds no row of any
institution: the institutions' clean-ups (services.history_retention) delete the runs their own
settings expire, and a month goes as a whole once nobody keeps anything in it. Both steps run
as the owner through ``app_prediction_partition_ensure`` and
``app_prediction_partitions_drop_empty`` (the application's role owns no table).
"""

from __future__ import annotations

import datetime

from django.db import connection, transaction
from django.utils import timezone

from .. import sql
from ..models import Prediction

MONTHS_AHEAD = 2


def _month(day: datetime.date, ahead: int = 0) -> datetime.date:
    index = day.year * 12 + day.month - 1 + ahead
    return datetime.date(index // 12, index % 12 + 1, 1)


def prediction_partitions() -> list[str]:
    """The history's partitions by name (``..._y2026m12``, and ``..._default``)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.PARTITIONS_LIST, {"table": Prediction._meta.db_table})
        return [row[0] for row in cursor.fetchall()]


def prediction_partitions_maintain(*, now: datetime.datetime | None = None,
                                   months_ahead: int = MONTHS_AHEAD) -> dict[str, list[str]]:
    """Create this month's partition and the next ``months_ahead``; drop past months' empty ones."""
    today = (now or timezone.now()).astimezone(datetime.UTC).date()
    created: list[str] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for ahead in range(months_ahead + 1):
            month = _month(today, ahead)
            cursor.execute(sql.PARTITION_ENSURE, {"month": month})
            if cursor.fetchone()[0]:
                created.append(f"{Prediction._meta.db_table}_y{month:%Y}m{month:%m}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.PARTITIONS_DROP_EMPTY, {"before": _month(today)})
        dropped = list(cursor.fetchone()[0])
    return {"created": created, "dropped": dropped}
