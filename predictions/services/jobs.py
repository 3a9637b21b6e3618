"""The lifecycle of a retrain or rescore job: running, progress, then succeeded or failed.

The Celery tasks (``predictions/tasks.py``) and the ``train_and_score`` command both run their
jobs through these, so a job reads the same on the jobs page wherever it ran.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.utils.translation import gettext_noop

import ml
from institutions.jobs import (
    DATABASE_CONNECTION_ERRORS,
    JobStopped,
    job_fail,
    job_mark_running,
    job_progress,
    job_succeed,
)
from institutions.models import Institution, Job
from students.models import FeatureStage
from students.stages import feature_stage_for_input, feature_stage_list, feature_stages_in_use

from ..frames import NoFeatureSchema
from ..models import ModelTrigger, ModelVersion
from ..signals import rescore_finished
from .scoring import SCORING_CHUNK_SIZE, RescoreOutcome, predictions_rescore
from .training import model_version_train

_TRIGGERS = {choice.value for choice in ModelTrigger}
# The stages the job pages name (stored in English, shown in the reader's language).
JOB_STAGES = (gettext_noop("preparing training data"), gettext_noop("finding students to score"),
              gettext_noop("ranking"), gettext_noop("cancelled"),
              gettext_noop("Removing prediction history past the retention setting"),
              # ml.training's steps (ml has no Django: its words are marked here)
              gettext_noop("checking data"), gettext_noop("fitting on the development rows"),
              gettext_noop("evaluating on the holdout"), gettext_noop("refitting on all students"),
              gettext_noop("measuring global importance"), gettext_noop("auditing fairness"),
              gettext_noop("checking what the inputs carry of each protected attribute"), gettext_noop("done"))
# The steps with a number in them, as ml and the scoring service word them, and their sentence.
NUMBERED_JOB_STAGES = (
    (re.compile(r"cross-validating \(fold (?P<number>\d+) of (?P<total>\d+)\)"),
     gettext_noop("cross-validating (fold %(number)s of %(total)s)")),
    (re.compile(r"scoring with model v(?P<number>\d+)"), gettext_noop("scoring with model v%(number)s")),
)


def _stages_to_train(institution: Institution, job: Job) -> list[FeatureStage]:
    """The stage the job asks for (``params.stage``, a stage key), else every stage in use."""
    asked = job.params.get("stage")
    if asked:
        stage = feature_stage_for_input(institution=institution, key=asked)
        if stage is None:
            raise NoFeatureSchema(f"this institution has no stage {str(asked)[:40]!r}")
        return [stage]
    return feature_stages_in_use(institution=institution) or feature_stage_list(institution=institution)[-1:]


def retrain_job_run(
    *, institution: Institution, job: Job, trigger: str | None = None,
    on_progress: Callable[[float, str], None] | None = None,
) -> ModelVersion | None:
    """Train a candidate version per stage for ``job``: every stage in use, or ``params.stage``
    (``params.search_iterations`` optional).

    Returns the version of the latest stage trained, or None when the job failed for a reason its
    page explains (too few known outcomes, no feature schema, the time limit); nothing is stored
    for a stage that failed so. Any other error is recorded on the job and raised. ``trigger``
    defaults to what queued the job; ``on_progress`` also hears each progress step (the command's
    progress bar).
    """
    job_mark_running(job, total=100, stage="preparing training data")
    if trigger is None:
        trigger = job.triggered_by if job.triggered_by in _TRIGGERS else ModelTrigger.USER
    try:
        stages = _stages_to_train(institution, job)
    except NoFeatureSchema as exc:
        job_fail(job, error=str(exc))
        return None
    versions: list[ModelVersion] = []
    skipped: dict[str, str] = {}
    for index, stage in enumerate(stages):
        def progress(fraction: float, step: str, index=index, stage=stage) -> None:
            overall = (index + max(0.0, min(1.0, fraction))) / len(stages)
            shown = f"{stage.label}: {step}" if len(stages) > 1 else step
            job_progress(job, done=int(overall * 100), stage=shown[:120])
            if on_progress is not None:
                on_progress(overall, shown)

        try:
            versions.append(model_version_train(
                institution=institution, trigger=trigger, created_by=job.created_by, job=job,
                search_iterations=job.params.get("search_iterations"), progress=progress, stage=stage,
            ))
        except (ml.DataInsufficientError, NoFeatureSchema) as exc:
            skipped[stage.key] = str(exc)
        except SoftTimeLimitExceeded:
            job_fail(job, error="Training took longer than the time limit and was stopped; the stages not "
                                "finished stored nothing.")
            return None
        except (JobStopped, *DATABASE_CONNECTION_ERRORS):
            raise  # cancelled, taken over, or the database went away: the task wrapper records it
        except Exception as exc:
            job_fail(job, error=f"Training failed: {exc}")
            raise
    if not versions:
        job_fail(job, error="; ".join(skipped.values()) if len(set(skipped.values())) == 1 else
                 "; ".join(f"{key}: {reason}" for key, reason in skipped.items()))
        return None
    version = versions[-1]
    job_succeed(
        job, counts={"training_size": version.training_size, "models": len(versions)},
        result={"model_version": version.number, "model_version_id": version.pk, "status": version.status,
                "gate_passed": bool(version.gate.get("passed")),
                "stages": [{"stage": v.stage.key, "model_version": v.number, "status": v.status,
                            "gate_passed": bool(v.gate.get("passed"))} for v in versions],
                **({"skipped": skipped} if skipped else {})},
    )
    return version


def rescore_job_run(
    *, institution: Institution, job: Job, send_helpers: Callable[[int], int] | None = None,
) -> RescoreOutcome | None:
    """Score for ``job`` (``params.full``, ``params.chunk_size`` optional), continuing a run cut short.

    Returns the outcome, or None when the time limit stopped it (the chunks already stored are
    kept). Any other error is recorded on the job and raised. On success, sends
    ``signals.rescore_finished``. ``send_helpers`` queues tasks that score a large run's chunks
    beside this one (see ``scoring.predictions_rescore``).
    """
    job_mark_running(job, stage="finding students to score")
    try:
        outcome = predictions_rescore(
            institution=institution, job=job, full=bool(job.params.get("full")),
            chunk_size=int(job.params.get("chunk_size") or SCORING_CHUNK_SIZE), send_helpers=send_helpers,
        )
    except SoftTimeLimitExceeded:
        job_fail(job, error="Scoring took longer than the time limit; the chunks already stored are kept "
                            "and the next run continues from there.")
        return None
    except (JobStopped, *DATABASE_CONNECTION_ERRORS):
        raise  # cancelled (the chunks stored are kept), taken over, or the database went away
    except Exception as exc:
        job_fail(job, error=f"Scoring failed: {exc}")
        raise
    job_succeed(job, counts=outcome.counts(),
                result={"model_version": outcome.model_version, "message": outcome.message,
                        "seconds": outcome.timings,
                        **({"chunks_by_worker": outcome.chunks_by_worker} if outcome.chunks_by_worker else {})})
    # The run is committed and the job says so: a reaction that fails is logged (django.dispatch)
    # and must not turn a finished rescore into a failed task.
    rescore_finished.send_robust(sender=rescore_job_run, institution=institution, job=job, outcome=outcome)
    return outcome
