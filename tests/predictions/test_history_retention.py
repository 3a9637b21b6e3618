"""The prediction history's retention: each institution keeps what its own setting says, the
latest prediction of every student and the predictions advisors gave feedback on survive, the
preview equals what the clean-up removes, and one institution's clean-up never touches another's."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions import sql
from predictions.models import LatestPrediction, Prediction, PredictionSettings, RiskFeedback
from predictions.services.history_retention import (
    HistoryRetention,
    _plan_params,
    history_cleanup_run,
    history_cleanup_start,
    history_removal_preview,
    history_retention_set,
)

from .conftest import registry_row

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)
# Days before NOW of each run: Nov 22 and Nov 1 (November's last run is Nov 22); Oct 18 is the
# last run of October and Oct 13 an earlier one; Aug 24 is the last run of August and Aug 19 an earlier one; the last is
# Oct 28 2025, the only (so the last) run of its month.
RUN_DAYS = (10, 31, 45, 50, 100, 105, 400)


class History:
    """Scoring runs of one institution: every student but the first in each run; the first
    student only in the oldest run, which stays their latest prediction. A run holds every
    student it scored, so here "the last run of a month" and "each student's last row of the
    month" are the same rows."""

    def __init__(self, tenant):
        self.tenant, self.institution = tenant, tenant.institution
        with institution_scope(self.institution):
            self.version = registry_row(self.institution, number=1, status="live")
            self.runs = {days: self._run(days) for days in RUN_DAYS}
            self._latest()

    def _run(self, days: int) -> Job:
        at = NOW - datetime.timedelta(days=days)
        job = Job.objects.for_institution(self.institution).create(
            kind=JobKind.RESCORE, status=JobStatus.SUCCEEDED, triggered_by="schedule")
        students = self.tenant.students if days == max(RUN_DAYS) else self.tenant.students[1:]
        Prediction.objects.for_institution(self.institution).bulk_create([
            Prediction(institution=self.institution, student=student, model_version=self.version, job=job,
                       risk=0.1 * (i + 1), band="low", base_value=0.0, factors=[], input_fingerprint=f"f{days}")
            for i, student in enumerate(students)])
        Prediction.objects.for_institution(self.institution).filter(job=job).update(created_at=at)
        return job

    def _latest(self) -> None:
        rows = Prediction.objects.for_institution(self.institution)
        for student in self.tenant.students:
            newest = rows.filter(student=student).order_by("-created_at").first()
            LatestPrediction.objects.for_institution(self.institution).create(
                institution=self.institution, student=student, prediction=newest, model_version=self.version,
                risk=newest.risk, band=newest.band, input_fingerprint=newest.input_fingerprint,
                scored_at=newest.created_at)

    def rows(self, days: int | None = None):
        rows = Prediction.objects.for_institution(self.institution)
        return rows if days is None else rows.filter(job=self.runs[days])

    def counts(self) -> dict[int, int]:
        return {days: self.rows(days).count() for days in RUN_DAYS}


def _set(tenant, **fields) -> None:
    PredictionSettings.objects.for_institution(tenant.institution).update_or_create(
        institution=tenant.institution, defaults=fields)


@pytest.fixture
def histories(tenants):
    """A keeps every run 30 days, then monthly for 3 months; B keeps the defaults (90 days, 24 months).
    In A, an advisor gave feedback on a row of the Oct 13 run."""
    a, b = tenants
    history_a, history_b = History(a), History(b)
    _set(a, history_keep_all_days=30, history_keep_monthly_months=3)
    with institution_scope(a.institution):
        history_a.feedback = RiskFeedback.objects.for_institution(a.institution).create(
            institution=a.institution, student=a.students[2], prediction=history_a.rows(50).get(student=a.students[2]),
            model_version=history_a.version, risk=0.2, reason="other", author=a.advisor)
    return history_a, history_b


def _clean(tenant, django_capture_on_commit_callbacks, at=NOW) -> Job | None:
    with institution_scope(tenant.institution), django_capture_on_commit_callbacks(execute=True):
        job = history_cleanup_start(institution=tenant.institution, at=at)
    if job is not None:
        job.refresh_from_db()
    return job


