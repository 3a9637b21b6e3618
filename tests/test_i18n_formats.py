"""Dates and numbers in the locale's format (docs/translating.md): Spanish and Portuguese pages write
09/03/2026 and 75,5%; English pages keep ISO dates and 75.5%; values a form sends back (the what-if
inputs) stay machine-readable in every language."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from interventions.templatetags.risk_display import percent, points
from predictions.models import Prediction
from tests.interventions.conftest import record_run

from .factories import InterventionFactory, InterventionTypeFactory

pytestmark = pytest.mark.django_db


def _profile(client, tenant, language):
    tenant.institution.default_language = language
    tenant.institution.save(update_fields=["default_language"])
    student = tenant.students[0]
    student.features = {**student.features, "units_approved": 2.5}
    type(student).objects.for_institution(tenant.institution).filter(pk=student.pk).update(features=student.features)
    record_run(tenant.institution, {student: 0.755},
               when=timezone.make_aware(datetime.datetime(2026, 3, 9, 14, 5), datetime.UTC))
    InterventionFactory(institution=tenant.institution, student=student, author=tenant.advisor,
                        intervention_type=InterventionTypeFactory(institution=tenant.institution),
                        date=datetime.date(2026, 3, 9))
    client.force_login(tenant.advisor)
    response = client.get(reverse("student-detail", args=[tenant.institution.slug, student.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language", ["es", "pt"])
def test_the_profile_writes_dates_and_decimals_the_languages_way(client, tenant_a, tenant_b, language):
    body = _profile(client, tenant_a, language)
    assert "09/03/2026" in body and "2026-03-09" not in body  # the intervention's date, the risk history
    assert "75,5%" in body and "75.5%" not in body  # the shown risk
    assert "09/03/2026 14:05" in body  # when it was scored
    # The what-if form sends its values back as numbers, whatever the page's language.
    assert 'id="wi-units_approved" name="units_approved" data-kind="numeric" value="2.5" min="0.0" max="30.0"' in body
    # Institution B's page is its own, in English by default.
    english = _profile(client, tenant_b, "en")
    assert "2026-03-09" in english and "75.5%" in english and "09/03/2026" not in english
    assert Prediction.objects.for_institution(tenant_b.institution).count() == 1


def test_percentages_and_points_are_rounded_then_written_with_the_languages_decimal_mark():
    with translation.override("es"):
        assert percent(0.2346) == "23,5%" and percent(0.0996) == "10,0%"
        assert points(12.34) == "+12,3 puntos" and points(-0.96) == "−1,0 puntos"
    with translation.override("pt"):
        assert percent(0.2346) == "23,5%" and points(0.05) == "+0,1 pontos"
    with translation.override("en"):
        assert percent(0.2346) == "23.5%" and points(-0.96) == "−1.0 points"
