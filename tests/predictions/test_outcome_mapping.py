"""Each institution decides which outcomes count as not completing, completing or not known;
training, the gate, the fairness audit and the realised-performance check read students through
that mapping. A change is shown (who moves into or out of training, per class) before it is saved,
and recorded; one institution's mapping never reaches another's training."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from institutions.scoping import institution_scope
from predictions import frames
from predictions.models import PredictionSettings
from predictions.outcome_mapping import OutcomeMapping, OutcomeMappingInvalid, outcome_mapping_get
from predictions.selectors import model_realised
from predictions.services.outcome_mapping import outcome_mapping_preview, outcome_mapping_set
from predictions.services.training import model_version_train
from students.models import Outcome, Student

from .conftest import add_population, fast_settings, rescore

pytestmark = pytest.mark.django_db

URL = "prediction-outcome-mapping"
KEYS = ["units_approved", "tuition_up_to_date", "gender"]
FAILED_LEAVE = {"dropped_out": "did_not_complete", "failed": "did_not_complete", "graduated": "completed"}


def _finished(institution, counts: dict[str, int], prefix: str = "F") -> None:
    """Students of each recorded outcome (their features matter not here)."""
    rows = [Student(institution=institution, external_id=f"{prefix}-{outcome}-{i}", outcome=outcome, cohort="2020",
                    features={"units_approved": float(i % 30), "tuition_up_to_date": bool(i % 2), "gender": "f"})
            for outcome, n in counts.items() for i in range(n)]
    Student.objects.for_institution(institution).bulk_create(rows)


def _trained_on(institution) -> dict[str, list[int]]:
    """Recorded outcome -> the labels training gives those students."""
    with institution_scope(institution):
        data = frames.training_data(institution=institution, keys=KEYS)
    labels: dict[str, list[int]] = {}
    for outcome, label in zip(data.recorded_outcomes, data.outcome.tolist(), strict=True):
        labels.setdefault(outcome, []).append(label)
    return {outcome: sorted(set(values)) for outcome, values in labels.items()}


def _mapping_post(**classes) -> dict[str, str]:
    mapping = {**OutcomeMapping.default().as_dict(), **classes}
    return {f"outcome_{value}": name for value, name in mapping.items()}


def test_by_default_training_is_what_it_always_was_dropped_out_against_graduated(tenant_a):
    _finished(tenant_a.institution, {"graduated": 4, "failed": 3, "withdrawn": 2, "transferred": 2, "other": 1})
    # Both an institution that never saved its settings and one whose row predates the mapping.
    assert _trained_on(tenant_a.institution) == {"dropped_out": [1], "graduated": [0]}
    fast_settings(tenant_a.institution)
    settings = PredictionSettings.objects.for_institution(tenant_a.institution).get()
    assert settings.outcome_classes == {"dropped_out": "did_not_complete", "graduated": "completed"}
    assert _trained_on(tenant_a.institution) == {"dropped_out": [1], "graduated": [0]}
    mapping = outcome_mapping_get(institution=tenant_a.institution)
    assert {value: mapping.classes[value] for value in ("failed", "withdrawn", "transferred", "other")} == {
        "failed": "not_known", "withdrawn": "not_known", "transferred": "not_known", "other": "not_known"}


def test_a_failed_student_is_trained_on_in_the_class_the_mapping_gives(tenant_a):
    _finished(tenant_a.institution, {"graduated": 4, "failed": 3, "withdrawn": 2})
    with institution_scope(tenant_a.institution):
        outcome_mapping_set(institution=tenant_a.institution, proposed=FAILED_LEAVE, actor=tenant_a.admin,
                            confirmed=True)
    assert _trained_on(tenant_a.institution) == {"dropped_out": [1], "failed": [1], "graduated": [0]}
    with institution_scope(tenant_a.institution):
        outcome_mapping_set(institution=tenant_a.institution, actor=tenant_a.admin, confirmed=True,
                            proposed={**FAILED_LEAVE, "failed": "completed", "withdrawn": "did_not_complete"})
    assert _trained_on(tenant_a.institution) == {"dropped_out": [1], "failed": [0], "graduated": [0],
                                                 "withdrawn": [1]}


def test_another_institutions_mapping_never_changes_who_this_one_trains_on(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        _finished(tenant.institution, {"graduated": 4, "failed": 3, "withdrawn": 2})
    before = _trained_on(tenant_a.institution)
    with institution_scope(tenant_b.institution):
        outcome_mapping_set(institution=tenant_b.institution, actor=tenant_b.admin, confirmed=True,
                            proposed={"failed": "did_not_complete", "withdrawn": "did_not_complete",
                                      "graduated": "completed", "dropped_out": "not_known"})
    assert _trained_on(tenant_b.institution) == {"failed": [1], "graduated": [0], "withdrawn": [1]}
    assert _trained_on(tenant_a.institution) == before == {"dropped_out": [1], "graduated": [0]}
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).exists()


def test_the_preview_counts_who_moves_into_and_out_of_training_per_class(tenant_a, tenant_b):
    _finished(tenant_a.institution, {"graduated": 5, "failed": 3, "transferred": 4})
    _finished(tenant_b.institution, {"failed": 50})  # B's students are never counted for A
    with institution_scope(tenant_a.institution):
        change = outcome_mapping_preview(
            institution=tenant_a.institution,
            proposed={**FAILED_LEAVE, "graduated": "not_known", "transferred": "completed"})
    # tenant_a already has 2 dropped-out students (tests/conftest.py).
    assert [(m.outcome, m.students, m.before, m.after) for m in change.moves] == [
        ("graduated", 5, "completed", "not_known"), ("transferred", 4, "not_known", "completed"),
        ("failed", 3, "not_known", "did_not_complete")]
    assert change.by_class == [
        {"class": "did_not_complete", "before": 2, "after": 5, "difference": 3},
        {"class": "completed", "before": 5, "after": 4, "difference": -1}]
    assert (change.students_into_training, change.students_out_of_training) == (7, 5)
    assert not change.saved and not PredictionSettings.objects.for_institution(tenant_a.institution).exists()


def test_settings_page_shows_the_change_before_saving_and_records_who_saved_it(client, tenant_a):
    _finished(tenant_a.institution, {"graduated": 5, "failed": 3})
    client.force_login(tenant_a.admin)
    page = client.get(reverse("prediction-settings", args=["alpha"])).content.decode()
    assert 'id="outcome-mapping"' in page and "Never changed" in page
    response = client.post(reverse(URL, args=["alpha"]), _mapping_post(failed="did_not_complete"))
    assert response.status_code == 200
    preview = response.content.decode()
    assert 'id="outcome-mapping-preview"' in preview and "Failed (3 students)" in preview
    assert 'name="confirmed" value="True"' in preview
    assert outcome_mapping_get(institution=tenant_a.institution) == OutcomeMapping.default()  # nothing saved yet
    response = client.post(reverse(URL, args=["alpha"]), {**_mapping_post(failed="did_not_complete"),
                                                          "confirmed": "True"})
    assert response.status_code == 302
    settings = PredictionSettings.objects.for_institution(tenant_a.institution).get()
    assert settings.outcome_classes["failed"] == "did_not_complete"
    assert settings.outcome_classes_changed_by == tenant_a.admin and settings.outcome_classes_changed_at
    page = client.get(reverse("prediction-settings", args=["alpha"])).content.decode()
    assert f"by {tenant_a.admin.username}" in page or f"by {tenant_a.admin.get_full_name()}" in page


def test_a_mapping_without_one_of_the_two_classes_is_refused_and_nothing_is_saved(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(reverse(URL, args=["alpha"]), {**_mapping_post(graduated="not_known"), "confirmed": "True"})
    assert response.status_code == 200
    assert "Map at least one outcome to “Completed”" in response.content.decode()
    response = client.post(reverse(URL, args=["alpha"]), {**_mapping_post(), "outcome_failed": "maybe",
                                                          "confirmed": "True"})
    assert response.status_code == 200 and "Choose did not complete, completed or not known." in (
        response.content.decode())
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).exists()
    with pytest.raises(OutcomeMappingInvalid, match="enrolled is not an outcome that can be mapped"):
        OutcomeMapping.validated({"enrolled": "completed"})


def test_admin_of_one_institution_cannot_change_anothers_outcome_mapping(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    response = client.post(reverse(URL, args=["beta"]), {**_mapping_post(failed="did_not_complete"),
                                                         "confirmed": "True"})
    assert response.status_code == 404
    assert not PredictionSettings.objects.for_institution(b.institution).exists()


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_administrators_change_the_outcome_mapping(client, tenant_a, role):
    client.force_login(getattr(tenant_a, role))
    response = client.post(reverse(URL, args=["alpha"]), {**_mapping_post(failed="did_not_complete"),
                                                          "confirmed": "True"})
    assert response.status_code == 403
    assert not PredictionSettings.objects.for_institution(tenant_a.institution).exists()


def test_the_model_card_gate_and_realised_check_use_the_mapping(client, tenant_a):
    institution = tenant_a.institution
    add_population(institution)
    fast_settings(institution)
    # Students who failed: trained on as leaving once the institution says so.
    Student.objects.for_institution(institution).filter(outcome=Outcome.DROPPED_OUT, external_id__endswith="0").update(
        outcome=Outcome.FAILED)
    failed = Student.objects.for_institution(institution).filter(outcome=Outcome.FAILED).count()
    with institution_scope(institution):
        before = frames.training_data(institution=institution, keys=KEYS)
        outcome_mapping_set(institution=institution, proposed=FAILED_LEAVE, actor=tenant_a.admin, confirmed=True)
        version = model_version_train(institution=institution)
    assert failed > 0 and version.training_size == len(before.outcome) + failed
    counts = version.training_counts
    assert counts["by_outcome"]["failed"] == failed and counts["mapping"]["failed"] == "did_not_complete"
    assert counts["did_not_complete"] == counts["by_outcome"]["dropped_out"] + failed
    assert counts["did_not_complete"] + counts["completed"] == version.training_size
    assert version.model_card["training_population"] == counts
    assert version.model_card["data"]["dropped_out"] == counts["did_not_complete"]  # what ml learned from
    assert f"{version.training_size} students" in version.gate["checks"][0]["detail"]
    client.force_login(tenant_a.admin)
    page = client.get(reverse("model-detail", args=["alpha", version.number])).content.decode()
    assert f"Failed: {failed} (did not complete (counts as leaving))" in page
    assert 'id="calibration-fitted-on"' in page
    audit = version.fairness["cross_validated"]["attributes"]["gender"]["groups"]
    assert sum(group["count"] for group in audit.values()) == version.model_card["data"]["development_rows"]
    # Realised: a current student who later fails counts as a leaver under this mapping.
    rescore(tenant_a)
    scored = list(Student.objects.for_institution(institution).filter(outcome=Outcome.ENROLLED)
                  .order_by("pk").values_list("pk", flat=True))
    later = datetime.date.today() + datetime.timedelta(days=5)
    Student.objects.for_institution(institution).filter(pk__in=scored[:10]).update(outcome=Outcome.FAILED,
                                                                                 outcome_date=later)
    Student.objects.for_institution(institution).filter(pk__in=scored[10:20]).update(outcome=Outcome.TRANSFERRED,
                                                                                   outcome_date=later)
    with institution_scope(institution):
        report = model_realised(institution=institution, version=version)
    assert (report["overall"]["students"], report["overall"]["leavers"]) == (10, 10)  # transfers not known
