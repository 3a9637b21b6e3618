"""A model trained with the concern count: it learns from the counts past students kept, keeps
scoring with current counts after the feature is switched off, and the next retrain leaves it out."""

from __future__ import annotations

import numpy as np

from institutions.scoping import institution_scope
from predictions.frames import feature_specs
from predictions.models import LatestPrediction, ModelStatus
from predictions.services.concern_feature import (
    CONCERNS_FEATURE_KEY,
    concern_counts_refresh,
    concern_feature_in_use,
    concern_feature_preview,
)
from predictions.services.training import model_version_train
from students.models import Outcome, Student

from .conftest import add_population, fast_settings, rescore
from .test_concern_feature import Surveys, _switch, _today


def _give_past_students_counts(institution) -> int:
    """Past students' counts from when they were current: leavers had more concerns. The first
    fifth left before the feature existed and have none (not recorded)."""
    rng = np.random.default_rng(3)
    known = list(Student.objects.for_institution(institution).filter(
        outcome__in=[Outcome.DROPPED_OUT, Outcome.GRADUATED]).order_by("id"))
    for index, student in enumerate(known):
        if index < len(known) // 5:
            continue
        mean = 2.0 if student.outcome == Outcome.DROPPED_OUT else 0.3
        student.features = {**student.features, CONCERNS_FEATURE_KEY: int(rng.poisson(mean))}
    Student.objects.for_institution(institution).bulk_update(known, ["features"])
    return sum(1 for s in known if s.features.get(CONCERNS_FEATURE_KEY))


def test_a_live_model_trained_with_the_count_keeps_scoring_after_it_is_switched_off(tenants):
    tenant_a, tenant_b = tenants
    institution = tenant_a.institution
    add_population(institution)
    add_population(tenant_b.institution, prefix="Q")
    fast_settings(institution)
    nonzero = _give_past_students_counts(institution)
    with institution_scope(institution):
        surveys = Surveys(institution, _today(tenant_a))
    _switch(tenant_a, True)
    with institution_scope(institution):
        preview = concern_feature_preview(institution=institution)
        assert preview.training_rows_with_concerns == nonzero > 0
        version = model_version_train(institution=institution)
    assert version.status == ModelStatus.LIVE
    assert CONCERNS_FEATURE_KEY in version.feature_keys
    _, first = rescore(tenant_a)
    assert first.scored == first.current > 0

    _switch(tenant_a, False)

    marked = Student.objects.for_institution(institution).filter(outcome=Outcome.ENROLLED).order_by("id").first()
    with institution_scope(institution):
        assert CONCERNS_FEATURE_KEY not in [spec.key for spec in feature_specs(institution=institution)]
        # The live model still reads the count: it is kept current, and only that student is rescored.
        assert concern_feature_in_use(institution=institution)
        surveys.mark(marked, surveys.concern)
        surveys.mark(marked, surveys.other_concern)
        surveys.mark(marked, surveys.kudos)
        assert concern_counts_refresh(institution=institution, student_ids=[marked.pk]) == 1
    counted = Student.objects.for_institution(institution).get(pk=marked.pk).features[CONCERNS_FEATURE_KEY]
    assert counted == 2  # two concerns; kudos do not count
    before = LatestPrediction.objects.for_institution(institution).get(student=marked)
    _, second = rescore(tenant_a)
    assert (second.scored, second.model_version) == (1, version.number)
    after = LatestPrediction.objects.for_institution(institution).get(student=marked)
    assert after.input_fingerprint != before.input_fingerprint

    with institution_scope(institution):
        retrained = model_version_train(institution=institution)
    assert CONCERNS_FEATURE_KEY not in retrained.feature_keys
    assert not Student.objects.for_institution(tenant_b.institution).filter(
        features__has_key=CONCERNS_FEATURE_KEY).exists()
