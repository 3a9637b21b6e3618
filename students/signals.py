"""Signals students sends; higher apps connect receivers (students never imports them).

``import_committed(sender, institution_id, job_id)``: an import has committed new or changed
students (``job_id`` is the import job; None for a synchronous bulk upsert through the API).
Predictions connects a receiver that queues a rescore.
"""

import django.dispatch

import_committed = django.dispatch.Signal()