def test_each_institution_keeps_what_its_own_setting_says(histories, tenants, django_capture_on_commit_callbacks):
    history_a, history_b = histories
    a, b = tenants
    job_a, job_b = _clean(a, django_capture_on_commit_callbacks), _clean(b, django_capture_on_commit_callbacks)

    # A (30 days, then 3 months of monthly runs from Sep 1): Nov 1 (older than 30 days, and not
    # November's last run), Oct 13, both August runs and 2025 expire,
    # keeping the first student's latest row (2025) and the row with feedback (Oct 13).
    assert history_a.counts() == {10: 5, 31: 0, 45: 5, 50: 1, 100: 0, 105: 0, 400: 1}
    # B (90 days, then 24 months): only the earlier August run expires.
    assert history_b.counts() == {10: 5, 31: 5, 45: 5, 50: 5, 100: 5, 105: 0, 400: 6}
    assert (job_a.kind, job_a.status, job_a.counts) == (
        JobKind.HISTORY_RETENTION, JobStatus.SUCCEEDED, {"removed_rows": 24, "runs": 5})
    assert job_b.counts == {"removed_rows": 5, "runs": 1}
    assert job_a.result["complete"] is True


def test_the_latest_prediction_of_every_student_survives(histories, tenants, django_capture_on_commit_callbacks):
    for history, tenant in zip(histories, tenants, strict=True):
        _set(tenant, history_keep_all_days=1, history_keep_monthly_months=0)  # the shortest setting there is
        latest = set(LatestPrediction.objects.for_institution(tenant.institution).values_list("prediction_id",
                                                                                                flat=True))
        _clean(tenant, django_capture_on_commit_callbacks)
        kept = set(history.rows().values_list("id", flat=True))
        assert latest <= kept and len(latest) == len(tenant.students)
        assert len(kept - latest) == (1 if history is histories[0] else 0)  # A's row with feedback
    assert RiskFeedback.objects.for_institution(tenants[0].institution).filter(pk=histories[0].feedback.pk).exists()


def test_preview_equals_what_the_clean_up_then_removes(histories, tenants, django_capture_on_commit_callbacks):
    history_a, _ = histories
    a, _ = tenants
    with institution_scope(a.institution):
        preview = history_removal_preview(institution=a.institution, at=NOW)
        shorter = history_removal_preview(institution=a.institution, at=NOW, retention=HistoryRetention(5, 0))
    before = history_a.rows().count()
    job = _clean(a, django_capture_on_commit_callbacks)
    assert (preview.rows, preview.runs) == (job.counts["removed_rows"], job.counts["runs"]) == (24, 5)
    assert history_a.rows().count() == before - preview.rows
    with institution_scope(a.institution):
        assert history_removal_preview(institution=a.institution, at=NOW).rows == 0
        # What is left for the shorter setting is what it previewed beyond the saved one.
        left = history_removal_preview(institution=a.institution, at=NOW, retention=HistoryRetention(5, 0))
    assert left.rows == shorter.rows - preview.rows


def test_an_incremental_run_at_a_months_end_keeps_everyone_elses_last_row_of_that_month(
        histories, tenants, django_capture_on_commit_callbacks):
    history_a, _ = histories
    a, _ = tenants
    # After the full Aug 24 run, an incremental run on Aug 30 rescored only one (changed) student.
    with institution_scope(a.institution):
        late = Job.objects.for_institution(a.institution).create(kind=JobKind.RESCORE, status=JobStatus.SUCCEEDED)
        Prediction.objects.for_institution(a.institution).create(
            institution=a.institution, student=a.students[3], model_version=history_a.version, job=late, risk=0.9,
            band="high", base_value=0.0, factors=[], input_fingerprint="changed")
        Prediction.objects.for_institution(a.institution).filter(job=late).update(
            created_at=NOW - datetime.timedelta(days=94))
    _set(a, history_keep_all_days=30, history_keep_monthly_months=6)  # August is kept monthly now

    _clean(a, django_capture_on_commit_callbacks)

    august_last = history_a.rows(100)  # Aug 24: each student's last August row, but the changed one's
    assert sorted(august_last.values_list("student__external_id", flat=True)) == ["S002", "S003", "S005", "S006"]
    assert list(Prediction.objects.for_institution(a.institution).filter(job=late).values_list("risk", flat=True)) \
        == [0.9]
    assert history_a.rows(105).count() == 0  # Aug 19: nobody's last of the month


