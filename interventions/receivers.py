"""Reactions of interventions to the predictions app's work (predictions never imports interventions).

After a rescore job succeeds, record what the flagged workload looked like, for "flagged over
time" and "newly flagged since the last run" on the dashboard.
"""

from __future__ import annotations

from institutions.models import Institution, Job

from .services import risk_snapshot_record


def snapshot_after_rescore(sender, *, institution: Institution, job: Job, **kwargs) -> None:
    """``predictions.signals.rescore_finished`` receiver: runs where the rescore ran (worker or command)."""
    risk_snapshot_record(institution=institution, job=job)