def test_running_one_institutions_clean_up_never_touches_anothers_rows(
        histories, tenants, django_capture_on_commit_callbacks):
    _, history_b = histories
    a, b = tenants
    _set(b, history_keep_all_days=1, history_keep_monthly_months=0)  # B would lose almost everything
    b_rows = set(history_b.rows().values_list("id", "risk", "created_at"))

    job = _clean(a, django_capture_on_commit_callbacks)
    # Inside A's scope, the removal statement naming B, with the shortest setting, reaches none of B's rows.
    params = _plan_params(institution=b.institution, retention=HistoryRetention(1, 0), at=NOW)
    with institution_scope(a.institution), connection.cursor() as cursor:
        cursor.execute(sql.HISTORY_REMOVE_BATCH, {**params, "batch_size": 1000})
        assert cursor.rowcount == 0

    assert job.counts["removed_rows"] == 24
    assert set(history_b.rows().values_list("id", "risk", "created_at")) == b_rows
    assert not Job.objects.for_institution(b.institution).filter(kind=JobKind.HISTORY_RETENTION).exists()


def test_the_clean_up_is_idempotent_and_the_daily_beat_starts_only_jobs_with_work(
        histories, tenants, django_capture_on_commit_callbacks, monkeypatch):
    from predictions import tasks

    a, _ = tenants
    monkeypatch.setattr(tasks, "history_cleanup_start",
                        lambda *, institution: history_cleanup_start(institution=institution, at=NOW))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.apply_history_retention() == 2
    counts = [h.counts() for h in histories]
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.apply_history_retention() == 0  # nothing left: no new job
    assert [h.counts() for h in histories] == counts
    assert Job.objects.for_institution(a.institution).filter(kind=JobKind.HISTORY_RETENTION).count() == 1


def test_a_clean_up_stopped_by_its_time_bound_finishes_on_the_next_run(
        histories, tenants, django_capture_on_commit_callbacks, monkeypatch):
    from predictions.services import history_retention

    history_a, _ = histories
    a, _ = tenants
    monkeypatch.setattr(history_retention, "HISTORY_BATCH_SIZE", 4)
    with institution_scope(a.institution), django_capture_on_commit_callbacks(execute=False):
        job = history_cleanup_start(institution=a.institution, at=NOW)
        outcome = history_cleanup_run(institution=a.institution, job=job, max_seconds=0)
    assert outcome == {"removed_rows": 4, "runs": outcome["runs"], "complete": False}
    job = _clean(a, django_capture_on_commit_callbacks)
    assert job.counts["removed_rows"] == 20
    assert history_a.counts() == {10: 5, 31: 0, 45: 5, 50: 1, 100: 0, 105: 0, 400: 1}


# --- the setting on the model settings page ------------------------------------------------------

URL = "prediction-history-retention"


def _page(client, slug="alpha") -> str:
    return client.get(reverse("prediction-settings", args=[slug])).content.decode()


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def test_settings_page_shows_the_setting_and_what_the_next_clean_up_removes(client, histories, tenants, frozen_now):
    a, _ = tenants
    client.force_login(a.admin)
    page = _page(client)
    assert "Now: every run for 30 days, then the last run of each month for 3 months." in page
    assert "The next daily clean-up removes <strong>24</strong> history rows of <strong>5</strong> scoring runs" in page


def test_a_shorter_setting_is_previewed_and_saved_only_when_confirmed(client, histories, tenants, frozen_now):
    history_a, _ = histories
    a, _ = tenants
    client.force_login(a.admin)
    with institution_scope(a.institution):
        expected = history_removal_preview(institution=a.institution, retention=HistoryRetention(5, 0), at=NOW)
    rows_before = history_a.rows().count()

    response = client.post(reverse(URL, args=["alpha"]), {"keep_all_days": "5", "keep_monthly_months": "0"})
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<strong id="history-retention-preview-rows">{expected.rows}</strong>' in page
    assert f'<strong id="history-retention-preview-runs">{expected.runs}</strong>' in page
    assert "Nothing is saved yet" in page and "Confirm and save" in page
    settings = PredictionSettings.objects.for_institution(a.institution).get()
    assert (settings.history_keep_all_days, settings.history_keep_monthly_months) == (30, 3)
    assert history_a.rows().count() == rows_before  # a preview removes nothing

    response = client.post(reverse(URL, args=["alpha"]), {"keep_all_days": "5", "keep_monthly_months": "0",
                                                          "confirmed": "True"}, follow=True)
    page = response.content.decode()
    assert f"The next clean-up removes {expected.rows} rows of {expected.runs} runs." in page
    assert "by alpha-admin" in page
    settings.refresh_from_db()
    assert (settings.history_keep_all_days, settings.history_keep_monthly_months) == (5, 0)
    assert settings.history_retention_changed_by == a.admin and settings.history_retention_changed_at == NOW


def test_a_longer_setting_is_saved_at_once_and_empty_months_mean_forever(client, histories, tenants, frozen_now):
    a, _ = tenants
    client.force_login(a.admin)
    response = client.post(reverse(URL, args=["alpha"]), {"keep_all_days": "365", "keep_monthly_months": ""},
                           follow=True)
    assert "Prediction history is now kept: every run for 365 days, one run per month forever." in \
        response.content.decode()
    settings = PredictionSettings.objects.for_institution(a.institution).get()
    assert (settings.history_keep_all_days, settings.history_keep_monthly_months) == (365, None)


@pytest.mark.parametrize("data, message", [
    ({"keep_all_days": "0", "keep_monthly_months": "3"}, "greater than or equal to 1"),
    ({"keep_all_days": "", "keep_monthly_months": "3"}, "Say for how many days every run is kept"),
    ({"keep_all_days": "30", "keep_monthly_months": "-1"}, "greater than or equal to 0"),
    ({"keep_all_days": "many", "keep_monthly_months": "3"}, "Enter a whole number"),
])
def test_a_bad_setting_gets_a_specific_message_and_changes_nothing(client, histories, tenants, data, message):
    a, _ = tenants
    client.force_login(a.admin)
    response = client.post(reverse(URL, args=["alpha"]), data)
    assert response.status_code == 200 and message in response.content.decode()
    settings = PredictionSettings.objects.for_institution(a.institution).get()
    assert (settings.history_keep_all_days, settings.history_keep_monthly_months) == (30, 3)


def test_admin_of_one_institution_cannot_change_anothers_retention(client, histories, tenants):
    a, b = tenants
    client.force_login(a.admin)
    response = client.post(reverse(URL, args=["beta"]), {"keep_all_days": "1", "keep_monthly_months": "0",
                                                         "confirmed": "True"})
    assert response.status_code == 404
    assert not PredictionSettings.objects.for_institution(b.institution).exists()  # B never saved one


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_administrators_change_the_retention(client, histories, tenants, role):
    a, _ = tenants
    client.force_login(getattr(a, role))
    assert client.post(reverse(URL, args=["alpha"]), {"keep_all_days": "1", "keep_monthly_months": "0",
                                                      "confirmed": "True"}).status_code == 403


def test_the_service_refuses_a_shorter_setting_without_confirmation(histories, tenants):
    a, _ = tenants
    with institution_scope(a.institution):
        change = history_retention_set(institution=a.institution, keep_all_days=1, keep_monthly_months=0,
                                       actor=a.admin, at=NOW)
    assert not change.saved and change.removes_more
    assert PredictionSettings.objects.for_institution(a.institution).get().history_keep_all_days == 30


def test_the_clean_up_job_is_listed_on_the_jobs_page_of_its_institution_only(
        client, histories, tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    job = _clean(a, django_capture_on_commit_callbacks)
    client.force_login(a.viewer)
    page = client.get(reverse("prediction-job-list", args=["alpha"])).content.decode()
    assert "Prediction history clean-up" in page
    client.force_login(b.viewer)
    page_b = client.get(reverse("prediction-job-list", args=["beta"])).content.decode()
    assert "Prediction history clean-up" not in page_b
    assert client.get(reverse("prediction-job-progress", args=["beta", job.pk])).status_code == 404
